"""`evaluate --passages-store DIR`: score a store `repbench encode` wrote (e.g. on a GPU cluster) instead of
encoding the passages again. A store is used only when it encodes this sweep's method (EncodingIdentity's
method fields: backbone, encoder, every method option, K, max length) over exactly the collection's corpus:
every shard's recorded input hash is recomputed from the corpus's own rows. How precisely it was computed
(dtype, device, batch, store dtype) may differ; sweep_state.json records each store's hashes, so a resumed
sweep cannot mix cells scored against different stores."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repbench.encoders.digest import rows_hash
from repbench.encoders.identity import EncodingIdentity
from repbench.encoders.types import StoreError, read_sidecar
from repbench.errors import RepbenchError


def given_stores(paths: Sequence[str | Path], expected: Any, ids: Sequence[str], texts: Sequence[str]
                 ) -> dict[int, tuple[Path, str]]:
    """{K_p: (store, "options_hash:input_hash")} for the stores given, each checked by `check_store`;
    `expected(k)` is this sweep's passage identity at K."""
    stores: dict[int, tuple[Path, str]] = {}
    for path in paths:
        k, digest = check_store(Path(path), expected, ids, texts)
        if k in stores:
            raise RepbenchError(f"--passages-store: {stores[k][0]} and {path} are both stores of K={k}")
        stores[k] = (Path(path).resolve(), digest)  # an engine's workers may run elsewhere
    return stores


def check_store(path: Path, expected: Any, ids: Sequence[str], texts: Sequence[str]) -> tuple[int, str]:
    """The store's K and its hashes, after refusing one of another method, side or corpus (RepbenchError
    naming the store and what differs)."""
    from repbench.encoders.store import open_store

    try:
        store = open_store(path)
    except StoreError as exc:
        raise RepbenchError(f"--passages-store {path}: {exc}") from None
    from repbench.encoders.store_checks import read_store_config

    config = read_store_config(path)
    k = config.get("k")
    if config.get("side") != "passage" or not isinstance(k, int) or isinstance(k, bool):
        raise RepbenchError(f"--passages-store {path}: expected a passage-side store (encode --side passage), "
                            f"got side={config.get('side')!r}, k={k!r}")
    want: EncodingIdentity = expected(k)
    differ = {name: (config.get(name), value) for name, value in want.method_fields().items()
              if config.get(name) != value}
    if differ:
        shown = ", ".join(f"{n}: store {a!r}, this sweep {b!r}" for n, (a, b) in sorted(differ.items()))
        raise RepbenchError(f"--passages-store {path}: encoded with another method ({shown}); encode the corpus "
                            "with the sweep's options, or change them to the store's")
    _check_rows(path, store, ids, texts)
    return k, f"{store.manifest.get('options_hash')}:{store.manifest.get('input_hash')}"


def _check_rows(path: Path, store: Any, ids: Sequence[str], texts: Sequence[str]) -> None:
    """Every corpus row once, and each shard's input hash recomputed from the corpus's own text of its ids
    (the store may hold them in any order: search ranks by doc id)."""
    text_of = dict(zip(ids, texts, strict=True))
    seen: set[str] = set()
    for stem, entry in store.shards:
        try:
            shard_ids = read_sidecar(stem)[0]
        except StoreError as exc:
            raise RepbenchError(f"--passages-store {path}: {exc}") from None
        missing = [i for i in shard_ids if i not in text_of]
        if missing:
            raise RepbenchError(f"--passages-store {path}: {stem.name} holds doc {missing[0]!r}, which is not in "
                                f"the collection's corpus ({len(missing)} such ids): a store of another corpus")
        repeated = seen.intersection(shard_ids) | {i for i, n in Counter(shard_ids).items() if n > 1}
        if repeated:
            raise RepbenchError(f"--passages-store {path}: {stem.name} repeats doc ids (e.g. "
                                f"{sorted(repeated)[0]!r}); a store holds each passage once")
        if entry.get("input_hash") != rows_hash(shard_ids, [text_of[i] for i in shard_ids]):
            raise RepbenchError(f"--passages-store {path}: {stem.name} encodes other texts than the corpus's for "
                                "its ids (an edited corpus?); encode it again")
        seen.update(shard_ids)
    if len(seen) != len(text_of):
        absent = next(i for i in text_of if i not in seen)
        raise RepbenchError(f"--passages-store {path}: holds {len(seen)} of the corpus's {len(text_of)} passages "
                            f"(e.g. not {absent!r}); encode the whole corpus")
