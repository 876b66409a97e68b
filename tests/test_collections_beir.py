"""BEIR loader validation, subsets of real collections and the synthetic generator."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from shared_data import require_data

from repbench.errors import InputError, RepbenchError
from repbench.evaluation.collections import load_beir, subsample, synthetic_collection


def need(name: str) -> Path:
    return require_data(name)


def write_collection(root: Path, corpus: str, queries: str, qrels: str, split: str = "test") -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(corpus)
    (root / "queries.jsonl").write_text(queries)
    (root / "qrels" / f"{split}.tsv").write_text(qrels)
    return root


GOOD_CORPUS = '{"_id": "d1", "title": "T", "text": "alpha"}\n{"_id": "d2", "text": "beta"}\n'
GOOD_QUERIES = '{"_id": "q1", "text": "alpha?"}\n{"_id": "q2", "text": "unjudged"}\n'
GOOD_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq3\td2\t2\n"


def test_loads_a_valid_collection(tmp_path):
    c = load_beir(write_collection(tmp_path / "mini", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS))
    assert c.name == "mini"
    assert c.corpus_ids == ["d1", "d2"]
    assert c.corpus_texts == ["T. alpha", "beta"]  # title prepended with ". "
    assert c.qrels == {"q1": {"d1": 1}, "q3": {"d2": 2}}
    assert c.judged_queries() == (["q1"], ["alpha?"])
    assert c.unmatched_qrels_queries() == ["q3"]


def test_gzipped_corpus(tmp_path):
    root = write_collection(tmp_path / "gz", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    (root / "corpus.jsonl").unlink()
    with gzip.open(root / "corpus.jsonl.gz", "wt") as fh:
        fh.write(GOOD_CORPUS)
    assert load_beir(root).corpus_ids == ["d1", "d2"]


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "file", "message"),
    [
        ('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n', GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl",
         "2: expected a JSON object, got invalid JSON (Expecting value)"),
        (GOOD_CORPUS, '{"_id": "q1", "title": "x"}\n', GOOD_QRELS, "queries.jsonl", '1: expected a "text" field'),
        ('{"text": "a"}\n', GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl", '1: expected an "_id" field'),
        ('{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n', GOOD_QUERIES, GOOD_QRELS, "corpus.jsonl",
         "2: duplicate \"_id\" 'd1' (first on line 1)"),
        (GOOD_CORPUS, GOOD_QUERIES, "q1\td1\t1\n", "qrels/test.tsv",
         "1: expected the BEIR header 'query-id<TAB>corpus-id<TAB>score' on the first line of a 3-column "
         "qrels file, got 'q1 d1 1'"),
        (GOOD_CORPUS, GOOD_QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\thigh\n", "qrels/test.tsv",
         "2: expected an integer relevance grade in column 3, got 'high'"),
        (GOOD_CORPUS, GOOD_QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\n", "qrels/test.tsv",
         "2: expected 3 fields 'query-id corpus-id score', got 2"),
    ],
)
def test_loader_errors_name_file_line_and_expectation(tmp_path, corpus, queries, qrels, file, message):
    root = write_collection(tmp_path / "bad", corpus, queries, qrels)
    with pytest.raises(InputError) as exc:
        load_beir(root)
    assert str(exc.value) == f"{root / file}:{message}"


def test_unknown_split_and_missing_files(tmp_path):
    root = write_collection(tmp_path / "c", GOOD_CORPUS, GOOD_QUERIES, GOOD_QRELS)
    with pytest.raises(RepbenchError) as exc:
        load_beir(root, split="dev")
    assert str(exc.value) == f"{root}/qrels/dev.tsv: unknown split 'dev'; available splits: test"
    (root / "corpus.jsonl").unlink()
    with pytest.raises(RepbenchError) as exc:
        load_beir(root)
    assert str(exc.value) == f"{root}: no corpus.jsonl or corpus.jsonl.gz"
    with pytest.raises(RepbenchError, match="not a directory"):
        load_beir(tmp_path / "nowhere")


def test_real_adi_loads_with_published_counts():
    c = load_beir(need("adi"))
    assert (len(c.corpus_ids), len(c.judged_queries()[0])) == (82, 35)
    assert sum(len(v) for v in c.qrels.values()) == 170


def test_scifact_subset_is_deterministic_and_complete():
    full = load_beir(need("scifact"))
    a = subsample(full, 20, 100, seed=0)
    b = subsample(full, 20, 100, seed=0)
    c = subsample(full, 20, 100, seed=1)
    assert a.corpus_ids == b.corpus_ids and a.query_ids == b.query_ids
    assert a.query_ids != c.query_ids
    assert len(a.query_ids) == 20 and set(a.qrels) == set(a.query_ids)
    judged = {d for q in a.query_ids for d in full.qrels[q]}
    assert judged <= set(a.corpus_ids)
    assert len(a.corpus_ids) == len(judged) + 100
    order = {d: i for i, d in enumerate(full.corpus_ids)}
    assert [order[d] for d in a.corpus_ids] == sorted(order[d] for d in a.corpus_ids)
    assert a.name == "scifact-sub20q-100d-s0"
    with pytest.raises(RepbenchError, match="between 1 and 300"):
        subsample(full, 301, 0)


def test_synthetic_collection_is_seeded_and_planted(tmp_path):
    a, b = synthetic_collection(60, 10, seed=3), synthetic_collection(60, 10, seed=3)
    assert (a.corpus_texts, a.query_texts, a.qrels) == (b.corpus_texts, b.query_texts, b.qrels)
    assert synthetic_collection(60, 10, seed=4).corpus_texts != a.corpus_texts
    # A word-overlap ranker written here must put a relevant document first for every query.
    docs = {i: set(t.split()) for i, t in zip(a.corpus_ids, a.corpus_texts, strict=True)}
    for qid, text in zip(a.query_ids, a.query_texts, strict=True):
        words = set(text.split()) - {"what", "about"}
        best = max(docs, key=lambda d: (len(words & docs[d]), d))
        assert a.qrels[qid].get(best, 0) > 0
    saved = load_beir(a.save_beir(tmp_path / "syn"))
    assert (saved.corpus_ids, saved.corpus_texts, saved.qrels) == (a.corpus_ids, a.corpus_texts, a.qrels)
    assert json.loads((tmp_path / "syn" / "queries.jsonl").read_text().splitlines()[0])["_id"] == "q000"
