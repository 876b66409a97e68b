"""One set of defaults: `repbench encode` + `repbench search` gives `repbench evaluate`'s per-query numbers.

On ADI, each command with its default options (max length, dtype, device, attention, batch size, store
dtype), only K and the output folders given. The issue's failure: encode cut texts at 512 tokens and
evaluate at 256, so fusion_single_sparse_max differed (0.3582 vs 0.3684). The reference is the per-query
table `evaluate` writes; the other side is the search's run files scored here with pytrec_eval.
Also: every command's --help shows the shared defaults and every option has a help text for users.
"""

from __future__ import annotations

import argparse
import importlib

import pandas as pd
import pytest
from shared_data import require_data

from repbench.cli import COMMANDS, DefaultsHelpFormatter, main
from repbench.commands.encode_options import MODEL_DEFAULTS, busy_hint, default_threads
from repbench.evaluation.metrics import DEFAULT_MEASURES, evaluate
from repbench.evaluation.trec import read_qrels, read_run


@pytest.mark.parametrize("backbone", ["tiny-diffusion", pytest.param("smollm2-135m-instruct", marks=pytest.mark.slow)])
def test_encode_plus_search_equals_evaluate_on_adi(tmp_path, backbone):
    adi = require_data("adi")
    assert main(["evaluate", "--backbone", backbone, "--dataset", str(adi), "--kq", "1", "--kp", "1",
                 "--out", str(tmp_path / "eval"), "--no-progress"]) == 0
    for side, source in (("passage", "corpus.jsonl"), ("query", "queries.jsonl")):
        assert main(["encode", str(adi / source), "--backbone", backbone, "--k", "1", "--side", side,
                     "--out", str(tmp_path / side), "--no-progress"]) == 0
    assert main(["search", "--queries", str(tmp_path / "query"), "--docs", str(tmp_path / "passage"),
                 "--out", str(tmp_path / "search"), "--no-progress"]) == 0
    swept = pd.read_csv(tmp_path / "eval" / "per_query.csv", dtype={"qid": str})
    qrels = read_qrels(adi / "qrels" / "test.tsv")
    modes = list(swept["mode"].unique())
    assert set(modes) == {"single_dense", "sparse_max", "fusion_single_sparse_max"}  # the K=1 modes
    for mode in modes:
        ours = evaluate(read_run(tmp_path / "search" / "runs" / f"{mode}.trec"), qrels, DEFAULT_MEASURES)
        ref = swept[swept["mode"] == mode][["qid", "measure", "value"]]
        got = ours.merge(ref, on=["qid", "measure"], suffixes=("_search", "_evaluate"), how="outer")
        assert len(got) == len(ref) == len(ours) > 0
        diff = got[got["value_search"] != got["value_evaluate"]]
        assert diff.empty, f"{mode}: {len(diff)} per-query values differ\n{diff.head()}"


def _parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"repbench {name}", formatter_class=DefaultsHelpFormatter)
    importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
    return parser


@pytest.mark.parametrize("name", ["encode", "evaluate"])
def test_encoding_commands_share_the_model_defaults_and_show_them(name):
    parser = _parser(name)
    defaults = {k: parser.get_default(k) for k in MODEL_DEFAULTS}
    assert defaults == {"device": "auto", "dtype": "auto", "attn": "sdpa", "max_length": 512, "batch_size": 8}
    text = parser.format_help()
    for option in ("--max-length", "--dtype", "--device", "--attn"):
        assert option in text
    assert "(default: 512)" in text and "(default: auto)" in text and "(default: sdpa)" in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_written_for_users(name):
    for action in _parser(name)._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        text = action.help or ""
        assert len(text) > 8, f"repbench {name} {action.option_strings[0]}: no help text"
        # An internal name (a module path or a function call) is not an explanation.
        assert "repbench." not in text and "evaluation." not in text and "()" not in text, (name, text)


def test_thread_default_is_fixed_per_machine_and_busy_machines_get_a_hint():
    assert default_threads(2, 2) == 2
    assert default_threads(4, 2) == 2  # hyper-threads: one thread per physical core
    assert default_threads(2, None) == 2 and default_threads(1, 8) == 1
    assert busy_hint(2, 0.3, 2) is None and busy_hint(1, 9.0, 2) is None
    assert "--threads 1 can be up to twice as fast" in busy_hint(2, 3.1, 2)  # the busy 2-core machine


def test_encode_progress_is_per_text_and_can_be_turned_off(tmp_path, capsys):
    src = tmp_path / "c.jsonl"
    src.write_text("".join(f'{{"_id": "d{i}", "text": "word {i} and more words"}}\n' for i in range(11)))
    assert main(["encode", str(src), "--backbone", "tiny-ar", "--batch-size", "4", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "11/11" in err and "text/s" in err  # texts, not shards, with a rate
    assert main(["encode", str(src), "--backbone", "tiny-ar", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "text/s" not in capsys.readouterr().err
