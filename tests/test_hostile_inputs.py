"""Hostile inputs and options, tried as a new user would: each must end in a clear message (exit 2, the
file and line named, no traceback) or, where the input is in fact fine, in the right result.

The table CASES is the record of what was tried (issue 12's closing note counts it). Each case runs the
real CLI entry point `repbench.cli.main` in-process (the same top-level error rule as the console
script); tests/test_cli_failures.py runs a few through a subprocess as well.

Tally (issue 12), 119 cases: CASES (114) and PASSES plus the BOM run test (5). Of the first 113, run
against main before this change (d5b7cf7): 63 ended well; 31 raised a Python exception (a traceback for
the user), 15 exited 0 on input that should have been refused (empty corpus/run, all-zero qrels, 0 matched
gate cells, an ignored --fail-above, a non-string title...), and 4 valid files gave wrong numbers (BOM
before a query id, gzip without the .gz suffix); 6 were added later. Now all 119 end in a clear message
or the right numbers (the damaged store config.json was fixed by issue 13's store).
Tally (issue 25), 73 cases: the ISSUE25 table (62: options 23, ids 16, bounded reads 8, stores 14, small
ones 1), "encode --k 0" (the old "--k -3" case now meets the option check first), and 10 tests after the
table (exact numbers for a '#' inside an id and a grade of 2**31 - 1, search --allow-mixed, strict compare
JSON, Markdown/LaTeX escaping, stale .tmp removal, the private traceback file, a flipped cached signals
table, the model cache checksums, and a gzip bomb and a /dev/zero shard under a 1 GiB RLIMIT_AS).
Beyond the table: tests/test_parsers_properties.py (fuzzed readers), test_crash_resume.py (SIGKILL),
test_disk_full.py (ENOSPC), test_cli_failures.py (exit codes, traceback file, --debug).
"""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from repbench.cli import main

CORPUS = [{"_id": f"d{i}", "title": "", "text": f"word{i} alpha beta gamma{i % 3}"} for i in range(12)]
# Random-looking text, so that gzip cannot squeeze it into a few bytes and a cut lands mid-file.
BIG = [{"_id": f"b{i}", "text": " ".join(f"w{(i * 7919 + j * 104729) % 100003}" for j in range(20))} for i in range(400)]
QUERIES = [{"_id": "q1", "text": "alpha word1"}, {"_id": "q2", "text": "gamma2 word5"}]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td5\t2\nq2\td2\t0\n"


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def beir(root: Path, corpus: bytes | None = None, queries: bytes | None = None, qrels: bytes | None = None,
         corpus_name: str = "corpus.jsonl") -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / corpus_name).write_bytes(jsonl(CORPUS) if corpus is None else corpus)
    (root / "queries.jsonl").write_bytes(jsonl(QUERIES) if queries is None else queries)
    (root / "qrels" / "test.tsv").write_bytes(QRELS.encode() if qrels is None else qrels)
    return root


def corpus_with(line: int, raw: bytes) -> bytes:
    """The good corpus with its 1-based line `line` replaced by `raw` (no newline)."""
    lines = jsonl(CORPUS).splitlines(keepends=True)
    lines[line - 1] = raw + b"\n"
    return b"".join(lines)


RUN = "q1 Q0 d1 1 2.0 t\nq1 Q0 d3 2 1.0 t\nq2 Q0 d5 1 3.0 t\nq2 Q0 d2 2 1.0 t\n"
TREC_QRELS = "q1 0 d1 1\nq2 0 d5 2\nq2 0 d2 0\n"
PQ_HEADER = "dataset,backbone,family,encoder,k_q,k_p,mode,qid,measure,value\n"


def per_query(values: list[str]) -> str:
    rows = [f"syn,tiny-ar,ar,sequential,1,1,single_dense,q{i},ndcg_cut_10,{v}\n" for i, v in enumerate(values)]
    rows += [f"syn,tiny-ar,ar,sequential,1,2,single_dense,q{i},ndcg_cut_10,0.5\n" for i in range(len(values))]
    return PQ_HEADER + "".join(rows)


def bench_json(cells: list[dict], samples: object = None) -> dict:
    from repbench.schema import SCHEMA_VERSION

    return {
        "machine_info": {"repbench": {"schema_version": SCHEMA_VERSION, "environment": {}}},
        "benchmarks": [{"name": f"test_encode[{c['k']}]", "extra_info": {
            "backbone": "tiny-ar", "encoder": "sequential", "k": c["k"], "input_tokens": 32, "batch_size": 1,
            "samples_s": samples if samples is not None else [0.01, 0.011, 0.012, 0.0105, 0.0102]}}
            for c in cells],
    }


EVAL = ["evaluate", "--backbone", "tiny-diffusion", "--kq", "1", "--kp", "1", "--modes", "single_dense",
        "--no-progress"]


@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # builds files under tmp_path, returns argv
    expect: str | tuple[str, ...]  # substring(s) of stderr
    rc: int = 2
    no_write: str | None = None  # a path (relative to tmp_path) that must not exist afterwards
    env: dict[str, str] | None = None  # environment variables set for this case only


def ev(tmp: Path, *extra: str, **files) -> list[str]:
    beir(tmp / "ds", **files)
    return [*EVAL, "--dataset", str(tmp / "ds"), "--out", str(tmp / "out"), *extra]


def enc(tmp: Path, *extra: str, data: bytes | None = None, name: str = "in.jsonl") -> list[str]:
    (tmp / name).write_bytes(jsonl(CORPUS) if data is None else data)
    return ["encode", str(tmp / name), "--backbone", "tiny-ar", "--device", "cpu", "--out", str(tmp / "enc"), *extra]


def evrun(tmp: Path, run: bytes | None = None, qrels: bytes | None = None, *extra: str, run_name="r.trec") -> list[str]:
    if run is not None:
        (tmp / run_name).write_bytes(run)
    (tmp / "q.txt").write_bytes(TREC_QRELS.encode() if qrels is None else qrels)
    return ["eval-run", str(tmp / run_name), str(tmp / "q.txt"), *extra]


def anl(tmp: Path, text: bytes, name: str = "per_query.csv") -> list[str]:
    (tmp / name).write_bytes(text)
    return ["analyze", "--per-query", str(tmp / name), "--all-pairs", "--out", str(tmp / "an"), "--bootstrap", "100",
            "--permutations", "100"]


def cmp_bench(tmp: Path, base: dict | bytes, new: dict | bytes, *extra: str) -> list[str]:
    for name, obj in (("base.json", base), ("new.json", new)):
        (tmp / name).write_bytes(obj if isinstance(obj, bytes) else json.dumps(obj).encode())
    return ["compare", str(tmp / "base.json"), str(tmp / "new.json"), "--n-boot", "200", *extra]


def cmp_pq(tmp: Path, base: str, new: str) -> list[str]:
    (tmp / "b").mkdir()
    (tmp / "n").mkdir()
    (tmp / "b" / "per_query.csv").write_text(base)
    (tmp / "n" / "per_query.csv").write_text(new)
    return ["compare", str(tmp / "b" / "per_query.csv"), str(tmp / "n" / "per_query.csv"), "--n-boot", "200"]


def report(tmp: Path, name: str, text: str) -> list[str]:
    (tmp / "res" / "x").mkdir(parents=True)
    (tmp / "res" / "x" / name).write_text(text)
    return ["report", "--results", str(tmp / "res"), "--out", str(tmp / "rep"), "--no-pdf"]


GOOD_BENCH = bench_json([{"k": 1}, {"k": 2}])
BAD_UTF8_LINE = b'{"_id": "d2", "text": "caf\xe9"}'

CASES: list[Case] = [
    # ---- evaluate: the collection ------------------------------------------------------------------------
    Case("corpus invalid UTF-8", lambda t: ev(t, corpus=corpus_with(3, BAD_UTF8_LINE)),
         "ds/corpus.jsonl:3:27: invalid UTF-8", no_write="out"),
    Case("queries invalid UTF-8", lambda t: ev(t, queries=b'{"_id": "q1", "text": "\xff"}\n'),
         "ds/queries.jsonl:1:24: invalid UTF-8", no_write="out"),
    Case("qrels invalid UTF-8", lambda t: ev(t, qrels=QRELS.encode() + b"q2\td\xc3\t1\n"),
         "ds/qrels/test.tsv:5:", no_write="out"),
    Case("truncated corpus.jsonl.gz",
         lambda t: ev(t, corpus=gzip.compress(jsonl(BIG))[:2000], corpus_name="corpus.jsonl.gz"),
         ("corpus.jsonl.gz:", "the gzip data is truncated or corrupt"), no_write="out"),
    Case("UTF-16 corpus", lambda t: ev(t, corpus=jsonl(CORPUS).decode().encode("utf-16")),
         "corpus.jsonl: this is UTF-16 text", no_write="out"),
    Case("bzip2 data named corpus.jsonl", lambda t: ev(t, corpus=bz2.compress(jsonl(CORPUS))),
         "corpus.jsonl: this is bzip2-compressed", no_write="out"),
    Case("doc id with whitespace", lambda t: ev(t, corpus=corpus_with(4, b'{"_id": "d 3", "text": "x"}')),
         "ds/corpus.jsonl:4: expected a non-empty \"_id\" without whitespace", no_write="out"),
    Case("empty doc id", lambda t: ev(t, corpus=corpus_with(2, b'{"_id": "", "text": "x"}')),
         "ds/corpus.jsonl:2: expected a non-empty \"_id\"", no_write="out"),
    Case("query id with a tab", lambda t: ev(t, queries=b'{"_id": "q\\t1", "text": "x"}\n'),
         "ds/queries.jsonl:1: expected a non-empty \"_id\" without whitespace", no_write="out"),
    Case("empty corpus", lambda t: ev(t, corpus=b""), "ds/corpus.jsonl: expected at least one item",
         no_write="out"),
    Case("corpus of blank lines", lambda t: ev(t, corpus=b"\n\n  \n"), "ds/corpus.jsonl: expected at least one item",
         no_write="out"),
    Case("qrels all grades 0", lambda t: ev(t, qrels=b"query-id\tcorpus-id\tscore\nq1\td1\t0\nq2\td5\t0\n"),
         "ds/qrels/test.tsv: no judgement has a grade >= 1", no_write="out"),
    Case("qrels header only", lambda t: ev(t, qrels=b"query-id\tcorpus-id\tscore\n"),
         "ds/qrels/test.tsv: expected at least one judgement", no_write="out"),
    Case("title is a number", lambda t: ev(t, corpus=corpus_with(1, b'{"_id": "d0", "title": 7, "text": "x"}')),
         "ds/corpus.jsonl:1: expected \"title\" to be a string", no_write="out"),
    Case("_id is a list", lambda t: ev(t, corpus=corpus_with(1, b'{"_id": ["d0"], "text": "x"}')),
         "ds/corpus.jsonl:1: expected \"_id\" to be a string or an integer", no_write="out"),
    Case("JSON nested 100k deep", lambda t: ev(t, corpus=b"[" * 100_000 + b"\n"), "ds/corpus.jsonl:1:",
         no_write="out"),
    Case("corpus.jsonl is a directory", lambda t: (beir(t / "ds"), (t / "ds" / "corpus.jsonl").unlink(),
                                                  (t / "ds" / "corpus.jsonl").mkdir(),
                                                  [*EVAL, "--dataset", str(t / "ds"), "--out", str(t / "out")])[-1],
         "no corpus.jsonl", no_write="out"),
    Case("dataset is a file", lambda t: ((t / "f").write_text("x"),
                                        [*EVAL, "--dataset", str(t / "f"), "--out", str(t / "out")])[-1],
         "f: not a directory", no_write="out"),
    Case("unknown split", lambda t: ev(t, "--split", "dev"), "unknown split 'dev'; available splits: test",
         no_write="out"),
    # ---- evaluate: options (all checked before the first write) ------------------------------------------
    Case("--measures ndcg_cut_x", lambda t: ev(t, "--measures", "ndcg_cut_x"),
         "unknown measure 'ndcg_cut_x' (did you mean 'ndcg_cut' or 'ndcg_cut_10'?)",
         no_write="out"),
    Case("--measures ndgc@10", lambda t: ev(t, "--measures", "ndgc@10"), "unknown measure 'ndgc@10' (did you mean",
         no_write="out"),
    Case("--measures empty", lambda t: ev(t, "--measures", ","), "--measures", no_write="out"),
    Case("--kq 0", lambda t: ev(t, "--kq", "0"), "positive integers", no_write="out"),
    Case("--kp a,b", lambda t: ev(t, "--kp", "a,b"), "comma-separated list of integers", no_write="out"),
    Case("--kq 1,1", lambda t: ev(t, "--kq", "1,1"), "distinct", no_write="out"),
    Case("--batch-size 0 (evaluate)", lambda t: ev(t, "--batch-size", "0"), "--batch-size must be at least 1",
         no_write="out"),
    Case("--depth 0", lambda t: ev(t, "--depth", "0"), "depth must be positive", no_write="out"),
    Case("--max-length 4 (evaluate)", lambda t: ev(t, "--max-length", "4"), "--max-length 4 is too small",
         no_write="out"),
    Case("--modes bogus", lambda t: ev(t, "--modes", "bogus"), "bogus", no_write="out"),
    Case("--encoder bogus", lambda t: ev(t, "--encoder", "bogus"),
         "unknown encoder 'bogus'; known encoders: sequential, parallel", no_write="out"),
    Case("--subsample 3", lambda t: ev(t, "--subsample", "3"), "--subsample expects QUERIES,DISTRACTORS",
         no_write="out"),
    Case("--subsample 99,1", lambda t: ev(t, "--subsample", "99,1"), "n_queries must be between 1 and",
         no_write="out"),
    Case("unknown backbone", lambda t: ev(t, "--backbone", "gpt-9"), "gpt-9", no_write="out"),
    Case("real backbone without weights", lambda t: ev(t, "--backbone", "qwen2.5-7b-instruct"),
         "--model-path DIR", no_write="out"),
    Case("--model-path without config.json", lambda t: ev(t, "--backbone", "qwen2.5-7b-instruct",
                                                          "--model-path", str(t)),
         "is not a checkpoint directory (no config.json)", no_write="out"),
    Case("--out is a file", lambda t: ((t / "outfile").write_text("x"),
                                      [*ev(t)[:-2], "--out", str(t / "outfile")])[-1],
         "outfile"),
    # ---- encode ---------------------------------------------------------------------------------------------
    Case("encode --k 0", lambda t: enc(t, "--k", "0"), "--k must be a positive integer", no_write="enc"),
    Case("encode --k -3", lambda t: enc(t, "--k", "-3"), "option --k: expected a whole number in [0, ", no_write="enc"),
    Case("encode --k 0", lambda t: enc(t, "--k", "0"), "--k must be a positive integer", no_write="enc"),
    Case("encode --batch-size 0", lambda t: enc(t, "--batch-size", "0"), "--batch-size must be a positive integer",
         no_write="enc"),
    Case("encode --shard-size 0", lambda t: enc(t, "--shard-size", "0"), "--shard-size must be a positive integer",
         no_write="enc"),
    Case("encode --k 65", lambda t: enc(t, "--k", "65"), "K must be an integer between 1 and 64", no_write="enc"),
    Case("encode --denoise-steps 0", lambda t: enc(t, "--denoise-steps", "0"), "denoise_steps must be >= 1",
         no_write="enc"),
    Case("encode --max-length 3", lambda t: enc(t, "--max-length", "3"), "--max-length 3 is too small",
         no_write="enc"),
    Case("encode --encoder bogus", lambda t: enc(t, "--encoder", "bogus"), "unknown encoder 'bogus'; known",
         no_write="enc"),
    Case("encode missing input", lambda t: ["encode", str(t / "nope.jsonl"), "--backbone", "tiny-ar",
                                            "--out", str(t / "enc")], "nope.jsonl: no such file", no_write="enc"),
    Case("encode invalid UTF-8", lambda t: enc(t, data=corpus_with(5, BAD_UTF8_LINE)), "in.jsonl:5:27: invalid UTF-8",
         no_write="enc"),
    Case("encode truncated .gz", lambda t: enc(t, data=gzip.compress(jsonl(BIG))[:2000], name="in.jsonl.gz"),
         ("in.jsonl.gz:", "the gzip data is truncated or corrupt"), no_write="enc"),
    Case("encode empty input", lambda t: enc(t, data=b""), "expected at least one item", no_write="enc"),
    Case("encode id with space", lambda t: enc(t, data=corpus_with(2, b'{"_id": "a b", "text": "x"}')),
         "in.jsonl:2: expected a non-empty \"_id\" without whitespace", no_write="enc"),
    Case("encode --out is a file", lambda t: ((t / "enc").write_text("x"), enc(t))[-1], "enc"),
    # ---- eval-run -------------------------------------------------------------------------------------------
    Case("missing run file", lambda t: evrun(t, None), "r.trec: no such file"),
    Case("missing qrels file", lambda t: [*evrun(t, RUN.encode())[:2], str(t / "nope.txt")], "nope.txt: no such file"),
    Case("run invalid UTF-8", lambda t: evrun(t, RUN.encode() + b"q2 Q0 d\xe97 3 0.5 t\n"), "r.trec:5:8: invalid UTF-8"),
    Case("qrels invalid UTF-8 (TREC)", lambda t: evrun(t, RUN.encode(), b"q1 0 d1 1\n\xc0\n"), "q.txt:2:1: invalid UTF-8"),
    Case("run truncated .gz", lambda t: evrun(t, gzip.compress(RUN.encode() * 50)[:40], run_name="r.trec.gz"),
         ("r.trec.gz:1: the gzip data is truncated or corrupt",)),
    Case("run 5 fields", lambda t: evrun(t, b"q1 Q0 d1 1 2.0\n"), "r.trec:1: expected 6 whitespace-separated"),
    Case("run NaN score", lambda t: evrun(t, b"q1 Q0 d1 1 nan t\n"), "r.trec:1: expected a finite score"),
    Case("run inf score", lambda t: evrun(t, b"q1 Q0 d1 1 -inf t\n"), "r.trec:1: expected a finite score"),
    Case("run score 1,5", lambda t: evrun(t, b"q1 Q0 d1 1 1,5 t\n"), "r.trec:1: expected a numeric score"),
    Case("empty run file", lambda t: evrun(t, b""), "r.trec: expected at least one run line"),
    Case("run of comments only", lambda t: evrun(t, b"# nothing\n\n"), "r.trec: expected at least one run line"),
    Case("qrels all zero (eval-run)", lambda t: evrun(t, RUN.encode(), b"q1 0 d1 0\n"), "q.txt: no judgement has a grade >= 1"),
    Case("--relevance-level above every grade", lambda t: evrun(t, RUN.encode(), None, "--relevance-level", "3"),
         "q.txt: no judgement has a grade >= 3"),
    Case("eval-run --measures ndcg_cut_x", lambda t: evrun(t, RUN.encode(), None, "--measures", "ndcg_cut_x"),
         "unknown measure 'ndcg_cut_x' (did you mean"),
    Case("qrels grade 1.5", lambda t: evrun(t, RUN.encode(), b"q1 0 d1 1.5\n"), "q.txt:1: expected an integer relevance"),
    Case("qrels 2 fields", lambda t: evrun(t, RUN.encode(), b"q1 d1\n"), "q.txt:1: expected 4 fields"),
    Case("run is a directory", lambda t: ((t / "rd").mkdir(), evrun(t, None, None, run_name="rd"))[-1],
         "rd: is a directory"),
    # ---- analyze / significance (per-query tables) -----------------------------------------------------------
    Case("per_query header only", lambda t: anl(t, PQ_HEADER.encode()), "per_query.csv: expected at least one row"),
    Case("per_query empty file", lambda t: anl(t, b""), "per_query.csv"),
    Case("per_query NaN value", lambda t: anl(t, per_query(["0.5", "nan", "0.2"]).encode()), "per_query.csv:3:"),
    Case("per_query empty value", lambda t: anl(t, per_query(["0.5", "", "0.2"]).encode()), "per_query.csv:3:"),
    Case("per_query inf value", lambda t: anl(t, per_query(["inf", "0.1", "0.2"]).encode()), "per_query.csv:2:"),
    Case("per_query invalid UTF-8", lambda t: anl(t, per_query(["0.5", "0.1"]).encode() + b"\xff\n"),
         "per_query.csv:6:1: invalid UTF-8"),
    Case("per_query missing column", lambda t: anl(t, b"dataset,qid,value\nx,1,0.5\n"), "per_query.csv:1: expected columns"),
    Case("per_query k_q 1.5", lambda t: anl(t, per_query(["0.5"]).replace(",1,1,", ",1.5,1,").encode()),
         "per_query.csv:2: expected a positive integer k_q"),
    Case("per_query missing file", lambda t: ["analyze", "--per-query", str(t / "no.csv"), "--all-pairs", "--out",
                                              str(t / "an")], "no.csv: no such file"),
    Case("significance missing run", lambda t: (evrun(t, RUN.encode()), ["significance", str(t / "r.trec"),
                                                str(t / "missing.trec"), "--qrels", str(t / "q.txt")])[-1],
         "missing.trec: no such file"),
    Case("significance run invalid UTF-8", lambda t: (evrun(t, RUN.encode()), (t / "b.trec").write_bytes(b"\xfe\n"),
                                                      ["significance", str(t / "r.trec"), str(t / "b.trec"),
                                                       "--qrels", str(t / "q.txt")])[-1], "b.trec:1:1: invalid UTF-8"),
    Case("significance qrels all zero", lambda t: (evrun(t, RUN.encode(), b"q1 0 d1 0\n"),
                                                   (t / "r2.trec").write_text(RUN),
                                                   ["significance", str(t / "r.trec"), str(t / "r2.trec"),
                                                    "--qrels", str(t / "q.txt")])[-1],
         "q.txt: no judgement has a grade >= 1"),
    # ---- compare ------------------------------------------------------------------------------------------
    Case("compare gate with 0 matched cells", lambda t: cmp_bench(t, GOOD_BENCH, bench_json([]), "--fail-above", "10%"),
         "0 cells matched"),
    Case("compare gate with disjoint cells", lambda t: cmp_bench(t, bench_json([{"k": 1}]), bench_json([{"k": 4}]),
                                                                 "--fail-above", "10%"), "0 cells matched"),
    Case("bench JSON invalid UTF-8", lambda t: cmp_bench(t, GOOD_BENCH, json.dumps(GOOD_BENCH).encode()[:-1] + b"\xff}"),
         "new.json:1:"),
    Case("bench JSON truncated", lambda t: cmp_bench(t, GOOD_BENCH, json.dumps(GOOD_BENCH).encode()[:100]),
         "new.json:1: expected a bench JSON"),
    Case("bench JSON NaN sample", lambda t: cmp_bench(t, GOOD_BENCH, bench_json([{"k": 1}], [0.01, float("nan")])),
         "new.json: benchmarks[0] (test_encode[1]): extra_info.samples_s must be positive finite seconds"),
    Case("bench JSON Infinity sample", lambda t: cmp_bench(t, GOOD_BENCH, bench_json([{"k": 1}], [0.01, float("inf")])),
         "new.json: benchmarks[0] (test_encode[1]): extra_info.samples_s must be positive finite seconds"),
    Case("bench JSON string sample", lambda t: cmp_bench(t, GOOD_BENCH, bench_json([{"k": 1}], [0.01, "fast"])),
         "new.json: benchmark"),
    Case("bench JSON is a list", lambda t: cmp_bench(t, GOOD_BENCH, b"[1, 2]"), "new.json: not a bench JSON"),
    Case("compare per_query inf", lambda t: cmp_pq(t, per_query(["0.5", "0.1"]), per_query(["0.5", "inf"])),
         "n/per_query.csv:3:"),
    Case("compare per_query NaN", lambda t: cmp_pq(t, per_query(["nan", "0.1"]), per_query(["0.5", "0.2"])),
         "b/per_query.csv:2:"),
    Case("compare per_query header only", lambda t: cmp_pq(t, per_query(["0.5"]), PQ_HEADER),
         "n/per_query.csv: expected at least one row"),
    Case("compare missing file", lambda t: ["compare", str(t / "a.json"), str(t / "b.json")], "a.json: no such file"),
    # ---- report ---------------------------------------------------------------------------------------------
    Case("report per_query NaN row", lambda t: report(t, "per_query.csv", per_query(["0.5", "nan"])),
         "per_query.csv:3:"),
    Case("report summary inf mean", lambda t: report(
        t, "summary.csv", "dataset,backbone,family,encoder,k_q,k_p,mode,measure,mean,n\n"
                          "syn,tiny-ar,ar,sequential,1,1,single_dense,ndcg_cut_10,inf,3\n"), "summary.csv:2:"),
]

def pq_file(tmp: Path) -> str:
    (tmp / "per_query.csv").write_text(per_query(["0.5", "0.1", "0.3"]))
    return str(tmp / "per_query.csv")


def an_opts(tmp: Path, *extra: str) -> list[str]:
    return ["analyze", "--per-query", pq_file(tmp), "--all-pairs", "--out", str(tmp / "an"), "--bootstrap", "100",
            *extra]


CASES += [
    # ---- found later, the same way ---------------------------------------------------------------------------
    Case("_id with 5000 digits", lambda t: ev(t, corpus=corpus_with(1, b'{"_id": ' + b"9" * 5000 + b', "text": "x"}')),
         "ds/corpus.jsonl:1: expected a JSON object (Exceeds the limit", no_write="out"),
    Case("sweep_state.json damaged by hand", lambda t: (ev(t), (t / "out").mkdir(),
                                                        (t / "out" / "sweep_state.json").write_text('{"backbone": "t'),
                                                        ev(t))[-1],
         "out/sweep_state.json:1: expected the sweep_state.json of an earlier run, got invalid JSON"),
    Case("--dtype float7", lambda t: ev(t, "--dtype", "float7"), "unknown dtype 'float7'", no_write="out"),
    Case("--device cuda without a GPU", lambda t: ev(t, "--device", "cuda:7"), "requested but CUDA is not available",
         no_write="out"),
    Case("encode --attn flash9", lambda t: enc(t, "--attn", "flash9"), "unknown attention backend 'flash9'",
         no_write="enc"),
    Case("qrels judge no query with a text", lambda t: ev(t, qrels=b"query-id\tcorpus-id\tscore\nzz\td1\t1\n"),
         "no judged query has a text", no_write="out"),
    Case("analyze --alpha 1.5", lambda t: an_opts(t, "--alpha", "1.5"), "alpha must be in (0, 1)", no_write="an"),
    Case("analyze --bootstrap 0", lambda t: an_opts(t)[:-2] + ["--bootstrap", "0"], "n_bootstrap must be >= 1",
         no_write="an"),
    Case("analyze --budget-q 0", lambda t: an_opts(t, "--budget-q", "0"), "budget_q must be a positive integer",
         no_write="an"),
    Case("analyze unknown --baseline", lambda t: an_opts(t)[:3] + ["--baseline", "x/y/q1p1/single_dense"] + an_opts(t)[4:],
         "baseline 'x/y/q1p1/single_dense' is not among the systems", no_write="an"),
    Case("analyze --out is a file", lambda t: ((t / "f").write_text("x"), an_opts(t)[:4] + ["--out", str(t / "f")])[-1],
         "f/significance.csv: cannot write"),
    Case("compare --tolerance-for without =", lambda t: cmp_bench(t, GOOD_BENCH, GOOD_BENCH, "--tolerance-for", "oops"),
         "--tolerance-for expects PATTERN=TOL"),
    Case("compare --fail-above on per-query tables", lambda t: [*cmp_pq(t, per_query(["0.5"]), per_query(["0.4"])),
                                                               "--fail-above", "10%"],
         "--fail-above gates latency, but"),
    Case("report --results missing", lambda t: ["report", "--results", str(t / "nope"), "--out", str(t / "rep")],
         "nope does not exist"),
    Case("baselines --root missing", lambda t: ["baselines", "--root", str(t / "nope")], "nope: no baselines directory"),
    Case("search on directories that are no stores",
         lambda t: ((t / "q").mkdir(), (t / "d").mkdir(),
                    ["search", "--queries", str(t / "q"), "--docs", str(t / "d"), "--out", str(t / "o")])[-1],
         "q is not a complete representations directory", no_write="o"),
    Case("search --max-memory lots", lambda t: ["search", "--queries", str(t / "q"), "--docs", str(t / "d"), "--out",
                                                str(t / "o"), "--max-memory", "lots"], "--max-memory expects a size"),
    Case("merge a directory that is no store", lambda t: ((t / "x").mkdir(), ["merge", str(t / "x")])[-1],
         "x: no config.json; not a representations directory"),
    Case("adapt on a per_query.csv with a NaN", lambda t: (
        (t / "per_query.csv").write_text(per_query(["0.5", "nan"])),
        ["adapt", "--per-query", str(t / "per_query.csv"), "--out", str(t / "a")])[-1], "per_query.csv:3:",
        no_write="a"),
    Case("adapt signals.csv invalid UTF-8", lambda t: (
        (t / "per_query.csv").write_text(per_query(["0.5", "0.1"])), (t / "s.csv").write_bytes(b"k_q\n\xff\n"),
        ["adapt", "--per-query", str(t / "per_query.csv"), "--signals", str(t / "s.csv"), "--out", str(t / "a")])[-1],
        "s.csv:2:1: invalid UTF-8", no_write="a"),
    Case("encode config.json damaged by hand",
         lambda t: (enc(t), (t / "enc").mkdir(), (t / "enc" / "config.json").write_text('{"a": '), enc(t))[-1],
         "enc/config.json: damaged"),
]

# ---- issue 25: trust under attack and faults -----------------------------------------------------------------
# Options outside any sane range, ids that differ between readers, unbounded reads, stores that lie, small
# output bugs. Every case must end in one clear exit-2 line (and write nothing where marked); the cases that
# need exact numbers or a process limit are the tests after the table.

def _obj(_id: object, text: str = "alpha", title: str | None = None) -> bytes:
    row = {"_id": _id, "text": text} | ({"title": title} if title is not None else {})
    return json.dumps(row).encode()


def _store_template() -> Path:
    """A query store and a 3-shard passage store of tiny-ar (and a tiny-diffusion passage store), built once
    per test session by the real CLI and copied into each case's directory."""
    import tempfile

    global _TEMPLATE
    if _TEMPLATE is None:
        import atexit
        import shutil

        root = Path(tempfile.mkdtemp(prefix="repbench-hostile-stores-"))
        atexit.register(shutil.rmtree, root, True)  # removed when the test session ends
        (root / "c.jsonl").write_bytes(jsonl(CORPUS))
        (root / "q.jsonl").write_bytes(jsonl(QUERIES))
        base = ["--device", "cpu", "--no-progress"]
        for argv in (["encode", str(root / "c.jsonl"), "--backbone", "tiny-ar", "--out", str(root / "p"),
                      "--shard-size", "4", *base],
                     ["encode", str(root / "q.jsonl"), "--backbone", "tiny-ar", "--side", "query", "--out",
                      str(root / "q"), *base],
                     ["encode", str(root / "c.jsonl"), "--backbone", "tiny-diffusion", "--out", str(root / "pd"),
                      "--shard-size", "4", *base]):
            assert main(argv) == 0
        _TEMPLATE = root
    return _TEMPLATE


_TEMPLATE: Path | None = None


def stores(tmp: Path, edit: Callable[[Path], object] | None = None, *extra: str, docs: str = "p") -> list[str]:
    """`repbench search` over copies of the template stores, after `edit(passage store)`."""
    import shutil

    template = _store_template()
    for name in ("q", docs):
        shutil.copytree(template / name, tmp / name, symlinks=True)
    if edit is not None:
        edit(tmp / docs)
    return ["search", "--queries", str(tmp / "q"), "--docs", str(tmp / docs), "--out", str(tmp / "o"),
            "--no-progress", *extra]


def _edit_manifest(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(store: Path) -> None:
        manifest = json.loads((store / "manifest.json").read_text())
        change(manifest)
        (store / "manifest.json").write_text(json.dumps(manifest))
    return edit


def _edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(store: Path) -> None:
        obj = json.loads((store / name).read_text())
        change(obj)
        (store / name).write_text(json.dumps(obj))
    return edit


def _replace(name: str, make: Callable[[Path], object]) -> Callable[[Path], None]:
    def edit(store: Path) -> None:
        (store / name).unlink()
        make(store / name)
    return edit


def _fifo(path: Path) -> None:
    import os

    os.mkfifo(path)


def _outside(path: Path) -> None:
    import shutil

    shutil.copy(_store_template() / "p" / path.name, path.parent.parent / path.name)
    path.symlink_to(path.parent.parent / path.name)


SMALL_LINES = {"REPBENCH_MAX_LINE_BYTES": "200"}
BIG_LINE = b'{"_id": "d0", "text": "' + b"x" * 400 + b'"}'
# The smallest positive double: a valid timing, but NEW/BASE overflows to inf.
ZERO_BENCH = bench_json([{"k": 1}], samples=[5e-324] * 5)
MANY_QRELS = "".join(f"q1 0 x{i} 1\n" for i in range(40)).encode()

ISSUE25: list[Case] = [
    # ---- options: one check of every option before anything is read or written (option_checks.py) ---------
    Case("evaluate --relevance-level -1", lambda t: ev(t, "--relevance-level", "-1"),
         "option --relevance-level: expected a whole number in [1, 2147483647], got -1", no_write="out"),
    Case("evaluate --relevance-level 0 (pytrec_eval takes none below 1)", lambda t: ev(t, "--relevance-level", "0"),
         "option --relevance-level: expected a whole number in [1, 2147483647], got 0", no_write="out"),
    Case("eval-run -l -1", lambda t: evrun(t, RUN.encode(), None, "-l", "-1"),
         "option --relevance-level: expected a whole number in [1, 2147483647], got -1"),
    Case("eval-run -l beyond a C int", lambda t: evrun(t, RUN.encode(), None, "-l", str(2**31)),
         "got 2147483648"),
    Case("significance --relevance-level -5", lambda t: ["significance", *evrun(t, RUN.encode())[1:2],
                                                          *evrun(t, RUN.replace("3.0", "0.5").encode(), None,
                                                                 run_name="r2.trec")[1:2],
                                                          "--qrels", str(t / "q.txt"), "--relevance-level", "-5"],
         "option --relevance-level: expected a whole number"),
    Case("evaluate --seed -1", lambda t: ev(t, "--seed", "-1"), "option --seed: expected a whole number in [0, ",
         no_write="out"),
    Case("analyze --seed 2**64", lambda t: an_opts(t, "--seed", str(2**64)), "option --seed: expected a whole number",
         no_write="an"),
    Case("evaluate --depth 2**31", lambda t: ev(t, "--depth", str(2**31)), "option --depth: expected a whole number",
         no_write="out"),
    Case("evaluate --kq past int64", lambda t: ev(t)[:4] + ["9223372036854775808"] + ev(t)[5:],
         "--kq: K values must be at most 2147483647", no_write="out"),
    Case("evaluate --batch-size 2**40", lambda t: ev(t, "--batch-size", str(2**40)), "option --batch-size:",
         no_write="out"),
    Case("encode --k 99999999999", lambda t: enc(t, "--k", "99999999999"), "option --k: expected a whole number",
         no_write="enc"),
    Case("encode --shard-size -3", lambda t: enc(t, "--shard-size", "-3"), "option --shard-size:", no_write="enc"),
    Case("search --max-memory 1e400", lambda t: stores(t, None, "--max-memory", "1e400"),
         "--max-memory expects a finite size below 2**63 bytes, got '1e400'", no_write="o"),
    Case("search --chunk-docs 2**40", lambda t: stores(t, None, "--chunk-docs", str(2**40)), "option --chunk-docs:",
         no_write="o"),
    Case("analyze --alpha nan", lambda t: an_opts(t, "--alpha", "nan"), "option --alpha: expected a finite number",
         no_write="an"),
    Case("analyze --alpha inf", lambda t: an_opts(t, "--alpha", "inf"), "option --alpha: expected a finite number",
         no_write="an"),
    Case("compare --eff-tolerance inf", lambda t: cmp_pq(t, per_query(["0.5"]), per_query(["0.4"])) + [
        "--eff-tolerance", "inf"], "option --eff-tolerance: expected a finite number"),
    Case("compare --n-boot -1", lambda t: cmp_bench(t, GOOD_BENCH, GOOD_BENCH)[:-2] + ["--n-boot", "-1"],
         "option --n-boot: expected a whole number"),
    Case("evaluate --denoise-steps 2**31 - 1 (was a hang)", lambda t: ev(t, "--denoise-steps", str(2**31 - 1)),
         "denoise_steps must be at most 64", no_write="out"),
    Case("eval-run -m ndcg_cut beyond a C int", lambda t: evrun(t, RUN.encode(), None, "-m", "ndcg_cut.9999999999999"),
         "cutoffs must be at most 2147483647"),
    Case("compare --fail-above inf", lambda t: cmp_bench(t, GOOD_BENCH, GOOD_BENCH, "--fail-above", "inf"),
         "option --fail-above: expected a finite number, got inf"),
    Case("compare --tolerance nan", lambda t: cmp_bench(t, GOOD_BENCH, GOOD_BENCH, "--tolerance", "nan"),
         "option --tolerance: expected a finite number, got nan"),
    Case("predict --peak-flops inf", lambda t: ["predict", "--backbone", "tiny-ar", "--peak-flops", "inf",
                                                "--peak-bandwidth", "1e12"], "option --peak-flops: expected a finite"),
    # ---- ids: one rule for queries, corpus, qrels and runs (ids.check_id) ----------------------------------
    Case("corpus _id with a NUL", lambda t: ev(t, corpus=corpus_with(2, _obj("d1\u0000x"))),
         ("ds/corpus.jsonl:2:", "control character U+0000"), no_write="out"),
    Case("queries _id a lone surrogate", lambda t: ev(t, queries=b'{"_id": "q\\ud800", "text": "alpha"}\n'),
         ("queries.jsonl:1:", "lone surrogate U+D800"), no_write="out"),
    Case("queries _id starting with #", lambda t: ev(t, queries=jsonl([{"_id": "#q1", "text": "alpha"}])),
         ("queries.jsonl:1:", "starts with '#'"), no_write="out"),
    Case("corpus text with a lone surrogate", lambda t: ev(t, corpus=corpus_with(3, b'{"_id": "d2", "text": "a\\udc80"}')),
         ("corpus.jsonl:3:", '"text" to be valid Unicode'), no_write="out"),
    Case("corpus title with a lone surrogate",
         lambda t: ev(t, corpus=corpus_with(4, b'{"_id": "d3", "title": "\\ud83d", "text": "a"}')),
         ("corpus.jsonl:4:", '"title" to be valid Unicode'), no_write="out"),
    Case("corpus _id with NEL (U+0085)", lambda t: ev(t, corpus=corpus_with(5, _obj("d4\u0085"))),
         ("corpus.jsonl:5:", "whitespace U+0085"), no_write="out"),
    Case("corpus _id with DEL", lambda t: ev(t, corpus=corpus_with(6, _obj("d\u007f5"))),
         ("corpus.jsonl:6:", "control character U+007F"), no_write="out"),
    Case("encode _id with an escape character", lambda t: enc(t, data=corpus_with(1, _obj("d\u001b[31m"))),
         ("in.jsonl:1:", "control character U+001B"), no_write="enc"),
    Case("BEIR qrels doc id with a control character",
         lambda t: ev(t, qrels=b"query-id\tcorpus-id\tscore\nq1\td1\x01\t1\n"),
         ("qrels/test.tsv:2:", "the doc id (column 2)", "U+0001"), no_write="out"),
    Case("run doc id with a NUL", lambda t: evrun(t, b"q1 Q0 d1\x00x 1 2.0 t\nq2 Q0 d5 1 3.0 t\n"),
         ("r.trec:1:", "the doc id (column 3)", "U+0000")),
    Case("run query id with an escape", lambda t: evrun(t, b"q\x1b1 Q0 d1 1 2.0 t\n"),
         ("r.trec:1:", "the query id (column 1)", "U+001B")),
    Case("TREC qrels doc id starting with #", lambda t: evrun(t, RUN.encode(), b"q1 0 #d1 1\nq2 0 d5 2\n"),
         ("q.txt:1:", "the doc id (column 3)", "starts with '#'")),
    Case("run doc id starting with #", lambda t: evrun(t, b"q1 Q0 #d1 1 2.0 t\n"), ("r.trec:1:", "starts with '#'")),
    Case("qrels grade beyond a C int", lambda t: evrun(t, RUN.encode(), b"q1 0 d1 2147483648\n"),
         ("q.txt:1:", "within the C int range [-2147483648, 2147483647]")),
    Case("qrels grade below a C int", lambda t: evrun(t, RUN.encode(), b"q1 0 d1 1\nq2 0 d5 -2147483649\n"),
         ("q.txt:2:", "within the C int range")),
    Case("qrels grade of 30 digits", lambda t: evrun(t, RUN.encode(), b"q1 0 d1 " + b"9" * 30 + b"\n"),
         ("q.txt:1:", "within the C int range")),
    # ---- bounded reads (limits: REPBENCH_MAX_LINE_BYTES / _INPUT_BYTES / _DOCUMENT_BYTES) ----------------------
    Case("corpus line over the line limit", lambda t: ev(t, corpus=corpus_with(2, BIG_LINE)),
         ("ds/corpus.jsonl:2:", "a line longer than the limit of 200 bytes", "REPBENCH_MAX_LINE_BYTES"),
         no_write="out", env=SMALL_LINES),
    Case("gzip corpus expanding past the line limit", lambda t: ev(t, corpus=gzip.compress(b"{" * 10_000_000)),
         ("corpus.jsonl:1:", "a line longer than the limit of 200 bytes"), no_write="out", env=SMALL_LINES),
    Case("run file line over the line limit", lambda t: evrun(t, b"q1 Q0 d1 1 2.0 " + b"t" * 300 + b"\n"),
         ("r.trec:1:", "longer than the limit of 200 bytes"), env=SMALL_LINES),
    Case("qrels larger than the input limit", lambda t: evrun(t, RUN.encode(), MANY_QRELS),
         ("q.txt:", "larger than the limit of 300 bytes", "REPBENCH_MAX_INPUT_BYTES"),
         env={"REPBENCH_MAX_INPUT_BYTES": "300"}),
    Case("bench JSON larger than the document limit", lambda t: cmp_bench(t, GOOD_BENCH, GOOD_BENCH),
         ("base.json:", "larger than the limit of 100 bytes", "REPBENCH_MAX_DOCUMENT_BYTES"),
         env={"REPBENCH_MAX_DOCUMENT_BYTES": "100"}),
    Case("per_query.csv gzip bomb under the document limit",
         lambda t: anl(t, gzip.compress(PQ_HEADER.encode() + b"\n" * 5_000_000)),
         ("per_query.csv:", "larger than the limit of 1000000 bytes"), no_write="an",
         env={"REPBENCH_MAX_DOCUMENT_BYTES": "1000000"}),
    Case("signals.csv with one endless line",
         lambda t: ((t / "per_query.csv").write_text(per_query(["0.5", "0.1"])),
                    (t / "s.csv").write_bytes(gzip.compress(b"k_q," * 1_000_000)),
                    ["adapt", "--per-query", str(t / "per_query.csv"), "--signals", str(t / "s.csv"), "--out",
                     str(t / "a")])[-1],
         ("s.csv:1:", "a line longer than the limit of 200 bytes"), no_write="a", env=SMALL_LINES),
    Case("a limit that is not a number", lambda t: evrun(t, RUN.encode()),
         "REPBENCH_MAX_LINE_BYTES='64k': expected a positive whole number of bytes",
         env={"REPBENCH_MAX_LINE_BYTES": "64k"}),
    # ---- stores: consistent with config.json, files checked before they are read ---------------------------
    Case("manifest missing a shard entry", lambda t: stores(t, _edit_manifest(lambda m: m["shards"].pop())),
         ("p/manifest.json does not describe the store", "2 shard entries"), no_write="o"),
    Case("manifest with no shards", lambda t: stores(t, _edit_manifest(lambda m: m.update(shards=[], n_shards=0))),
         ("p/manifest.json does not describe the store", "0 shard entries"), no_write="o"),
    Case("manifest n_items edited", lambda t: stores(t, _edit_manifest(lambda m: m.update(n_items=8))),
         ("does not describe the store", "n_items 8 (config.json: 12)"), no_write="o"),
    Case("manifest shard rows edited", lambda t: stores(t, _edit_manifest(lambda m: m["shards"][1].update(rows=3))),
         ("does not describe the store", "shard entry 1"), no_write="o"),
    Case("manifest is a JSON list", lambda t: stores(t, lambda s: (s / "manifest.json").write_text("[]")),
         "manifest.json: expected a store manifest (JSON object), got list", no_write="o"),
    Case("shard symlinked to /dev/zero",
         lambda t: stores(t, _replace("shard_00001.safetensors", lambda p: p.symlink_to("/dev/zero"))),
         ("shard_00001.safetensors: a symlink to /dev/zero, outside the store directory",), no_write="o"),
    Case("shard is a FIFO", lambda t: stores(t, _replace("shard_00002.safetensors", _fifo)),
         "shard_00002.safetensors: not a regular file", no_write="o"),
    Case("shard symlinked to a file outside the store",
         lambda t: stores(t, _replace("shard_00000.safetensors", _outside)), "outside the store directory",
         no_write="o"),
    Case("sidecar symlinked to /dev/zero",
         lambda t: stores(t, _replace("shard_00000.json", lambda p: p.symlink_to("/dev/zero"))),
         "shard_00000.json: a symlink to /dev/zero", no_write="o"),
    Case("queries and passages of different backbones", lambda t: stores(t, docs="pd"),
         ("differ in backbone 'tiny-ar' vs 'tiny-diffusion'", "--allow-mixed"), no_write="o"),
    Case("merge: config.json a JSON list", lambda t: (stores(t, lambda s: (s / "config.json").write_text("[]")),
                                                     ["merge", str(t / "p")])[-1],
         "p/config.json: expected a store config with whole n_items"),
    Case("merge: config.json n_items a string",
         lambda t: (stores(t, _edit_json("config.json", lambda c: c.update(n_items="12"))), ["merge", str(t / "p")])[-1],
         "p/config.json: expected a store config with whole n_items"),
    Case("merge: config.json symlinked to /dev/zero",
         lambda t: (stores(t, _replace("config.json", lambda p: p.symlink_to("/dev/zero"))), ["merge", str(t / "p")])[-1],
         "p/config.json: a symlink to /dev/zero"),
    Case("search: config.json shard_size edited", lambda t: stores(t, _edit_json("config.json",
                                                                                 lambda c: c.update(shard_size=5))),
         ("does not describe the store", "shard_size 4 (config.json: 5)"), no_write="o"),
    # ---- small ones -------------------------------------------------------------------------------------------
    Case("compare: a base median of 0 s (ratio inf)", lambda t: cmp_bench(t, ZERO_BENCH, bench_json([{"k": 1}]),
                                                                          "--fail-above", "10%"),
         ("the latency ratio NEW/BASE is inf", "expected positive timings")),
]
CASES += ISSUE25


# Mistyped names: one line with the closest name (errors.did_you_mean, as for measures, backbones, modes).
TYPOS: list[Case] = [
    Case("evaluate --encoder sequentail", lambda t: ev(t, "--encoder", "sequentail"),
         "error: unknown encoder 'sequentail' (did you mean 'sequential'?); known encoders:", no_write="out"),
    Case("encode --encoder paralel", lambda t: enc(t, "--encoder", "paralel"),
         "error: unknown encoder 'paralel' (did you mean 'parallel'?)", no_write="enc"),
    Case("evaluate --dataset with a typo", lambda t: (beir(t / "scifact"),
                                                      [*EVAL, "--dataset", str(t / "scifcat"), "--out", str(t / "out")])[-1],
         "scifcat: not a directory (did you mean 'scifact'?)", no_write="out"),
    Case("analyze --dataset with a typo", lambda t: an_opts(t, "--dataset", "synn"),
         "dataset 'synn' not in the per-query table (did you mean 'syn'?); it has syn", no_write="an"),
    Case("adapt --dataset with a typo", lambda t: ["adapt", "--per-query", pq_file(t), "--dataset", "sin", "--out",
                                                   str(t / "a")],
         "dataset 'sin' is not in the per-query table (did you mean 'syn'?); it has syn", no_write="a"),
]
CASES += TYPOS

PASSES: list[Case] = [
    # inputs that look odd but are valid: they must give the right answer, not an error
    Case("corpus with BOM", lambda t: ev(t, corpus=b"\xef\xbb\xbf" + jsonl(CORPUS)), "", rc=0),
    Case("qrels with BOM", lambda t: ev(t, qrels=b"\xef\xbb\xbf" + QRELS.encode()), "", rc=0),
    Case("gzip corpus without .gz suffix", lambda t: ev(t, corpus=gzip.compress(jsonl(CORPUS))), "", rc=0),
    Case("CRLF line endings", lambda t: ev(t, corpus=jsonl(CORPUS).replace(b"\n", b"\r\n"),
                                           qrels=QRELS.replace("\n", "\r\n").encode()), "", rc=0),
]


def _run(case: Case, tmp_path: Path, capsys) -> tuple[int, str]:
    argv = case.setup(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage error (exit 2, a usage line and the message)
        rc = exc.code
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case_ends_in_a_clear_message(case: Case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPBENCH_LOG_DIR", str(tmp_path / "log"))
    for name, value in (case.env or {}).items():
        monkeypatch.setenv(name, value)
    rc, err = _run(case, tmp_path, capsys)
    assert "Traceback" not in err
    assert "internal error" not in err, err
    assert rc == case.rc, err
    for expect in (case.expect,) if isinstance(case.expect, str) else case.expect:
        assert expect in err, err
    if case.no_write:
        assert not (tmp_path / case.no_write).exists(), f"{case.no_write} was written before the error"


@pytest.mark.parametrize("case", TYPOS, ids=[c.name for c in TYPOS])
def test_mistyped_name_is_one_line_not_a_usage_dump(case: Case, tmp_path, capsys):
    """argparse's choices=... printed the usage and the whole list; the typo's line is all there is now."""
    _, err = _run(case, tmp_path, capsys)
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err, err


def _values(out_dir: Path) -> dict[tuple[str, str], float]:
    import pandas as pd

    table = pd.read_csv(out_dir / "per_query.csv", dtype={"qid": str})
    return {(r.qid, r.measure): r.value for r in table.itertuples()}


@pytest.mark.parametrize("case", PASSES, ids=[c.name for c in PASSES])
def test_odd_but_valid_input_gives_the_plain_result(case: Case, tmp_path, capsys):
    """A BOM, gzip without the suffix or CRLF must give exactly the numbers of the plain files."""
    rc, err = _run(case, tmp_path, capsys)
    assert rc == 0, err
    plain = tmp_path / "plain"
    beir(plain)
    assert main([*EVAL, "--dataset", str(plain), "--out", str(tmp_path / "plain-out")]) == 0
    ours, ref = _values(tmp_path / "out"), _values(tmp_path / "plain-out")
    assert ours == ref
    assert ours[("q1", "recall_100")] == 1.0  # q1 (with a BOM in front, "\ufeffq1") still matches its qrels


def test_run_with_bom_scores_its_first_query(tmp_path, capsys):
    """A BOM before qid "q1" used to turn it into "\\ufeffq1", silently scoring q1 zero."""
    argv = evrun(tmp_path, b"\xef\xbb\xbf" + RUN.encode(), None, "--format", "csv", "--per-query",
                 "--measures", "recip_rank")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "q1,recip_rank,1.0" in out and "q2,recip_rank,1.0" in out


def test_gate_says_how_many_cells_it_compared(tmp_path, capsys):
    argv = cmp_bench(tmp_path, GOOD_BENCH, GOOD_BENCH, "--fail-above", "10%", "--json", str(tmp_path / "c.json"))
    assert main(argv) == 0
    assert "gate --fail-above 10% passed (2 cells compared)" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["latency"]["gate"]["n_compared"] == 2


# ---- issue 25: the cases that need exact numbers, a process limit or a look at the files ---------------------

def test_an_id_with_a_hash_inside_is_an_id_in_every_reader(tmp_path, capsys):
    """Only a *leading* '#' is refused (a comment line in runs and qrels); 'd#1' is an ordinary id, as in
    trec_eval's own test data. Hand-computed: q1 ranks d#1 first (relevant) -> P@1 = 1, RR = 1."""
    argv = evrun(tmp_path, b"q1 Q0 d#1 1 2.0 t\nq1 Q0 d3 2 1.0 t\n", b"q1 0 d#1 1\nq1 0 d3 0\n",
                 "--format", "csv", "--per-query", "-m", "P.1", "-m", "recip_rank")
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "q1,P_1,1.0" in out and "q1,recip_rank,1.0" in out


# slow: trec_eval's work grows with the largest grade (35 s for this one); the exact read of 2**31 - 1 is a fast
# test of the qrels reader (test_eval_trec_fast.py, 'C int edges'), the eval-run path is covered by the others.
@pytest.mark.slow
def test_a_grade_at_the_c_int_limit_is_read_exactly(tmp_path, capsys):
    """2**31 - 1 is the largest grade trec_eval holds: accepted, and counted as relevant. Hand-computed: the
    relevant d3 is ranked second -> RR = 0.5, P@1 = 0."""
    argv = evrun(tmp_path, RUN.encode(), b"q1 0 d3 2147483647\nq1 0 d1 0\n", "--format", "csv", "--per-query",
                 "-m", "P.1", "-m", "recip_rank")
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "q1,recip_rank,0.5" in out and "q1,P_1,0.0" in out


def test_search_allow_mixed_searches_with_a_warning(tmp_path, capsys):
    argv = stores(tmp_path, None, "--allow-mixed", docs="pd")
    assert main(argv) == 0, capsys.readouterr().err
    assert "warning: queries and passages differ in backbone 'tiny-ar' vs 'tiny-diffusion'" in capsys.readouterr().err
    assert list((tmp_path / "o" / "runs").glob("*.trec"))


def test_compare_json_is_strict_json(tmp_path, capsys):
    """--json used to write NaN/Infinity (not JSON); a cell without MBU is null now."""
    argv = cmp_bench(tmp_path, GOOD_BENCH, GOOD_BENCH, "--json", str(tmp_path / "c.json"))
    assert main(argv) == 0, capsys.readouterr().err

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")

    record = json.loads((tmp_path / "c.json").read_text(), parse_constant=refuse)
    assert record["latency"]["cells"] if "cells" in record["latency"] else record["latency"]


def test_names_with_a_pipe_or_newline_stay_in_their_cell():
    from repbench.report.latex import Cell, Table, to_latex, to_markdown

    table = Table(columns=["dataset", "nDCG"], rows=[[Cell("a|b\nc"), Cell("0.5")], [Cell("d\\"), Cell("0.4")]],
                  caption=["results on a|b\n\nc"], label="tab:x")
    md = to_markdown(table).splitlines()
    assert md[2] == r"| a\|b c | 0.5 |"  # one row, one cell: the pipe escaped, the newline a space
    assert md[3] == r"| d\\ | 0.4 |"  # a trailing backslash cannot escape the cell's closing pipe
    tex = to_latex(table)
    assert "\n\n" not in tex  # a blank line inside a tabular or caption is a LaTeX error
    assert r"a\textbar{}b c & 0.5 \\" in tex or r"a$|$b c & 0.5 \\" in tex, tex


def test_stale_tmp_of_a_killed_run_is_removed_and_a_live_ones_kept(tmp_path, capsys):
    import os
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "an").mkdir()
        stale = tmp_path / "an" / f".significance.csv.{dead.pid}.k2j4.tmp"
        alive = tmp_path / "an" / f".significance.csv.{live.pid}.x9q1.tmp"
        stale.write_text("half a table")
        alive.write_text("being written")
        assert main(an_opts(tmp_path)) == 0, capsys.readouterr().err
        assert not stale.exists()
        assert alive.exists()  # another run's file in progress: not ours to remove
        assert not [p for p in (tmp_path / "an").iterdir() if p.name.endswith(".tmp") and p != alive]
    finally:
        live.kill()
        live.wait()
    assert os.getpid() != dead.pid


def test_traceback_file_is_new_and_private(tmp_path, monkeypatch):
    """mkstemp in a private directory: never a predictable name in a shared $TMPDIR, never a planted link."""
    import stat
    import tempfile

    from repbench import cli

    (tmp_path / "not-a-dir").write_text("x")
    monkeypatch.setenv("REPBENCH_LOG_DIR", str(tmp_path / "not-a-dir" / "log"))  # unwritable: the fallback
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = Path(cli._write_traceback("evaluate", ["repbench", "evaluate"], ValueError("boom")))
    assert path.parent.parent == tmp_path and path.parent.name.startswith("repbench-log-")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600 and not path.is_symlink()
    assert "ValueError: boom" in path.read_text()


def _under_1gb(argv: list[str], tmp: Path) -> tuple[int, str]:
    """`repbench argv` in a child whose address space is limited to 1 GiB (RLIMIT_AS)."""
    import os
    import subprocess
    import sys

    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from repbench.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "REPBENCH_LOG_DIR": str(tmp / "log")}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300, env=env)
    return proc.returncode, proc.stderr


def test_gzip_bomb_and_dev_zero_shard_are_refused_under_1gb(tmp_path):
    """A 4 MB gzip that expands to 4 GiB of NULs (as a run, and as a bench JSON), and a shard linked to
    /dev/zero: each read until memory ran out before; now each is refused under a 1 GiB address space."""
    member = gzip.compress(b"\0" * (64 << 20))
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(member * 64)  # 64 gzip members, one stream to every reader: 4 GiB
    assert bomb.stat().st_size < 8 << 20
    (tmp_path / "q.txt").write_bytes(TREC_QRELS.encode())
    rc, err = _under_1gb(["eval-run", str(bomb), str(tmp_path / "q.txt")], tmp_path)
    assert rc == 2 and "bomb.gz:1: a line longer than the limit of 67108864 bytes" in err, err
    (tmp_path / "good.json").write_text(json.dumps(GOOD_BENCH))
    rc, err = _under_1gb(["compare", str(bomb), str(tmp_path / "good.json")], tmp_path)
    assert rc == 2 and "bomb.gz:1: a line longer than the limit" in err, err
    argv = stores(tmp_path, _replace("shard_00001.safetensors", lambda p: p.symlink_to("/dev/zero")))
    rc, err = _under_1gb(argv, tmp_path)
    assert rc == 2 and "shard_00001.safetensors: a symlink to /dev/zero" in err, err


def test_a_damaged_cached_signals_table_is_re_encoded_not_used(tmp_path, capsys):
    """The sweep's cached signals carry a sha256: 64 flipped bytes used to flow into signals.csv, exit 0."""
    beir(tmp_path / "ds")
    base = [*EVAL, "--dataset", str(tmp_path / "ds"), "--cache", str(tmp_path / "cache")]
    assert main([*base, "--out", str(tmp_path / "out1")]) == 0, capsys.readouterr().err
    cached = sorted((tmp_path / "cache").glob("*.signals.csv"))
    assert cached and all(Path(str(p) + ".sha256").is_file() for p in cached)
    data = bytearray(cached[0].read_bytes())
    for i in range(len(data) - 64, len(data)):
        if chr(data[i]).isdigit():
            data[i] = ord("7") if data[i] != ord("7") else ord("3")
    cached[0].write_bytes(bytes(data))
    # the query side is encoded again; the passage side's table is rebuilt from its store's shard signals
    with pytest.warns(UserWarning, match="do not match their sha256; (re-encoding|rewriting them)"):
        assert main([*base, "--out", str(tmp_path / "out2")]) == 0
    for name in ("signals.csv", "per_query.csv"):
        assert (tmp_path / "out2" / name).read_bytes() == (tmp_path / "out1" / name).read_bytes(), name


def test_the_model_cache_checksums_catch_a_flipped_byte(tmp_path):
    from repbench.backbones import smollm2

    (tmp_path / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "config.json").write_text('{"hidden_size": 576}')
    smollm2._write_checksums(tmp_path)
    assert smollm2._cache_intact(tmp_path)
    smollm2._VERIFIED.clear()
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    assert not smollm2._cache_intact(tmp_path)
    data[1000] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    assert smollm2._cache_intact(tmp_path)
    smollm2._VERIFIED.clear()
    (tmp_path / "extra.bin").write_bytes(b"planted")
    assert not smollm2._cache_intact(tmp_path)  # a file the cache was not derived with


def test_a_damaged_cell_file_is_recomputed_on_resume(tmp_path):
    """A finished cell's file is merged into per_query.csv on every rerun: it carries a sha256 now, so an
    edited value is recomputed rather than reported (it was merged as it stood, exit 0)."""
    argv = ev(tmp_path)
    assert main(argv) == 0
    cell = tmp_path / "out" / "cells" / "q1p1.csv"
    reference = (tmp_path / "out" / "per_query.csv").read_bytes()
    cell.write_text(cell.read_text().replace("0.", "0.9", 1))
    with pytest.warns(UserWarning, match=r"1 cell file\(s\) in .* do not match their recorded sha256"):
        assert main(argv) == 0
    assert (tmp_path / "out" / "per_query.csv").read_bytes() == reference
