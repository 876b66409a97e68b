"""One encoding identity keys the store, the sweep's cache and the resume check: its digest is the sha256 of its
fields as canonical JSON (computed here with hashlib), every option changes it, and a sweep resumed with the
backbone in another precision is refused instead of mixing cells."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from types import SimpleNamespace

import pytest
from test_eval_sweep import BACKBONE, COLL, FakeEncoder, config

from repbench.encoders.identity import EncodingIdentity
from repbench.encoders.options import EncodeOptions
from repbench.errors import RepbenchError
from repbench.evaluation.sweep import plan_sweep, run_sweep

BASE = EncodingIdentity(backbone="tiny-ar", encoder="sequential", options=EncodeOptions(k=4, side="passage"),
                        dtype="float32", device_type="cpu", attn="sdpa")


def _sha(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_digest_is_the_sha256_of_every_setting_once():
    flat = BASE.fields()
    expected = {f.name: getattr(BASE.options, f.name) for f in fields(EncodeOptions)}
    expected.update(prompt_variant="few", backbone="tiny-ar", encoder="sequential", dtype="float32",
                    device_type="cpu", attn="sdpa", store_dtype="float32")
    assert flat == expected  # batch_size once, the variant K=4 uses by default named
    assert BASE.digest() == _sha(expected)
    assert replace(BASE, options=replace(BASE.options, prompt_variant="few")).digest() == BASE.digest()


CHANGES = [("options", f.name) for f in fields(EncodeOptions)] + [
    ("self", "backbone"), ("self", "encoder"), ("self", "dtype"), ("self", "device_type"), ("self", "attn"),
    ("self", "store_dtype"), ("self", "store_layout"), ("self", "rows")]
OTHER = {"k": 5, "side": "query", "batch_size": 3, "max_length": 100, "readout": "aligned", "denoise_steps": 2,
         "confidence": "topk_margin", "early_stop": "strict", "adapt_prompt": True, "prompt_variant": "three",
         "truncate": False, "sparse_top_k": 7, "backbone": "tiny-diffusion", "encoder": "parallel",
         "dtype": "bfloat16", "device_type": "cuda", "attn": "eager", "store_dtype": "float16",
         "store_layout": "64:input", "rows": "ab" * 32}


@pytest.mark.parametrize(("where", "name"), CHANGES, ids=[c[1] for c in CHANGES])
def test_every_setting_changes_the_digest(where, name):
    assert name in OTHER, f"{name}: a new field needs another value here"
    if where == "options":
        changed = replace(BASE, options=replace(BASE.options, **{name: OTHER[name]}))
    else:
        changed = replace(BASE, **{name: OTHER[name]})
    assert changed.digest() != BASE.digest()


def test_the_store_the_cache_and_the_resume_check_read_one_identity(tmp_path):
    cfg = config(kq=[2], kp=[3])
    out = tmp_path / "sweep"
    run_sweep(COLL, BACKBONE, cfg, out, encode_fn=FakeEncoder(), progress=False)
    plan = plan_sweep(COLL, BACKBONE, cfg, out)
    passage = plan.identity("passage", 3)
    store = plan.stem("passage", 3)
    assert store.name.endswith(passage.digest()[:16]) and plan.stem("query", 2).name.endswith(
        plan.identity("query", 2).digest()[:16])
    stored = json.loads((store / "config.json").read_text())
    assert stored["options_hash"] == _sha(plan.identity("passage", 3, rows=False).fields())
    state = json.loads((out / "sweep_state.json").read_text())
    assert {k: state[k] for k in passage.sweep_fields()} == passage.sweep_fields()
    assert "batch_size" not in state and "k" not in state  # memory knob and per-encoding: may change on resume


def test_a_sweep_resumed_in_another_precision_is_refused(tmp_path):
    out = tmp_path / "sweep"
    cfg = config(kq=[1], kp=[1])
    run_sweep(COLL, BACKBONE, cfg, out, encode_fn=FakeEncoder(), progress=False)
    half = SimpleNamespace(**vars(BACKBONE), dtype="bfloat16")
    with pytest.raises(RepbenchError, match=r"other settings \(dtype\)"):
        run_sweep(COLL, half, cfg, out, encode_fn=FakeEncoder(), progress=False)
    state = json.loads((out / "sweep_state.json").read_text())
    del state["dtype"]  # a state file written before the dtype was recorded is not held against it
    (out / "sweep_state.json").write_text(json.dumps(state))
    run_sweep(COLL, BACKBONE, cfg, out, encode_fn=FakeEncoder(), progress=False)
