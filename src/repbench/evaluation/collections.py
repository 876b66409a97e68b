"""Test collections: the BEIR on-disk layout (validated while read), seeded synthetic collections and
deterministic subsets of real ones."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repbench.errors import RepbenchError, did_you_mean
from repbench.evaluation.trec import Qrels, read_qrels, require_relevant
from repbench.io import atomic_write_text, read_json, read_texts_jsonl

PROVENANCE_FILE = "repbench_provenance.json"  # beside corpus.jsonl of a generated collection

@dataclass
class Collection:
    """Documents, queries and judgements of one split. Texts are what the encoder reads
    (``title. text`` when a title exists, docs/method.md §7.1)."""

    name: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: Qrels
    split: str = "test"
    source: str | None = None
    info: dict = field(default_factory=dict)

    def judged_queries(self) -> tuple[list[str], list[str]]:
        """(ids, texts) of the queries that have judgements, in file order (docs/method.md §6.1)."""
        keep = [(q, t) for q, t in zip(self.query_ids, self.query_texts, strict=True) if q in self.qrels]
        return [q for q, _ in keep], [t for _, t in keep]

    def unmatched_qrels_queries(self) -> list[str]:
        """Judged query ids with no query text: they cannot be encoded and will score 0."""
        have = set(self.query_ids)
        return [q for q in self.qrels if q not in have]

    def corpus_fingerprint(self) -> str:
        return _fingerprint(self.corpus_ids, self.corpus_texts)

    def queries_fingerprint(self) -> str:
        return _fingerprint(*self.judged_queries())

    def save_beir(self, directory: str | os.PathLike) -> Path:
        """Write the collection in the BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""
        directory = Path(directory)
        corpus = "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                         for i, t in zip(self.corpus_ids, self.corpus_texts, strict=True))
        queries = "".join(json.dumps({"_id": i, "text": t}) + "\n"
                          for i, t in zip(self.query_ids, self.query_texts, strict=True))
        qrels = "query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\t{d}\t{g}\n" for q, docs in self.qrels.items() for d, g in docs.items()
        )
        atomic_write_text(directory / "corpus.jsonl", corpus)
        atomic_write_text(directory / "queries.jsonl", queries)
        atomic_write_text(directory / "qrels" / f"{self.split}.tsv", qrels)
        if self.info.get("synthetic"):
            # Provenance travels with the files, so every result made from them (and the report) knows
            # these are generated numbers, not a real collection's.
            atomic_write_text(directory / PROVENANCE_FILE, json.dumps(self.info, sort_keys=True) + "\n")
        return directory


def _fingerprint(ids: list[str], texts: list[str]) -> str:
    h = hashlib.sha256()
    for i, t in zip(ids, texts, strict=True):
        h.update(i.encode())
        h.update(b"\t")
        h.update(t.encode())
        h.update(b"\n")
    return h.hexdigest()


def load_beir(path: str | os.PathLike, split: str = "test") -> Collection:
    """Load a BEIR-layout collection, refusing malformed input with file, line and what was expected.

    Reads ``corpus.jsonl`` (or ``corpus.jsonl.gz``) and ``queries.jsonl`` (``_id``, optional ``title``,
    ``text``; duplicate ids refused) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``,
    integer grades; TREC 4-column qrels are accepted as well).
    """
    root = Path(path)
    if not root.is_dir():
        siblings = [p.name for p in root.parent.iterdir() if p.is_dir()] if root.parent.is_dir() else []
        hint = "" if root.exists() else did_you_mean(root.name, siblings)
        raise RepbenchError(f"{root}: not a directory{hint} (expected a BEIR collection: corpus.jsonl, queries.jsonl, "
                            "qrels/)")
    corpus_file = next((root / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (root / n).is_file()), None)
    if corpus_file is None:
        raise RepbenchError(f"{root}: no corpus.jsonl or corpus.jsonl.gz")
    queries_file = root / "queries.jsonl"
    if not queries_file.is_file():
        raise RepbenchError(f"{root}: no queries.jsonl")
    qrels_file = root / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise RepbenchError(
            f"{qrels_file}: unknown split {split!r}; available splits: {', '.join(available) or 'none'}"
        )
    corpus_ids, corpus_texts = read_texts_jsonl(corpus_file)
    query_ids, query_texts = read_texts_jsonl(queries_file)
    qrels = require_relevant(read_qrels(qrels_file), qrels_file)
    info = read_json(root / PROVENANCE_FILE, "repbench's provenance record") if (root / PROVENANCE_FILE).is_file() \
        else {}
    return Collection(
        name=root.name, corpus_ids=corpus_ids, corpus_texts=corpus_texts, query_ids=query_ids,
        query_texts=query_texts, qrels=qrels, split=split, source=str(root),
        info=info if isinstance(info, dict) else {},
    )


def subsample(collection: Collection, n_queries: int, n_distractors: int, seed: int = 0) -> Collection:
    """A deterministic smaller collection for quick, still meaningful, evaluations.

    1. Queries: `n_queries` drawn without replacement (numpy ``default_rng(seed)``) from the judged
       queries that have a text and at least one positive grade, kept in file order.
    2. Corpus: every document judged for those queries (any grade) that exists in the corpus, plus
       `n_distractors` further documents drawn with the same generator from the rest of the corpus; the
       corpus keeps its original order. Distractors are unjudged for the chosen queries, hence
       non-relevant under the usual pooled-judgement assumption.
    3. Qrels: the chosen queries' judgements, unchanged.

    The same (collection, n_queries, n_distractors, seed) always gives the same subset; the name records
    all four, e.g. ``scifact-sub20q-180d-s0``.
    """
    eligible = [q for q in collection.query_ids
                if q in collection.qrels and any(g > 0 for g in collection.qrels[q].values())]
    if n_queries < 1 or n_queries > len(eligible):
        raise RepbenchError(f"n_queries must be between 1 and {len(eligible)} (judged queries), got {n_queries}")
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(eligible), size=n_queries, replace=False).tolist())
    qids = [q for i, q in enumerate(eligible) if i in chosen]
    qset = set(qids)
    judged_docs = {d for q in qids for d in collection.qrels[q]}
    doc_index = {d: i for i, d in enumerate(collection.corpus_ids)}
    keep = {doc_index[d] for d in judged_docs if d in doc_index}
    rest = [i for i in range(len(collection.corpus_ids)) if i not in keep]
    n_distractors = min(max(0, n_distractors), len(rest))
    keep |= {rest[i] for i in rng.choice(len(rest), size=n_distractors, replace=False).tolist()}
    rows = sorted(keep)
    qtext = dict(zip(collection.query_ids, collection.query_texts, strict=True))
    return Collection(
        name=f"{collection.name}-sub{n_queries}q-{n_distractors}d-s{seed}",
        corpus_ids=[collection.corpus_ids[i] for i in rows],
        corpus_texts=[collection.corpus_texts[i] for i in rows],
        query_ids=qids, query_texts=[qtext[q] for q in qids],
        qrels={q: dict(collection.qrels[q]) for q in collection.qrels if q in qset},
        split=collection.split, source=collection.source,
        info={"subsample": {"of": collection.name, "n_queries": n_queries, "n_distractors": n_distractors,
                            "seed": seed, "n_judged_docs": len(rows) - n_distractors}},
    )


_SYLLABLES = ("ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "ve", "zu", "ba", "de", "fo", "gi", "hu", "ja")


def _words(rng: np.random.Generator, n: int) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        w = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))).tolist())
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def synthetic_collection(
    n_docs: int = 200,
    n_queries: int = 20,
    seed: int = 0,
    topic_words: int = 5,
    doc_len: int = 30,
    max_relevant: int = 3,
) -> Collection:
    """A seeded collection with planted relevant documents (for the embedded default and tests).

    Each query owns `topic_words` (>= 4) private words and asks with three of them. It has
    1..`max_relevant` relevant documents: background text with two of the asked words planted (grade 1),
    or all three plus one unasked topic word (grade 2).
    The other documents are background words only, so a lexical matcher can find the relevant ones.
    """
    need = n_queries * max_relevant
    if topic_words < 4:
        raise RepbenchError(f"topic_words must be at least 4, got {topic_words}")
    if n_docs < need:
        raise RepbenchError(f"n_docs must be at least n_queries * max_relevant = {need}, got {n_docs}")
    rng = np.random.default_rng(seed)
    vocab = _words(rng, 300 + n_queries * topic_words)
    background, private = vocab[:300], vocab[300:]
    docs: list[list[str]] = [rng.choice(background, size=doc_len).tolist() for _ in range(n_docs)]
    slots = rng.permutation(n_docs).tolist()
    qids, qtexts, qrels = [], [], {}
    for qi in range(n_queries):
        topic = private[qi * topic_words:(qi + 1) * topic_words]
        qid = f"q{qi:03d}"
        qids.append(qid)
        asked = rng.choice(topic, size=3, replace=False).tolist()
        qtexts.append("what about " + " ".join(asked))
        qrels[qid] = {}
        for _ in range(int(rng.integers(1, max_relevant + 1))):
            d = slots.pop()
            grade = int(rng.integers(1, 3))
            # grade 1: two of the asked words; grade 2: all three plus one unasked topic word
            planted = rng.choice(asked, size=grade + 1, replace=False).tolist()
            if grade == 2:
                planted.append(str(rng.choice([w for w in topic if w not in asked])))
            positions = rng.choice(doc_len, size=len(planted), replace=False)
            for p, w in zip(positions.tolist(), planted, strict=True):
                docs[d][p] = w
            qrels[qid][f"doc{d:05d}"] = grade
    return Collection(
        name=f"synthetic-{n_docs}d-{n_queries}q-s{seed}",
        corpus_ids=[f"doc{i:05d}" for i in range(n_docs)], corpus_texts=[" ".join(w) for w in docs],
        query_ids=qids, query_texts=qtexts, qrels=qrels, split="test", source=None,
        info={"synthetic": {"seed": seed, "n_docs": n_docs, "n_queries": n_queries}},
    )
