"""A sharded, content-addressed representations store (the per-shard API is in docs/contracts.md).

Layout of a store directory:
  config.json                the options that change the output (+ options_hash, shard_size, n_items)
  shard_NNNNN.safetensors    rows [N*shard_size, (N+1)*shard_size) of the input, dense in the store dtype
  shard_NNNNN.json           ids, meta and the shard's entry: rows, dtype, bytes, sha256, ids_sha256,
                             input_hash (of its id+text rows), options_hash; written last = shard complete
  manifest.json              every entry + result header; written once all shards are verified (merge)

Shards are independent: any process can encode shard i (`encode_shard`) and check one (`verify_shard`),
so a SLURM array task or a Ray task writes its own shards without coordination; `write_manifest` merges.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repbench.encoders.digest import options_hash, rows_hash, sha256_file
from repbench.encoders.store_checks import (  # noqa: F401  (num_shards, shard_rows: part of this module's API)
    _read_store_json,
    check_manifest,
    num_shards,
    read_store_config,
    shard_rows,
)
from repbench.encoders.types import (
    Representations,
    StoreError,
    check_entry,
    check_store_file,
    load_rows,
    read_sidecar,
    store_torch_dtype,
)
from repbench.errors import RepbenchError
from repbench.io import atomic_write_json

EncodeFn = Callable[[list[str], list[str]], Representations]
DEFAULT_STORE_DTYPE = "float16"
# Config keys that name where the input was read, not what it holds: the rows hash covers the content.
_NOT_OPTIONS = ("input",)


def shard_stem(out: Path, index: int) -> Path:
    return Path(out) / f"shard_{index:05d}"


def shards_of_worker(n_shards: int, shard_index: int, worker_count: int) -> list[int]:
    """Shards a `--shard-index I --num-shards W` worker owns: every W-th, starting at I."""
    if worker_count < 1 or not 0 <= shard_index < worker_count:
        raise RepbenchError(f"--shard-index must be in [0, --num-shards), got {shard_index} of {worker_count}")
    return list(range(shard_index, n_shards, worker_count))


def store_options(config: dict[str, Any], store_dtype: str) -> dict[str, Any]:
    """The options hashed into every shard: the config minus input paths, plus the store dtype."""
    store_torch_dtype(store_dtype)
    if config.get("store_dtype", store_dtype) != store_dtype:  # an EncodingIdentity's fields name it too
        raise ValueError(f"config says store_dtype {config['store_dtype']!r}, the store is {store_dtype!r}")
    return {**{k: v for k, v in config.items() if k not in _NOT_OPTIONS}, "store_dtype": store_dtype}


def prepare_store(out: str | Path, config: dict[str, Any], n_items: int, shard_size: int,
                  store_dtype: str = DEFAULT_STORE_DTYPE) -> dict[str, Any]:
    """Create `out` (or check it) before any shard is written; returns the config.json content.

    A directory made with other options or another shard size is refused rather than mixed. The item
    count may change (an edited input): shards whose rows changed fail `verify_shard` and are redone.
    """
    if shard_size < 1:
        raise RepbenchError(f"--shard-size must be a positive integer, got {shard_size}")
    out = Path(out)
    opts = store_options(config, store_dtype)
    cfg = {**config, "store_dtype": store_dtype, "options_hash": options_hash(opts), "shard_size": shard_size,
           "n_items": n_items}
    path = out / "config.json"
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: damaged ({exc}); delete it to start this store again") from None
        same = ("options_hash", "shard_size")
        if any(existing.get(k) != cfg[k] for k in same):
            keys = (set(existing) | set(cfg)) - {"n_items", "options_hash", "input"}
            diff = {k: (existing.get(k), cfg.get(k)) for k in sorted(keys) if existing.get(k) != cfg.get(k)}
            raise RepbenchError(f"{out} holds representations made with a different config {diff}; "
                                "use another --out directory")
        if existing == cfg:
            return cfg
    atomic_write_json(path, cfg)
    return cfg


def encode_shard(out: str | Path, index: int, ids: Sequence[str], texts: Sequence[str], encode_fn: EncodeFn,
                 options_digest: str, store_dtype: str = DEFAULT_STORE_DTYPE) -> dict[str, Any]:
    """Encode one shard's rows and write shard `index` atomically with its entry; returns the entry.

    `ids`/`texts` are this shard's rows only (`shard_rows` gives the range); `options_digest` is
    config.json's options_hash. Safe to call from any process: it touches only this shard's two files.
    """
    reps = encode_fn(list(ids), list(texts))
    if list(reps.ids) != list(ids):
        raise RepbenchError(f"shard {index}: the encoder returned other ids than the {len(ids)} given")
    extra = {"index": index, "input_hash": rows_hash(ids, texts), "options_hash": options_digest}
    return reps.save(shard_stem(Path(out), index), store_dtype=store_dtype, extra=extra)


def verify_shard(out: str | Path, index: int, ids: Sequence[str] | None = None, texts: Sequence[str] | None = None,
                 options_digest: str | None = None, check_bytes: bool = True) -> dict[str, Any]:
    """Return shard `index`'s entry if it is complete and intact, else raise StoreError saying why.

    Checks the tensor file's byte size and (`check_bytes`) sha256, the ids, and, when given, that it
    encodes exactly these rows (`ids`+`texts`) with these options.
    """
    stem = shard_stem(Path(out), index)
    shard_ids, _, entry = read_sidecar(stem)
    path = check_store_file(stem.with_suffix(".safetensors"), entry.get("bytes"))
    check_entry(stem, shard_ids, entry, sha256_file(path) if check_bytes else entry.get("sha256", ""))
    if options_digest is not None and entry.get("options_hash") != options_digest:
        raise StoreError(f"{path}: encoded with other options (options_hash differs)")
    if ids is not None and texts is not None and entry.get("input_hash") != rows_hash(ids, texts):
        raise StoreError(f"{path}: the input rows it encodes have changed (input_hash differs)")
    return entry


def _counting(encode_fn: EncodeFn, update: Callable[[int], Any]) -> EncodeFn:
    """`encode_fn` reporting texts done to `update`: per batch when it takes `progress=`, else per shard."""
    try:
        per_batch = "progress" in inspect.signature(encode_fn).parameters
    except (TypeError, ValueError):
        per_batch = False
    if per_batch:
        return lambda ids, texts: encode_fn(ids, texts, progress=update)

    def per_shard(ids: list[str], texts: list[str]) -> Representations:
        reps = encode_fn(ids, texts)
        update(len(ids))
        return reps

    return per_shard


def encode_sharded(
    out: str | Path,
    ids: Sequence[str],
    texts: Sequence[str],
    config: dict[str, Any],
    encode_fn: EncodeFn | None,
    shard_size: int = 1000,
    header: dict[str, Any] | None = None,
    progress: bool = True,
    store_dtype: str = DEFAULT_STORE_DTYPE,
    shard_index: int = 0,
    worker_count: int = 1,
    run_shards: Callable[[list[int], str, str], None] | None = None,
) -> Path:
    """Encode the shards this worker owns, skipping those already complete and verified.

    `run_shards(todo, options_hash, store_dtype)`, when given, encodes those shards elsewhere instead
    of `encode_fn` here (an engine: every shard through `encode_shard`, as below).

    Each shard is written atomically; a failure leaves earlier shards intact and a rerun resumes. A
    shard that fails verification (damaged, truncated, other input rows) is reported and re-encoded.
    When every shard of the store is complete, the manifest is written (by whichever worker is last).
    """
    out = Path(out)
    cfg = prepare_store(out, config, len(ids), shard_size, store_dtype)
    n_shards = num_shards(len(ids), shard_size)
    mine = shards_of_worker(n_shards, shard_index, worker_count)
    todo = []
    for i in mine:
        lo, hi = shard_rows(len(ids), shard_size, i)
        if not shard_stem(out, i).with_suffix(".json").exists():
            todo.append(i)
            continue
        try:
            verify_shard(out, i, ids[lo:hi], texts[lo:hi], cfg["options_hash"])
        except StoreError as exc:
            print(f"repbench: {exc}; re-encoding shard {i}", file=sys.stderr)
            todo.append(i)
    iterator: Any = todo
    if run_shards is not None:
        iterator = []
        if todo:
            run_shards(todo, cfg["options_hash"], store_dtype)
    bar = None
    if run_shards is None and progress and todo:
        from tqdm.auto import tqdm

        # Per text, not per shard: a 1,000-text shard on a CPU takes minutes, so a shard bar sits at 0/1.
        rows = sum(hi - lo for lo, hi in (shard_rows(len(ids), shard_size, i) for i in todo))
        bar = tqdm(total=rows, desc=f"encode -> {out.name} ({len(todo)} shard(s))", unit="text")
        encode_fn = _counting(encode_fn, bar.update)
    for i in iterator:
        lo, hi = shard_rows(len(ids), shard_size, i)
        encode_shard(out, i, ids[lo:hi], texts[lo:hi], encode_fn, cfg["options_hash"], store_dtype)
    if bar is not None:
        bar.close()
    if all(shard_stem(out, i).with_suffix(".json").exists() for i in range(n_shards)):
        # Every shard was hashed as it was written or resumed, and every read re-checks the sha256, so
        # the bytes are not re-read here (a TB for Dream on MS MARCO; `repbench merge` does it). The
        # input rows are checked: another worker's shard may predate an edit of the input.
        try:
            write_manifest(out, header, ids, texts, check_bytes=False)
        except StoreError as exc:
            print(f"repbench: no manifest yet: {exc}\n(re-run the workers owning them)", file=sys.stderr)
    elif progress:
        print(f"{out}: worker {shard_index}/{worker_count} done; the manifest is written when every shard "
              f"is (by the last worker, or `repbench merge {out}`)", file=sys.stderr)
    return out


def write_manifest(out: str | Path, header: dict[str, Any] | None = None, ids: Sequence[str] | None = None,
                   texts: Sequence[str] | None = None, check_bytes: bool = True) -> Path:
    """Verify every shard (sha256 unless not `check_bytes`; against the input rows too, when given)
    and write manifest.json (merge).

    Raises StoreError listing every shard that is missing or fails verification.
    """
    out = Path(out)
    cfg = read_store_config(out)
    n_items, size = int(cfg["n_items"]), int(cfg["shard_size"])
    if ids is not None and len(ids) != n_items:
        raise StoreError(f"{out}: the store holds {n_items} items, the input {len(ids)}")
    entries, problems = [], []
    for i in range(num_shards(n_items, size)):
        lo, hi = shard_rows(n_items, size, i)
        try:
            entry = verify_shard(out, i, None if ids is None else ids[lo:hi],
                                 None if texts is None else texts[lo:hi], cfg["options_hash"], check_bytes)
            if entry.get("rows") != hi - lo:
                raise StoreError(f"{shard_stem(out, i)}: {entry.get('rows')} rows, expected {hi - lo}")
            entries.append(entry)
        except StoreError as exc:
            problems.append(str(exc))
    if problems:
        raise StoreError(f"{out}: {len(problems)} shard(s) not complete and verified:\n  " + "\n  ".join(problems))
    manifest = {**(header or {}), "n_shards": len(entries), "n_items": n_items, "shard_size": size,
                "store_dtype": cfg.get("store_dtype"), "options_hash": cfg["options_hash"],
                "input_hash": options_hash({"shards": [e["input_hash"] for e in entries]}), "shards": entries}
    return atomic_write_json(out / "manifest.json", manifest)


# Shards whose sha256 this process has checked, with the file's (size, mtime_ns) then: a search that
# reads the same store again (a sweep, a server) hashes each shard once, not once per call. A file
# rewritten since (new size or mtime) is hashed again.
_VERIFIED: dict[str, tuple[int, int, str]] = {}


def _file_state(stem: Path) -> tuple[int, int] | None:
    try:
        st = stem.with_suffix(".safetensors").stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _verified_before(stem: Path, entry: dict[str, Any]) -> bool:
    state = _file_state(stem)
    return state is not None and _VERIFIED.get(str(stem)) == (*state, str(entry.get("sha256")))


def _remember_verified(stem: Path, entry: dict[str, Any]) -> None:
    state = _file_state(stem)
    if state is not None:
        _VERIFIED[str(stem)] = (*state, str(entry.get("sha256")))


@dataclass
class Store:
    """A complete store opened for reading: the manifest's shard entries; ids and tensors stay on disk
    until a shard is streamed, so memory does not grow with the store."""

    root: Path
    manifest: dict[str, Any]
    shards: list[tuple[Path, dict[str, Any]]]  # (stem, manifest entry)
    meta: dict[str, Any]

    def __len__(self) -> int:
        return sum(int(entry["rows"]) for _, entry in self.shards)

    def read_shard(self, index: int, verify: bool = True) -> tuple[list[str], dict[str, Any]]:
        """(ids, meta) of shard `index`, after checking its sidecar against the manifest (and its sha256)."""
        stem, entry = self.shards[index]
        ids, meta, side_entry = read_sidecar(stem)
        if side_entry != entry:
            raise StoreError(f"{stem.with_suffix('.json')}: its entry differs from {self.root / 'manifest.json'}; "
                             f"run `repbench merge {self.root}`")
        check_store_file(stem.with_suffix(".safetensors"), entry.get("bytes"))
        if verify and not _verified_before(stem, entry):
            try:
                check_entry(stem, ids, entry, sha256_file(stem.with_suffix(".safetensors")))
            except (StoreError, OSError) as exc:
                raise StoreError(f"{exc}; re-run the `repbench encode` that wrote {self.root} to re-encode "
                                 "it") from None
            _remember_verified(stem, entry)
        return ids, meta

    def chunks(self, chunk_docs: int, verify: bool = True, float32: bool = True) -> Iterator[Representations]:
        """Every shard in order, in chunks of at most `chunk_docs` rows (float32 unless `float32=False`:
        the stored dtype), each shard verified first."""
        for i, (stem, _) in enumerate(self.shards):
            ids, meta = self.read_shard(i, verify)
            for lo in range(0, len(ids), chunk_docs):
                yield load_rows(stem, lo, min(len(ids), lo + chunk_docs), ids, meta, float32)


def open_store(out: str | Path) -> Store:
    """Open a merged store (manifest.json present and consistent with config.json); every shard file is
    checked to be a regular file of its entry's size inside the store (its sha256 is checked when read)."""
    out = Path(out)
    path = out / "manifest.json"
    if not path.exists():
        raise RepbenchError(f"{out} is not a complete representations directory (no manifest.json); "
                            f"if every shard is encoded, run `repbench merge {out}`")
    manifest = _read_store_json(path, "a store manifest (JSON object)", out)
    cfg = read_store_config(out)
    entries = check_manifest(out, manifest, cfg)
    shards = [(shard_stem(out, i), entry) for i, entry in enumerate(entries)]
    for stem, entry in shards:
        check_store_file(stem.with_suffix(".safetensors"), entry.get("bytes"))
    meta = read_sidecar(shards[0][0])[1] if shards else {}
    return Store(out, manifest, shards, meta)


def load_sharded(out: str | Path, verify: bool = True) -> Representations:
    """The whole store in memory (float32 dense), every shard verified."""
    store = open_store(out)
    parts = []
    for i, (stem, _) in enumerate(store.shards):
        store.read_shard(i, verify=False)  # the sidecar agrees with the manifest; load() checks the bytes
        parts.append(Representations.load(stem, verify=verify))
    return Representations.concat(parts)
