"""`evaluate --passages-store DIR`: a store `repbench encode` wrote is scored instead of encoding the passages,
giving the same per_query.csv as the sweep that encodes them itself; a store of another method, side or
corpus is refused before anything is written, and a resumed sweep cannot switch stores."""

from __future__ import annotations

import json
import shutil

import pytest

from repbench.cli import main
from repbench.evaluation.collections import synthetic_collection

COMMON = ["--backbone", "tiny-ar", "--device", "cpu", "--dtype", "float32", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small collection, its corpus encoded by `repbench encode` at K_p = 1 and 3, and the sweep that encodes
    the passages itself (the reference)."""
    root = tmp_path_factory.mktemp("given")
    data = root / "data"
    synthetic_collection(40, 6, seed=3).save_beir(data)
    stores = {}
    for k in (1, 3):
        stores[k] = root / f"store{k}"
        assert main(["encode", *COMMON, str(data / "corpus.jsonl"), "--side", "passage", "--k", str(k),
                     "--out", str(stores[k])]) == 0
    ref = root / "ref"
    assert main(["evaluate", *COMMON, "--dataset", str(data), "--kq", "1,2", "--kp", "1,3", "--out", str(ref)]) == 0
    return root, data, stores, ref


def _evaluate(data, out, *extra):
    return main(["evaluate", *COMMON, "--dataset", str(data), "--kq", "1,2", "--out", str(out), *extra])


def test_a_store_encode_wrote_scores_as_the_sweep_own_encoding(setup, capsys):
    root, data, stores, ref = setup
    out = root / "given"
    # --kp defaults to the stores' Ks
    assert _evaluate(data, out, "--passages-store", str(stores[1]), "--passages-store", str(stores[3])) == 0
    assert (out / "per_query.csv").read_bytes() == (ref / "per_query.csv").read_bytes()
    assert not any((out / "reps").glob("*passage*"))  # nothing encoded on the passage side
    meta = json.loads((out / "metadata.json").read_text())
    assert [s["k_p"] for s in meta["passage_stores"]] == [1, 3]
    # A resumed sweep cannot drop or switch a store: its cells were scored against that one.
    assert _evaluate(data, out, "--kp", "1,3") == 2
    assert "other settings (passage_stores)" in capsys.readouterr().err


def test_a_store_of_another_method_side_or_corpus_is_refused_before_any_write(setup, tmp_path, capsys):
    root, data, stores, _ = setup
    other_corpus, larger = tmp_path / "other", tmp_path / "larger"
    synthetic_collection(40, 6, seed=4).save_beir(other_corpus)  # the same doc ids, other texts
    shutil.copytree(data, larger)
    with (larger / "corpus.jsonl").open("a") as fh:
        fh.writelines(json.dumps({"_id": f"extra{i}", "title": "", "text": f"an added passage {i}"}) + "\n"
                      for i in range(5))
    query_side = tmp_path / "qstore"
    assert main(["encode", *COMMON, str(data / "queries.jsonl"), "--side", "query", "--k", "1",
                 "--out", str(query_side)]) == 0
    variant = tmp_path / "variant"
    assert main(["encode", *COMMON, str(data / "corpus.jsonl"), "--side", "passage", "--k", "3",
                 "--prompt-variant", "three", "--out", str(variant)]) == 0
    partial = tmp_path / "partial"  # every shard written, the manifest not (yet)
    shutil.copytree(stores[1], partial)
    (partial / "manifest.json").unlink()
    capsys.readouterr()
    cases = [
        (data, ["--passages-store", str(variant)], "another method (prompt_variant: store 'three', this sweep 'few')"),
        (data, ["--passages-store", str(query_side)], "expected a passage-side store"),
        (other_corpus, ["--passages-store", str(stores[1])], "encodes other texts than the corpus's for its ids"),
        (larger, ["--passages-store", str(stores[1])], "holds 40 of the corpus's 45 passages"),
        (data, ["--kp", "1", "--passages-store", str(stores[3])], "a store of K=3, which --kp [1] does not list"),
        (data, ["--passages-store", str(stores[1]), "--passages-store", str(stores[1])], "are both stores of K=1"),
        (data, ["--passages-store", str(tmp_path / "absent")], "absent/config.json: missing; not a representations"),
        (data, ["--passages-store", str(partial)], "not a complete representations directory (no manifest.json)"),
    ]
    for i, (dataset, extra, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        assert _evaluate(dataset, out, *extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not (out / "sweep_state.json").exists()


def test_a_store_of_an_edited_corpus_is_refused(setup, tmp_path, capsys):
    root, data, stores, _ = setup
    edited = tmp_path / "edited"
    shutil.copytree(data, edited)
    lines = (edited / "corpus.jsonl").read_text().splitlines()
    row = json.loads(lines[5])
    row["text"] += " changed"
    lines[5] = json.dumps(row)
    (edited / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    assert _evaluate(edited, tmp_path / "o", "--passages-store", str(stores[1])) == 2
    assert "encodes other texts than the corpus's for its ids" in capsys.readouterr().err
    lines.pop(7)  # and a corpus the store holds more of
    (edited / "corpus.jsonl").write_text("\n".join(lines[:5] + [json.dumps({**row, "text": row["text"][:-8]})]
                                                   + lines[6:]) + "\n")
    assert _evaluate(edited, tmp_path / "o2", "--passages-store", str(stores[1])) == 2
    assert "which is not in the collection's corpus" in capsys.readouterr().err
