"""The score modes of docs/method.md §6.2 (registry: repbench.retrieval.modes), from two Representations to TREC-style runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from repbench.encoders.types import Representations
from repbench.errors import RepbenchError, did_you_mean
from repbench.retrieval.fusion import fuse
from repbench.retrieval.index import DocIndex, Vectors, index_for
from repbench.retrieval.modes import DEFAULT_DEPTH, MODES, MULTI_MODES, SCORERS, Scorer

__all__ = ["DEFAULT_DEPTH", "MODES", "MULTI_MODES", "SCORERS", "Scorer", "modes_for", "parse_modes", "retrieve"]

Run = dict[str, dict[str, float]]



def parse_modes(text: str | Iterable[str]) -> list[str]:
    """'all' or a comma list of mode names -> the modes in canonical order."""
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if names == ["all"]:
        return list(MODES)
    unknown = [n for n in names if n not in MODES]
    if unknown or not names:
        hint = did_you_mean(unknown[0], [*MODES, "all"]) if unknown else ""
        raise RepbenchError(f"unknown score mode(s) {unknown or names}{hint}; choose from {', '.join(MODES)} or 'all'")
    return [m for m in MODES if m in names]


def modes_for(k_q: int, k_p: int, modes: Sequence[str]) -> list[str]:
    """The requested modes that exist for this cell: multi-vector modes need K_q > 1 or K_p > 1.

    At K_q = K_p = 1 MaxSim is the single-vector cosine clamped at 0, so the paper does not compute it
    (docs/method.md §6.1).
    """
    if k_q > 1 or k_p > 1:
        return list(modes)
    return [m for m in modes if m not in MULTI_MODES]


def to_run(qids: Sequence[str], scores: Any, keys: Any, ids_for_keys: Callable[[list[int]], list[str]],
           depth: int, remove_self: bool) -> Run:
    """{qid: {docid: score}} from top-k scores and keys [Q, k] (any device: one host copy each), the
    keys turned into doc ids once, dropping a self-hit (`remove_self`) and keeping `depth` per query."""
    s_rows = scores.cpu().tolist() if hasattr(scores, "cpu") else np.asarray(scores).tolist()
    k_rows = keys.cpu().tolist() if hasattr(keys, "cpu") else np.asarray(keys).tolist()
    wanted = sorted({k for row in k_rows for k in row})
    id_of = dict(zip(wanted, ids_for_keys(wanted), strict=True))
    run: Run = {}
    for qid, s_row, k_row in zip(qids, s_rows, k_rows, strict=True):
        docs: dict[str, float] = {}
        for s, key in zip(s_row, k_row, strict=True):
            d = id_of[key]
            if remove_self and d == qid:
                continue
            if len(docs) == depth:
                break
            docs[d] = float(s)
        run[qid] = docs
    return run


def retrieve(
    queries: Representations,
    docs: Representations | DocIndex,
    modes: Sequence[str] = MODES,
    depth: int = DEFAULT_DEPTH,
    vocab_size: int | None = None,
    remove_self: bool = True,
    chunk_docs: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Run]:
    """Rank `docs` for every query in each requested mode: {mode: {qid: {docid: score}}}.

    Each list holds up to `depth` documents (fewer when the corpus is smaller). With `remove_self`
    (default) a document whose id equals the query id is dropped and the list is refilled from the
    next rank (BEIR's ignore_identical_ids); pass False to reproduce the paper, which keeps it.
    Ties are cut by trec_eval's rule (`repbench.retrieval.topk`), so exact ties at the cut-off keep the
    documents trec_eval would keep. `vocab_size` is needed for the sparse modes. `docs` is indexed once
    (`repbench.retrieval.index.index_for`): searching the same object again reuses its index.
    `device` (default: where the tensors are) is where the dense modes are scored; the sparse products
    run on the host whatever the device.
    """
    from repbench.retrieval.transfer import to_device

    modes = parse_modes(modes)
    index = index_for(docs, device)
    queries = to_device(queries, device)
    if any(m in MULTI_MODES for m in modes) and queries.k == 1 and index.docs.k == 1:
        raise RepbenchError("multi-vector modes need K_q > 1 or K_p > 1 (use repbench.retrieval.search.modes_for)")
    if any(SCORERS[m].sparse for m in modes) and vocab_size is None:
        raise RepbenchError("sparse modes need the backbone's vocab_size")
    qids, qv = list(queries.ids), Vectors(queries)
    extra = 1 if remove_self and not set(qids).isdisjoint(index.docs.ids) else 0
    options = {"vocab_size": vocab_size, "chunk_docs": chunk_docs}

    runs: dict[str, Run] = {}

    def run_of(name: str) -> Run:
        if name not in runs:
            scorer = SCORERS[name]
            if scorer.fuse is not None:
                a, b = scorer.fuse
                runs[name] = fuse(run_of(a), run_of(b), 0.5, depth)
            else:
                s, k = scorer.search(qv, index, depth + extra, options)
                runs[name] = to_run(qids, s, k, index.ids_for_keys, depth, remove_self)
        return runs[name]

    return {m: run_of(m) for m in modes}
