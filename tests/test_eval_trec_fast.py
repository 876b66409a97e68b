"""The run reader's fast path (repbench.evaluation.trec_fast) against the line-by-line reader.

For every file the fast path must either give the very run (and run id) the line reader gives, or step
aside (None), so the line reader produces its exact error. Plain files must take the fast path (else it
would silently be slow); hostile ones must not, and the whole reader's error must be the line reader's,
checked against messages written out here.
"""

from __future__ import annotations

import gzip
import unicodedata

import hypothesis_profile  # noqa: F401  (registers and loads the bounded profile)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repbench.errors import InputError, RepbenchError
from repbench.evaluation import trec_fast
from repbench.evaluation.trec import read_run_lines, read_run_with_id
from repbench.evaluation.trec_fast import read_run_fast

# name -> (file bytes, expected run, expected run id): written by hand, not by either reader.
PLAIN = {
    "ties and negative scores": (
        b"q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.5 t\nq1 Q0 d3 3 -1.25 t\nq2 Q0 d1 1 -0 t\n",
        {"q1": {"d1": 0.5, "d2": 0.5, "d3": -1.25}, "q2": {"d1": -0.0}}, "t"),
    "scientific notation and signs": (
        b"q Q0 a 1 1e3 r\nq Q0 b 2 -2.5E-3 r\nq Q0 c 3 +.5 r\nq Q0 d 4 5. r\nq Q0 e 5 7 r\n",
        {"q": {"a": 1000.0, "b": -0.0025, "c": 0.5, "d": 5.0, "e": 7.0}}, "r"),
    "tabs, runs of spaces, leading and trailing blanks": (
        b"q1\tQ0\td1\t1\t0.1\tx\n  q1   Q0 d2 2 0.2 x  \n\t\nq2 Q0\t d3 1 0.3 y\t\n",
        {"q1": {"d1": 0.1, "d2": 0.2}, "q2": {"d3": 0.3}}, "y"),
    "CRLF, BOM, no final newline": (
        b"\xef\xbb\xbfq1 Q0 d1 1 2 a\r\nq1 Q0 d2 2 1 b",
        {"q1": {"d1": 2.0, "d2": 1.0}}, "b"),
    "interleaved queries, the last line's tag": (
        b"q1 Q0 d1 1 3 a\nq2 Q0 d1 1 3 b\nq1 Q0 d2 2 1 c\n",
        {"q1": {"d1": 3.0, "d2": 1.0}, "q2": {"d1": 3.0}}, "c"),
    "non-ASCII ids, '#' inside an id, underscores in ids": (
        "qé Q0 CR#93E-1860 1 0.5 t\nqé Q0 doc_1 2 0.25 t\nq_2 Q0 ü 1 1e-3 t\n".encode(),
        {"qé": {"CR#93E-1860": 0.5, "doc_1": 0.25}, "q_2": {"ü": 0.001}}, "t"),
    "Unicode whitespace separates fields as str.split does": (
        "q1\u3000Q0 d1\xa01 0.5 t\nq1 Q0\x0bd2 2 0.4 t\n".encode(),
        {"q1": {"d1": 0.5, "d2": 0.4}}, "t"),
}


@pytest.mark.parametrize("name", PLAIN)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_plain_files_take_the_fast_path_and_match(tmp_path, name, compress):
    data, run, run_id = PLAIN[name]
    path = tmp_path / "run.trec"
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    fast = read_run_fast(path)
    assert fast is not None, "a plain file should not need the line reader"
    assert fast == (run, run_id) == read_run_lines(path)
    assert list(fast[0]) == list(run)  # queries in file order, as the line reader keeps them
    assert read_run_with_id(path) == (run, run_id)


def test_blocks_cut_anywhere_give_the_same_run(tmp_path, monkeypatch):
    """Lines spanning read blocks (block sizes down to one byte), the BOM split across blocks."""
    data = b"\xef\xbb\xbfq1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.25 t\n\nq2 Q0 d1 1 1e2 u\nq3 Q0 \xc3\xa9 1 1 v"
    path = tmp_path / "run.trec"
    path.write_bytes(data)
    expected = ({"q1": {"d1": 0.5, "d2": 0.25}, "q2": {"d1": 100.0}, "q3": {"é": 1.0}}, "v")
    for block in (1, 2, 3, 5, 17, 1 << 20):
        monkeypatch.setattr(trec_fast, "_BLOCK", block)
        assert read_run_fast(path) == expected, block


# name -> (file bytes, the line reader's message after "PATH:"): each must leave the fast path.
HOSTILE = {
    "five fields": (b"q Q0 d 1 0.5 t\nq Q0 e 2 0.4\n",
                    "2: expected 6 whitespace-separated fields 'qid Q0 docid rank score tag', got 5"),
    "a duplicate pair": (b"q Q0 d 1 0.5 t\nq Q0 e 2 0.4 t\nq Q0 d 3 0.3 t\n",
                         "3: duplicate doc id 'd' for query 'q' (first on line 1)"),
    "a duplicate across blocks of queries": (b"q Q0 d 1 0.5 t\nr Q0 d 1 0.5 t\nq Q0 d 3 0.3 t\n",
                                             "3: duplicate doc id 'd' for query 'q' (first on line 1)"),
    "nan": (b"q Q0 d 1 nan t\n", "1: expected a finite score in column 5, got 'nan'"),
    "inf": (b"q Q0 d 1 0.5 t\nq Q0 e 2 -Infinity t\n", "2: expected a finite score in column 5, got '-Infinity'"),
    "an overflowing score": (b"q Q0 d 1 1e400 t\n", "1: expected a finite score in column 5, got '1e400'"),
    "an underscore in a score": (b"q Q0 d 1 1_0 t\n", "1: expected a numeric score in column 5, got '1_0'"),
    "a non-ASCII digit": ("q Q0 d 1 \u0661 t\n".encode(), "1: expected a numeric score in column 5, got '\u0661'"),
    "a fullwidth digit": ("q Q0 d 1 \uff11 t\n".encode(), "1: expected a numeric score in column 5, got '\uff11'"),
    "a word score": (b"q Q0 d 1 high t\n", "1: expected a numeric score in column 5, got 'high'"),
    "hex score": (b"q Q0 d 1 0x10 t\n", "1: expected a numeric score in column 5, got '0x10'"),
    "a NUL in a doc id": (b"q Q0 d\x001 1 0.5 t\n",
                          "1: expected a non-empty the doc id (column 3) without whitespace, control characters or "
                          "lone surrogates, not starting with '#' (one rule for queries, corpus, qrels and runs); "
                          "it contains the control character U+0000: 'd\\x001'"),
    "a C1 control in a query id": ("q\x9a Q0 d 1 0.5 t\n".encode(), "1: expected a non-empty the query id "
                                   "(column 1) without whitespace, control characters or lone surrogates, not "
                                   "starting with '#' (one rule for queries, corpus, qrels and runs); it contains "
                                   "the control character U+009A: 'q\\x9a'"),
    "a doc id starting with '#'": (b"q Q0 #d 1 0.5 t\n", "1: expected a non-empty the doc id (column 3) without "
                                   "whitespace, control characters or lone surrogates, not starting with '#' (one "
                                   "rule for queries, corpus, qrels and runs); it starts with '#' (a TREC comment "
                                   "line): '#d'"),
    "'#' after a separator str.split knows (U+001C)": (b"q Q0\x1c#d 1 0.5 t\n", "1: expected a non-empty the doc "
                                                       "id (column 3) without whitespace, control characters or "
                                                       "lone surrogates, not starting with '#' (one rule for "
                                                       "queries, corpus, qrels and runs); it starts with '#' (a "
                                                       "TREC comment line): '#d'"),
    "invalid UTF-8": (b"q Q0 d 1 0.5 t\nq Q0 \xff 2 0.4 t\n",
                      "2:6: invalid UTF-8 (byte 0xff at file offset 20); expected UTF-8 text"),
    "an encoded surrogate": (b"q Q0 \xed\xa0\x80 1 0.5 t\n",
                             "1:6: invalid UTF-8 (byte 0xed at file offset 5); expected UTF-8 text"),
    "only comments": (b"# a comment\n\n", "expected at least one run line 'qid Q0 docid rank score tag' (the file "
                                          "holds none: every query would silently score 0)"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_leave_the_fast_path_and_get_the_line_readers_error(tmp_path, name):
    data, message = HOSTILE[name]
    path = tmp_path / "run.trec"
    path.write_bytes(data)
    assert read_run_fast(path) is None
    with pytest.raises(InputError) as got:
        read_run_with_id(path)
    assert str(got.value) == (f"{path}:{message}" if message[0].isdigit() else f"{path}: {message}")


def test_files_the_line_reader_accepts_but_the_fast_path_leaves_to_it(tmp_path):
    """Comments and trailing text after the tag (trec_eval's results.trunc): same run, read line by line."""
    path = tmp_path / "run.trec"
    path.write_bytes(b"# made by hand\nq Q0 d 1 0.5 t extra words\nq Q0 e 2 0.25 t\n")
    assert read_run_fast(path) is None
    assert read_run_with_id(path) == ({"q": {"d": 0.5, "e": 0.25}}, "t")


def test_limits_hold_on_the_fast_path(tmp_path, monkeypatch):
    path = tmp_path / "run.trec"
    path.write_bytes(b"q Q0 d 1 0.5 t\nq Q0 " + b"e" * 300 + b" 2 0.4 t\n")
    monkeypatch.setenv("REPBENCH_MAX_LINE_BYTES", "200")
    assert read_run_fast(path) is None
    with pytest.raises(InputError, match=r":2: a line longer than the limit of 200 bytes"):
        read_run_with_id(path)
    monkeypatch.delenv("REPBENCH_MAX_LINE_BYTES")
    monkeypatch.setenv("REPBENCH_MAX_INPUT_BYTES", "100")
    assert read_run_fast(path) is None
    with pytest.raises(InputError, match="larger than the limit of 100 bytes"):
        read_run_with_id(path)


def test_truncated_gzip_gets_the_line_readers_error(tmp_path):
    path = tmp_path / "run.trec.gz"
    path.write_bytes(gzip.compress(b"".join(b"q Q0 d%d 1 0.5 t\n" % i for i in range(2000)), mtime=0)[:-12])
    assert read_run_fast(path) is None
    with pytest.raises(InputError, match="gzip data is truncated or corrupt"):
        read_run_with_id(path)


def test_hidden_control_class_is_every_control_str_split_keeps_inside_a_field():
    """The fast path's screen: exactly the C0/C1 controls (category Cc) that are not whitespace."""
    expected = {c for c in map(chr, range(0x110000)) if unicodedata.category(c) == "Cc" and not c.isspace()}
    got = {c for c in map(chr, range(0x100)) if trec_fast._HIDDEN_CONTROL.fullmatch(c)}
    assert got == expected
    # The '#' screen's \s must be exactly the separators str.split uses.
    assert {c for c in map(chr, range(0x110000)) if trec_fast._FIELD_HASH.fullmatch(" #".replace(" ", c))} == {
        c for c in map(chr, range(0x110000)) if c.isspace()}
    ascii_ok = {chr(b) for b in trec_fast._ASCII_OK}
    assert ascii_ok == {chr(b) for b in range(0x80)} - expected


FIELD = st.text(st.sampled_from("ab_é#1\x00\x85\xa0\t é\u3000"), min_size=0, max_size=3)
SCORE = st.one_of(st.floats().map(repr), st.integers(-5, 5).map(str), st.sampled_from(
    ["1e3", "1_0", "\u0661", "+.5", "5.", "-0", "inf", "NaN", "1e400", "0x1", "1,5", "", "٣.5", "1e-400"]))
LINE = st.one_of(
    st.tuples(FIELD, FIELD, SCORE, FIELD).map(lambda t: f"{t[0]} Q0 {t[1]} 1 {t[2]} {t[3]}"),
    st.tuples(st.sampled_from("ab"), st.sampled_from("xyz"), SCORE).map(lambda t: f"{t[0]}\tQ0\t{t[1]}\t1\t{t[2]}\tt"),
    st.text(st.sampled_from("ab #\t1."), max_size=12),
)


@given(st.lists(LINE, max_size=8), st.booleans(), st.booleans())
def test_fast_path_agrees_with_the_line_reader(tmp_path_factory, lines, crlf, gz):
    body = "\n".join(lines).encode()
    body = body.replace(b"\n", b"\r\n") if crlf else body
    path = tmp_path_factory.mktemp("fast") / "run.trec"
    path.write_bytes(gzip.compress(body, mtime=0) if gz else body)
    fast = read_run_fast(path)
    try:
        slow = read_run_lines(path)
    except RepbenchError:
        assert fast is None, f"the fast path accepted a file the line reader refuses: {body!r}"
        return
    assert fast is None or fast == slow, body


# ---------------------------------------------------------------------------------------------- qrels

QRELS_PLAIN = {
    "TREC, grades 0 and negative kept": (b"q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 -1\nq2 0 d3 +2\n",
                                         {"q1": {"d1": 1, "d2": 0}, "q2": {"d1": -1, "d3": 2}}),
    "BEIR TSV with its header": (b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td_2\t2\n",
                                 {"q1": {"d1": 1, "d_2": 2}}),
    "CRLF, BOM, blank lines, C int edges": (b"\xef\xbb\xbfq 0 a 2147483647\r\n\r\nq 0 b -2147483648",
                                            {"q": {"a": 2**31 - 1, "b": -(2**31)}}),
    "non-ASCII ids": ("qé 0 ü 1\n".encode(), {"qé": {"ü": 1}}),
    "only a BEIR header": (b"query-id\tcorpus-id\tscore\n", {}),
}


@pytest.mark.parametrize("name", QRELS_PLAIN)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_plain_qrels_take_the_fast_path_and_match(tmp_path, name, compress):
    from repbench.evaluation.trec import read_qrels, read_qrels_lines
    from repbench.evaluation.trec_fast import read_qrels_fast

    data, qrels = QRELS_PLAIN[name]
    path = tmp_path / "qrels.txt"
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    fast = read_qrels_fast(path)
    assert fast is not None, "plain qrels should not need the line reader"
    assert fast == qrels == read_qrels_lines(path) == read_qrels(path)


QRELS_HOSTILE = {
    "a pair judged twice": (b"q 0 d 1\nq 0 e 0\nq 0 d 2\n",
                            "3: duplicate judgement for query 'q', doc 'd' (first on line 1)"),
    "a float grade": (b"q 0 d 1.0\n", "1: expected an integer relevance grade in column 4, got '1.0'"),
    "an underscore grade": (b"q 0 d 1_0\n", "1: expected an integer relevance grade in column 4, got '1_0'"),
    "a non-ASCII digit": ("q 0 d \u0661\n".encode(), "1: expected an integer relevance grade in column 4, got '\u0661'"),
    "beyond a C int": (b"q 0 d 2147483648\n", "1: expected a relevance grade in column 4 within the C int range "
                                              "[-2147483648, 2147483647] trec_eval reads, got '2147483648'"),
    "a long zero-padded grade": (b"q 0 d 0000000000001\n", "1: expected a relevance grade in column 4 within the C "
                                 "int range [-2147483648, 2147483647] trec_eval reads, got '0000000000001'"),
    "three fields without the header": (b"q d 1\n", "1: expected the BEIR header 'query-id<TAB>corpus-id<TAB>score' "
                                                    "on the first line of a 3-column qrels file, got 'q d 1'"),
    "a short line in TREC qrels": (b"q 0 d 1\nq 0 e\n", "2: expected 4 fields 'qid iter docid grade', got 3"),
    "a doc id starting with '#'": (b"q 0 #d 1\n", "1: expected a non-empty the doc id (column 3) without whitespace, "
                                   "control characters or lone surrogates, not starting with '#' (one rule for "
                                   "queries, corpus, qrels and runs); it starts with '#' (a TREC comment line): '#d'"),
}


@pytest.mark.parametrize("name", QRELS_HOSTILE)
def test_hostile_qrels_leave_the_fast_path_and_get_the_line_readers_error(tmp_path, name):
    from repbench.evaluation.trec import read_qrels
    from repbench.evaluation.trec_fast import read_qrels_fast

    data, message = QRELS_HOSTILE[name]
    path = tmp_path / "qrels.txt"
    path.write_bytes(data)
    assert read_qrels_fast(path) is None
    with pytest.raises(InputError) as got:
        read_qrels(path)
    assert str(got.value) == f"{path}:{message}"


QRELS_LINE = st.one_of(
    st.tuples(FIELD, FIELD, st.one_of(st.integers(-3, 3).map(str), SCORE, st.just("2147483648"))).map(
        lambda t: f"{t[0]} 0 {t[1]} {t[2]}"),
    st.tuples(FIELD, FIELD, st.integers(-3, 3)).map(lambda t: f"{t[0]}\t{t[1]}\t{t[2]}"),
    st.just("query-id\tcorpus-id\tscore"), st.text(st.sampled_from("ab #\t1"), max_size=10),
)


@given(st.lists(QRELS_LINE, max_size=8), st.booleans())
def test_qrels_fast_path_agrees_with_the_line_reader(tmp_path_factory, lines, gz):
    from repbench.evaluation.trec import read_qrels_lines
    from repbench.evaluation.trec_fast import read_qrels_fast

    body = "\n".join(lines).encode()
    path = tmp_path_factory.mktemp("fastq") / "qrels.txt"
    path.write_bytes(gzip.compress(body, mtime=0) if gz else body)
    fast = read_qrels_fast(path)
    try:
        slow = read_qrels_lines(path)
    except RepbenchError:
        assert fast is None, f"the fast path accepted qrels the line reader refuses: {body!r}"
        return
    assert fast is None or fast == slow, body


def test_eval_run_prints_trec_format_without_importing_pandas(tmp_path):
    """pandas alone cost about a third of a direct pytrec_eval script's run (issue 20): the trec format is
    printed without it; --format csv still builds the table."""
    import subprocess
    import sys

    run, qrels = tmp_path / "run.trec", tmp_path / "qrels.txt"
    run.write_text("q1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 0.5 t\n")
    qrels.write_text("q1 0 d2 1\n")
    code = ("import sys; from repbench.cli import main; rc = main(['eval-run', sys.argv[1], sys.argv[2], '-m', 'map', "
            "'-m', 'recip_rank']); print('pandas' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(run), str(qrels)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    # d2, the only relevant doc, is ranked 2nd: AP = 1/2, reciprocal rank = 1/2.
    assert [line.split() for line in out[:2]] == [["map", "all", "0.5000"], ["recip_rank", "all", "0.5000"]]
    assert out[-1] == "False"
