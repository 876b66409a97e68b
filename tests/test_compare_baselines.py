"""Device slugs and `repbench baselines` listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repbench import SCHEMA_VERSION
from repbench.analysis.baselines import device_slug, list_baselines
from repbench.cli import main
from repbench.errors import RepbenchError


@pytest.mark.parametrize("env, slug", [
    ({"gpu": {"driver_version": "550", "devices": [{"name": "NVIDIA H100 80GB HBM3"}]}}, "nvidia-h100-80gb-hbm3"),
    ({"gpu": {"devices": [{"name": "NVIDIA A100-SXM4-40GB"}, {"name": "NVIDIA A100-SXM4-40GB"}]}},
     "2x-nvidia-a100-sxm4-40gb"),
    ({"gpu": [{"name": "NVIDIA L4"}]}, "nvidia-l4"),
    # an 8-GPU node run with CUDA_VISIBLE_DEVICES=3: NVML lists all eight, torch sees (and matched) one
    ({"gpu": {"cuda_visible_devices": "3", "devices": [
        {"name": "NVIDIA H100 80GB HBM3", "torch_index": 0 if i == 3 else None} for i in range(8)]}},
     "nvidia-h100-80gb-hbm3"),
    ({"gpu": {"devices": [{"name": "NVIDIA A10G", "torch_index": None}, {"name": "NVIDIA L4", "torch_index": 0}]}},
     "nvidia-l4"),
    ({"gpu": None, "cpu": {"model": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "torch_threads": 2}},
     "cpu-intel-xeon-platinum-8375c-2t"),
    ({"gpu": {"torch_cuda_available": False, "devices": []},
      "cpu": {"model": "AMD EPYC 7R13 Processor", "torch_threads": None, "affinity_cores": 16}},
     "cpu-amd-epyc-7r13-16t"),
    ({"cpu": {}}, "cpu-unknown"),
])
def test_device_slug(env, slug):
    assert device_slug(env) == slug


def _header(commit: str, created: str) -> dict:
    return {"schema_version": SCHEMA_VERSION, "kind": "bench", "repbench_version": "0.1.0",
            "git": {"commit": commit, "dirty": True}, "created_utc": created, "config": {},
            "environment": {"gpu": None, "cpu": {"model": "Test CPU", "torch_threads": 2}}}


def test_list_baselines(tmp_path, capsys):
    d = tmp_path / "cpu-test-cpu-2t"
    d.mkdir()
    bench = {"machine_info": {"repbench": _header("b" * 40, "2026-01-02T03:04:05+00:00")}, "benchmarks": [
        {"name": f"c{i}", "extra_info": {"backbone": bb, "encoder": "parallel", "k": 4, "input_tokens": 32,
                                         "batch_size": 1, "samples_s": [0.1, 0.2]}}
        for i, bb in enumerate(["tiny-diffusion", "tiny-ar", "tiny-ar"])]}
    (d / "bench.json").write_text(json.dumps(bench))
    (d / "per_query.csv").write_text("dataset,backbone,family,encoder,k_q,k_p,mode,qid,measure,value\n"
                                     "s,tiny-ar,ar,sequential,1,1,single_dense,q1,ndcg_cut_10,0.5\n")
    (d / "metadata.json").write_text(json.dumps(_header("c" * 40, "2026-01-03T00:00:00+00:00")))
    (d / "README.md").write_text("how it was made")
    (tmp_path / "nvidia-l4").mkdir()
    (tmp_path / "nvidia-l4" / "bench.json").write_text('{"not": "a bench"}')

    t = list_baselines(tmp_path).set_index(["slug", "file"])
    lat = t.loc[("cpu-test-cpu-2t", "bench.json")]
    assert lat["kind"] == "latency" and lat["backbones"] == "tiny-ar, tiny-diffusion"
    assert lat["created_utc"] == "2026-01-02T03:04:05+00:00" and lat["git_commit"] == "bbbbbbbbbbbb+dirty"
    eff = t.loc[("cpu-test-cpu-2t", "per_query.csv")]
    assert eff["kind"] == "effectiveness" and eff["backbones"] == "tiny-ar" and eff["git_commit"] == "cccccccccccc+dirty"
    assert t.loc[("nvidia-l4", "bench.json"), "kind"].startswith("unreadable: ")
    assert len(t) == 3  # README.md and metadata.json are not baselines

    assert main(["baselines", "--root", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["slug"], r["file"]) for r in rows} == {("cpu-test-cpu-2t", "bench.json"),
                                                      ("cpu-test-cpu-2t", "per_query.csv"), ("nvidia-l4", "bench.json")}
    assert main(["baselines", "--root", str(tmp_path)]) == 0
    assert "cpu-test-cpu-2t" in capsys.readouterr().out


def test_missing_root(tmp_path):
    with pytest.raises(RepbenchError, match="no baselines directory"):
        list_baselines(Path(tmp_path / "nope"))
