"""Property-based tests of every parser: for any generated file, the parser returns exactly what the
simple reference reader below returns, or, where the reference finds the file invalid, raises
RepbenchError naming the file. Never another exception.

The references restate the documented rules in the plainest code (docs/contracts.md, repbench.io):
gzip recognised by its magic bytes, a leading UTF-8 BOM dropped, strict UTF-8, lines split at "\\n".
Example counts are bounded by the hypothesis profile in tests/hypothesis_profile.py.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from pathlib import Path

import hypothesis_profile  # noqa: F401  (registers and loads the bounded profile)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from repbench.errors import RepbenchError

INVALID = object()
BOM = b"\xef\xbb\xbf"


# ------------------------------------------------------------------------------------------ references

class Invalid(Exception):
    pass


def ref_text(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError) as exc:
            raise Invalid from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"PK\x03\x04")):
        raise Invalid
    if data.startswith(BOM):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid from exc


DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def ref_number(text: str, strip: bool = True) -> float:
    """A finite plain decimal number, else Invalid."""
    text = text.strip() if strip else text
    if not DECIMAL.fullmatch(text) or not math.isfinite(float(text)):
        raise Invalid
    return float(text)


def data_lines(text: str) -> list[list[str]]:
    fields = [line.split() for line in text.split("\n")]
    return [f for f in fields if f and not f[0].startswith("#")]


def ref_id_ok(text: str) -> bool:
    """Issue 25's one id rule, written independently: non-empty, no leading '#', no whitespace, no
    control character (Unicode category Cc) and no lone surrogate (Cs)."""
    import unicodedata

    return bool(text) and text[0] != "#" and not any(
        c.isspace() or unicodedata.category(c) in ("Cc", "Cs") for c in text)


def ref_run(data: bytes):
    run: dict[str, dict[str, float]] = {}
    for f in data_lines(ref_text(data)):
        if len(f) < 6:
            raise Invalid
        if not (ref_id_ok(f[0]) and ref_id_ok(f[2])):
            raise Invalid
        score = ref_number(f[4], strip=False)
        if f[2] in run.get(f[0], {}):
            raise Invalid
        run.setdefault(f[0], {})[f[2]] = score
    if not run:
        raise Invalid
    return run


def ref_qrels(data: bytes):
    qrels: dict[str, dict[str, int]] = {}
    lines = data_lines(ref_text(data))
    if lines and len(lines[0]) == 3:
        if lines[0] != ["query-id", "corpus-id", "score"]:
            raise Invalid
        width, lines = 3, lines[1:]
    else:
        width = 4
    for f in lines:
        if len(f) != width:
            raise Invalid
        qid, docid, grade = (f[0], f[1], f[2]) if width == 3 else (f[0], f[2], f[3])
        if not re.fullmatch(r"[+-]?[0-9]+", grade):
            raise Invalid
        g = int(grade)
        if not (ref_id_ok(qid) and ref_id_ok(docid)) or not -(2**31) <= g <= 2**31 - 1:  # a C int, as trec_eval
            raise Invalid
        if docid in qrels.get(qid, {}):
            raise Invalid
        qrels.setdefault(qid, {})[docid] = g
    return qrels


def ref_jsonl(data: bytes):
    ids, texts = [], []
    for line in ref_text(data).split("\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise Invalid from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or "_id" not in obj:
            raise Invalid
        if isinstance(obj["_id"], bool) or not isinstance(obj["_id"], str | int):
            raise Invalid
        _id, title = str(obj["_id"]), obj.get("title")
        if not ref_id_ok(_id) or _id in ids:
            raise Invalid
        if title is not None and not isinstance(title, str):
            raise Invalid
        if any(0xD800 <= ord(c) <= 0xDFFF for c in obj["text"] + (title or "")):
            raise Invalid
        ids.append(_id)
        texts.append(f"{title}. {obj['text']}" if title else obj["text"])
    if not ids:
        raise Invalid
    return ids, texts


PQ_COLUMNS = ("dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "qid", "measure", "value")


def ref_per_query(data: bytes):
    rows = [r for r in csv.reader(io.StringIO(ref_text(data), newline="")) if r]
    if not rows:
        raise Invalid
    header, body = rows[0], rows[1:]
    if sorted(header) != sorted(PQ_COLUMNS) or not body:
        raise Invalid
    out, seen = [], set()
    for r in body:
        if len(r) != len(header):
            raise Invalid
        rec = dict(zip(header, r, strict=True))
        kq, kp, value = (ref_number(rec[c]) for c in ("k_q", "k_p", "value"))
        if min(kq, kp) < 1 or not (kq.is_integer() and kp.is_integer()):
            raise Invalid
        row = (rec["dataset"], rec["backbone"], rec["family"], rec["encoder"], int(kq), int(kp), rec["mode"],
               rec["qid"], rec["measure"], value)
        key = tuple(row[i] for i in (0, 1, 3, 4, 5, 6, 7, 8))  # the family is implied by the backbone
        if key in seen:
            raise Invalid
        seen.add(key)
        out.append(row)
    return out


# ------------------------------------------------------------------------------------------ strategies

ID = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=4)
SAFE_ID = st.text("abcXYZ019_-#.é", min_size=1, max_size=4)
GOOD_NUMBER = st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr), st.integers(-3, 5).map(str))
NUMBER = st.one_of(GOOD_NUMBER, GOOD_NUMBER, GOOD_NUMBER, st.floats().map(repr), st.sampled_from(
    ["nan", "inf", "-inf", "1e3", "1,5", "", "x", "0x10", "1_0", "+2", " 3", "\u0661", "1e400", ".5", "5."]))


RARELY = st.sampled_from([False, False, False, True])  # not integers(0, 3) == 0: hypothesis favours 0


@st.composite
def mutated(draw, body: bytes) -> bytes:
    """`body`, maybe damaged (random bytes spliced in, cut short), maybe with a BOM, CRLF or gzip."""
    if draw(RARELY):
        pos = draw(st.integers(0, len(body)))
        body = body[:pos] + draw(st.binary(max_size=4)) + body[pos:]
    if draw(st.booleans()):
        body = body.replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        body = BOM + body
    if draw(RARELY):
        body = gzip.compress(body, mtime=0)
        if draw(RARELY):
            body = body[:draw(st.integers(2, len(body)))]
    return body


@st.composite
def lines_of(draw, good: st.SearchStrategy[str], hostile: st.SearchStrategy[str], head: tuple[str, ...] = ()
             ) -> bytes:
    """Well-formed lines, and half of the time one hostile line among them."""
    lines = [*head, *draw(st.lists(good, max_size=8))]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(hostile))
    return "".join(x + "\n" for x in lines).encode("utf-8")


GOOD_RUN_LINE = st.tuples(SAFE_ID, SAFE_ID, st.integers(0, 9), GOOD_NUMBER).map(
    lambda t: f"{t[0]} Q0 {t[1]} {t[2]} {t[3]} tag")
HOSTILE_RUN_LINE = st.one_of(
    st.just("# a comment"), st.just(""),
    st.tuples(SAFE_ID, SAFE_ID, NUMBER).map(lambda t: f"{t[0]} Q0 {t[1]} 1 {t[2]} tag"),
    st.tuples(ID, ID, NUMBER).map(lambda t: f"{t[0]} Q0 {t[1]} 1 {t[2]} tag extra"),
    st.text(max_size=20),
)
GRADE = st.integers(-1, 3).map(str)
TREC_QRELS_LINE = st.tuples(SAFE_ID, SAFE_ID, GRADE).map(lambda t: f"{t[0]} 0 {t[1]} {t[2]}")
BEIR_QRELS_LINE = st.tuples(SAFE_ID, SAFE_ID, GRADE).map(lambda t: f"{t[0]}\t{t[1]}\t{t[2]}")
HOSTILE_QRELS_LINE = st.one_of(
    st.tuples(SAFE_ID, SAFE_ID, NUMBER).map(lambda t: f"{t[0]} 0 {t[1]} {t[2]}"),
    st.tuples(SAFE_ID, SAFE_ID, NUMBER).map(lambda t: f"{t[0]}\t{t[1]}\t{t[2]}"),
    st.text(max_size=12), st.just("# c"), st.just("query-id\tcorpus-id\tscore"))
QRELS_FILE = st.one_of(
    lines_of(TREC_QRELS_LINE, HOSTILE_QRELS_LINE),
    lines_of(BEIR_QRELS_LINE, HOSTILE_QRELS_LINE, head=("query-id\tcorpus-id\tscore",)),
)
JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(), ID, st.lists(st.integers(),
                                                                                                  max_size=2))
HOSTILE_JSONL_LINE = st.one_of(
    st.tuples(st.one_of(SAFE_ID, ID, JSON_VALUE), JSON_VALUE, JSON_VALUE).map(
        lambda t: json.dumps({"_id": t[0], "text": t[1], "title": t[2]})),
    st.dictionaries(st.sampled_from(["_id", "text", "title", "x"]), JSON_VALUE, max_size=4).map(json.dumps),
    st.text(max_size=12),
    st.just("   "),
)


@st.composite
def jsonl_file(draw) -> bytes:
    """Items with distinct ids (a repeated id is the hostile line's job), maybe one hostile line."""
    ids = draw(st.lists(st.one_of(SAFE_ID, st.integers(10**6, 10**30)), max_size=8, unique_by=str))
    lines = [json.dumps({"_id": i, "text": draw(ID), **({"title": t} if (t := draw(st.one_of(st.none(), ID)))
                                                         is not None else {})}, ensure_ascii=draw(st.booleans()))
             for i in ids]
    if draw(st.booleans()):
        hostile = draw(st.one_of(HOSTILE_JSONL_LINE, st.sampled_from(lines) if lines else HOSTILE_JSONL_LINE))
        lines.insert(draw(st.integers(0, len(lines))), hostile)
    return "".join(x + "\n" for x in lines).encode("utf-8")
CELL_TEXT = st.sampled_from(["syn", "tiny-ar", "q1", "q2", "x y", "ñ", "a,b", 'q"t', "", "nan", "1"])


@st.composite
def per_query_csv(draw) -> bytes:
    """Well-formed rows in a shuffled column order, and half of the time one hostile row among them."""
    header = list(draw(st.permutations(PQ_COLUMNS)))
    rows = []
    for i in range(draw(st.integers(0, 6))):
        rec = {c: draw(CELL_TEXT) for c in PQ_COLUMNS}
        rec["qid"] = f"{rec['qid']}{i}"
        rec["k_q"], rec["k_p"] = draw(st.sampled_from(["1", "2", "4", "2.0"])), draw(st.sampled_from(["1", "4"]))
        rec["value"] = draw(GOOD_NUMBER)
        rows.append([rec[c] for c in header])
    if draw(st.booleans()):
        rec = {c: draw(CELL_TEXT) for c in PQ_COLUMNS}
        rec["k_q"] = draw(st.sampled_from(["1", "0", "1.5", "-1", "x", "", "1e400"]))
        rec["k_p"] = draw(st.sampled_from(["1", "", "nan"]))
        rec["value"] = draw(NUMBER)
        row = [rec[c] for c in header]
        rows.insert(draw(st.integers(0, len(rows))), row[:draw(st.integers(len(row) - 1, len(row)))])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


# ------------------------------------------------------------------------------------------ the property

def check(parser, reference, data: bytes, path: Path, normalise=lambda x: x) -> None:
    path.write_bytes(data)
    try:
        expected = reference(data)
    except Invalid:
        expected = INVALID
    try:
        got = normalise(parser(path))
    except RepbenchError as exc:
        assert str(path) in str(exc), f"message does not name the file: {exc}"
        assert expected is INVALID, f"parser refused a valid file: {exc}\n{data!r}"
        return
    assert expected is not INVALID, f"parser accepted an invalid file:\n{data!r}\n-> {got!r}"
    assert got == expected


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prop") / "input"


@given(st.one_of(lines_of(GOOD_RUN_LINE, HOSTILE_RUN_LINE), st.binary(max_size=40)).flatmap(mutated))
def test_trec_run_reader(scratch, data):
    from repbench.evaluation.trec import read_run

    check(read_run, ref_run, data, scratch)


@given(st.one_of(QRELS_FILE, QRELS_FILE, st.binary(max_size=40)).flatmap(mutated))
def test_qrels_reader(scratch, data):
    from repbench.evaluation.trec import read_qrels

    check(read_qrels, ref_qrels, data, scratch)


@given(st.one_of(jsonl_file(), st.binary(max_size=40)).flatmap(mutated))
def test_beir_jsonl_reader(scratch, data):
    """The BEIR corpus and queries reader (both files share it)."""
    from repbench.io import read_texts_jsonl

    check(read_texts_jsonl, ref_jsonl, data, scratch)


def _per_query_tuples(frame) -> list[tuple]:
    return [(*(str(r[c]) for c in PQ_COLUMNS[:4]), int(r["k_q"]), int(r["k_p"]),
             *(str(r[c]) for c in PQ_COLUMNS[6:9]), float(r["value"])) for _, r in frame.iterrows()]


@given(st.one_of(per_query_csv(), per_query_csv(), st.binary(max_size=40)).flatmap(mutated))
def test_per_query_reader(scratch, data):
    from repbench.schema.tables import read_per_query

    check(read_per_query, ref_per_query, data, scratch, _per_query_tuples)


# ------------------------------------------------------------------------------------------ bench JSON

def ref_bench(data: bytes):
    """(name, status, encoder, k, samples, median) per benchmark, under the rules of docs/contracts.md."""
    from repbench.schema import SCHEMA_VERSION

    try:
        obj = json.loads(ref_text(data))  # NaN literals parse; the samples must be finite
    except (ValueError, RecursionError) as exc:
        raise Invalid from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("benchmarks"), list):
        raise Invalid
    machine = obj.get("machine_info")
    header = machine.get("repbench") if isinstance(machine, dict) else None
    if not isinstance(header, dict) or type(header.get("schema_version")) is not int \
            or header["schema_version"] != SCHEMA_VERSION:
        raise Invalid
    out = []
    for i, bench in enumerate(obj["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("extra_info"), dict):
            raise Invalid
        info = bench["extra_info"]
        name = bench.get("fullname") or bench.get("name") or f"benchmarks[{i}]"
        name = name if isinstance(name, str) else json.dumps(name)
        status = info.get("status", "ok")
        samples = info.get("samples_s")
        if samples is None and isinstance(bench.get("stats"), dict):
            samples = bench["stats"].get("data")
        if info.get("encoder") in ("sequential", "parallel", "meanpool", "lasttoken") and any(
                info.get(f) is None for f in ("backbone", "encoder", "k")):
            raise Invalid  # an encode cell names its backbone and K, skipped or not
        if status == "skipped":
            samples = []
        else:
            if info.get("encoder") is None or not isinstance(samples, list) or not samples:
                raise Invalid
            if any(isinstance(x, bool) or not isinstance(x, int | float) for x in samples):
                raise Invalid
            try:
                samples = [float(x) for x in samples]
            except OverflowError as exc:
                raise Invalid from exc
            if not all(math.isfinite(x) and x > 0 for x in samples):
                raise Invalid
        k = info.get("k")
        k = int(k) if isinstance(k, float) and k.is_integer() else k
        srt = sorted(samples)
        n = len(srt)
        median = (srt[n // 2] if n % 2 else (srt[n // 2 - 1] + srt[n // 2]) / 2) if n else None
        out.append((name, status, info.get("encoder"), k, samples, median))
    return out


SAMPLE = st.one_of(st.floats(1e-6, 10), st.floats(1e-6, 10), st.floats(), st.integers(-1, 10**400),
                   st.booleans(), st.text(max_size=3), st.none())
GOOD_INFO = st.fixed_dictionaries({"backbone": st.just("tiny-ar"),
                                   "encoder": st.sampled_from(["sequential", "parallel", "search:flat"]),
                                   "k": st.one_of(st.integers(1, 4), st.sampled_from([1.0, 2.5])),
                                   "samples_s": st.lists(st.floats(1e-6, 10), min_size=1, max_size=5)},
                                  optional={"status": st.sampled_from(["ok", "skipped", "error"])})
GOOD_ENTRY = st.fixed_dictionaries({"name": st.text(max_size=6), "extra_info": GOOD_INFO})
HOSTILE_ENTRY = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=6), st.integers())},
    optional={"extra_info": st.one_of(
        GOOD_INFO,
        st.fixed_dictionaries({}, optional={"encoder": st.one_of(st.none(), st.just("sequential")),
                                            "samples_s": st.one_of(st.lists(SAMPLE, max_size=4), SAMPLE)}),
        st.integers()),
        "stats": st.fixed_dictionaries({}, optional={"data": st.lists(SAMPLE, max_size=3)})},
)
BENCH_ENTRY = st.one_of(GOOD_ENTRY, GOOD_ENTRY, GOOD_ENTRY, HOSTILE_ENTRY, st.integers())
BENCH_DOC = st.fixed_dictionaries({
    "machine_info": st.one_of(*[st.fixed_dictionaries({"repbench": st.just({"schema_version": 1})})] * 4,
        st.fixed_dictionaries({"repbench": st.fixed_dictionaries(
            {"schema_version": st.sampled_from([1, 1, 1, 1, 1, 1, 1.0, True, 2, "1", None])})}),
        st.just([]), st.none()),
    "benchmarks": st.one_of(*[st.lists(GOOD_ENTRY, max_size=4)] * 4, st.lists(BENCH_ENTRY, max_size=4),
                            st.integers()),
})


def _bench_tuples(run) -> list[tuple]:
    def plain(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    return [(r.name, r.status, r.encoder, r.k, [float(x) for x in r.samples_s], plain(r.median_s) if r.n else None)
            for r in run.cells.itertuples()]


def _bench_bytes(doc, cut) -> bytes:
    return json.dumps(doc).encode() if cut is None else json.dumps(doc).encode()[:cut]


@given(st.one_of(
    st.tuples(BENCH_DOC, st.one_of(st.none(), st.none(), st.none(), st.integers(0, 200))).map(
        lambda t: _bench_bytes(*t)).flatmap(mutated),
    st.binary(max_size=40)))
def test_bench_json_reader(scratch, data):
    from repbench.schema.bench import read_bench

    check(read_bench, ref_bench, data, scratch, _bench_tuples)
