"""The encoder registry and EncodeOptions: names agree with the schema, checks refuse what would be ignored."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from repbench import schema
from repbench.encoders import EncodeOptions, encode
from repbench.encoders.registry import REGISTRY, check, default_encoder, encoders_for_family, get_encoder
from repbench.errors import RepbenchError


def test_registry_names_are_the_schema_names():
    assert tuple(REGISTRY) == schema.ENCODERS


def test_families_defaults_and_max_k_as_published():
    # docs/method.md: sequential (AR) and parallel (diffusion) read K slots; the baselines one vector
    assert default_encoder("ar") == "sequential" and default_encoder("diffusion") == "parallel"
    assert set(encoders_for_family("ar")) == {"sequential", "lasttoken"}
    assert set(encoders_for_family("diffusion")) == {"parallel", "meanpool"}
    assert {n: s.max_k for n, s in REGISTRY.items()} == {"sequential": 64, "parallel": 64, "meanpool": 1,
                                                         "lasttoken": 1}
    for spec in REGISTRY.values():
        assert callable(spec.forward_fn())
    with pytest.raises(RepbenchError, match="no default encoder"):
        default_encoder("encoder-decoder")


def test_unknown_encoder_and_unknown_option_are_refused():
    with pytest.raises(RepbenchError, match="unknown encoder 'colbert'.*sequential, parallel"):
        get_encoder("colbert")
    with pytest.raises(RepbenchError, match="unknown encode option.*denoise_step\\b"):
        EncodeOptions.build(denoise_step=2)


@pytest.mark.parametrize(("encoder", "options", "unused"), [
    ("sequential", {"k": 4, "denoise_steps": 3}, "denoise_steps"),
    ("sequential", {"k": 4, "readout": "aligned"}, "readout"),
    ("parallel", {"k": 4, "early_stop": True}, "early_stop"),
    ("parallel", {"k": 4, "early_stop": "strict"}, "early_stop"),
    ("parallel", {"k": 4, "adapt_prompt": True}, "adapt_prompt"),
    ("meanpool", {"truncate": False}, "truncate"),
])
def test_an_option_the_encoder_would_ignore_is_an_error(encoder, options, unused):
    with pytest.raises(RepbenchError, match=f"does not use {unused}"):
        check(encoder, EncodeOptions(**options), mask_token_id=7, backbone_name="x")


def test_options_the_encoder_reads_pass():
    check("parallel", EncodeOptions(k=4, readout="aligned", denoise_steps=2, confidence="topk_margin"), 7, "x")
    check("sequential", EncodeOptions(k=8, early_stop=True, truncate=False, side="passage"), None, "x")
    with pytest.raises(RepbenchError, match="batch_size must be a positive integer"):
        check("sequential", EncodeOptions(batch_size=0), None, "x")


def test_options_object_and_keywords_give_one_encoding():
    from repbench.backbones import load_backbone

    bb = load_backbone("tiny-diffusion")
    texts = ["dense retrieval with masks", "a second, longer text about sparse vectors"]
    by_kw = encode(bb, texts, encoder="parallel", k=3, side="passage", truncate=False)
    opts = EncodeOptions(k=3, side="passage", truncate=False)
    by_obj = encode(bb, texts, encoder="parallel", options=opts)
    assert by_obj.dense.equal(by_kw.dense) and by_obj.meta == by_kw.meta
    assert by_obj.meta["k"] == 3 and by_obj.meta["side"] == "passage" and by_obj.meta["truncate"] is False
    # keywords override the options object
    assert encode(bb, texts[:1], encoder="parallel", options=opts, k=2).dense.shape[1] == 2


def test_report_style_reads_registry_without_loading_torch():
    code = ("import sys, repbench.report.style as s; "
            "print('torch' in sys.modules, sorted(s.ENCODER_COLOURS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    from repbench.report import style

    # colours fixed per encoder (seaborn colorblind slots 0, 1, 2, 4 before the registry existed)
    assert style.ENCODER_COLOURS == {"sequential": style.PALETTE[0], "parallel": style.PALETTE[1],
                                     "meanpool": style.PALETTE[2], "lasttoken": style.PALETTE[4]}


def test_cli_refuses_an_ignored_option_before_writing_anything(tmp_path, capsys):
    from repbench.cli import main

    src = tmp_path / "c.jsonl"
    src.write_text('{"_id": "a", "text": "hello world"}\n')
    out = tmp_path / "enc"
    rc = main(["encode", str(src), "--backbone", "tiny-ar", "--encoder", "sequential", "--denoise-steps", "2",
               "--out", str(out), "--device", "cpu"])
    assert rc == 2 and not out.exists()
    assert "sequential encoder does not use denoise_steps" in capsys.readouterr().err


def test_encode_cli_takes_every_method_option_and_keys_the_store_with_it(tmp_path, diff):
    """`repbench encode` exposes the same method options as `evaluate` (commands.encode_options)."""
    from repbench.cli import main
    from repbench.encoders.store import load_sharded

    texts = ["retrieval of diffusion models", "sparse lexical vectors from logits", "a third short passage"]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "enc"
    rc = main(["encode", str(src), "--backbone", "tiny-diffusion", "--encoder", "parallel", "--k", "4",
               "--sparse-top-k", "1", "--no-truncate", "--prompt-variant", "one", "--out", str(out),
               "--device", "cpu"])
    assert rc == 0
    reps = load_sharded(out)
    assert bool(reps.valid.all())  # --no-truncate: every slot kept
    assert int((reps.sparse_weights > 0).sum(1).max()) <= 4  # one id per slot, max-pooled over 4 slots
    ref = encode(diff, texts, encoder="parallel", k=4, side="passage", sparse_top_k=1, truncate=False,
                 prompt_variant="one")
    assert torch.equal(reps.sparse_ids, ref.sparse_ids) and torch.equal(reps.sparse_weights, ref.sparse_weights)
    manifest = json.loads((out / "manifest.json").read_text())
    assert '"sparse_top_k": 1' in json.dumps(manifest) and '"truncate": false' in json.dumps(manifest)
    assert '"dtype": "float32"' in json.dumps(manifest) and '"batch_rule": "batch-independent' in json.dumps(manifest)
