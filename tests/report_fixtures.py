"""Builders of small result directories in the contracts' formats, for the report tests.

Not a conftest: test modules import these explicitly, so each test shows what it builds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

ENCODE_SYSTEMS = (("tiny-ar", "ar", "sequential"), ("tiny-diffusion", "diffusion", "parallel"))


def _encode_ms(encoder: str, k: int, length: int) -> float:
    base = 2.0 + 0.02 * length
    return base + 1.5 * (k - 1) if encoder == "sequential" else base * (length + k) / length


def bench_json(path: Path, ks=(1, 2, 4, 8), lengths=(32, 128), index_sizes=(1000, 10000, 100000),
               energy: bool = False, n_samples: int = 12, seed: int = 0, device: str = "Fixture CPU") -> Path:
    """A pytest-benchmark JSON with repbench extra_info: encode cells, search cells, one skipped cell."""
    rng = np.random.default_rng(seed)
    benches = []

    def cell(name, info, centre_ms):
        samples = (centre_ms / 1000.0 * rng.lognormal(0.0, 0.05, n_samples)).tolist()
        benches.append({"name": name, "stats": {"median": float(np.median(samples))},
                        "extra_info": {**info, "samples_s": samples}})

    for backbone, family, encoder in ENCODE_SYSTEMS:
        for length in lengths:
            for k in ks:
                info = {"backbone": backbone, "family": family, "encoder": encoder, "k": k, "input_tokens": length,
                        "batch_size": 1, "device": "cpu", "dtype": "float32", "attn": "sdpa",
                        "peak_memory_bytes": int((50 + 0.1 * length + (2 * k if encoder == "sequential" else 0.2 * k))
                                                 * 2**20),
                        # the cell's own peak, as the harness records it (weights + growth over its pass)
                        "cell_peak_memory_bytes": int((5 + 0.1 * length + (2 * k if encoder == "sequential"
                                                                           else 0.2 * k)) * 2**20),
                        "tokens_per_s": 1000.0, "queries_per_s": 100.0,
                        "energy_j_per_query": (0.5 + 0.1 * k) if energy else None,
                        "model_input_tokens": length + 60 + (k + 3 if encoder == "parallel" else 0)}
                cell(f"test_encode[{backbone}-{encoder}-k{k}-L{length}]", info, _encode_ms(encoder, k, length))
    for mode, kind, k_p in (("single_dense", "flat_ip", 1), ("multi_dense", "maxsim", 4)):
        for size in index_sizes:
            info = {"backbone": "synthetic", "family": None, "encoder": f"search:{kind}", "k": k_p,
                    "input_tokens": None, "batch_size": 1, "device": "cpu", "peak_memory_bytes": None,
                    "tokens_per_s": None, "queries_per_s": 10.0, "energy_j_per_query": None, "index_size": size,
                    "k_p": k_p, "mode": mode, "query_batch": 1}
            cell(f"test_search[{kind}-{size}]", info, 0.05 + 2e-5 * size * k_p)
    # Another suite's benchmark in the same JSON (no backbone, no K): the report must ignore it.
    benches.append({"name": "test_randomization_speed", "extra_info": {
        "backbone": None, "family": None, "encoder": "analysis:randomization", "k": None, "samples_s": [0.2, 0.3]}})
    benches.append({"name": "test_encode[oom]", "extra_info": {
        "backbone": "tiny-ar", "family": "ar", "encoder": "sequential", "k": 16, "input_tokens": 4096,
        "batch_size": 1, "status": "skipped", "reason": "out of memory"}})
    obj = {"machine_info": {"node": "x", "repbench": {"schema_version": 1, "kind": "bench", "environment": {
        "gpu": None, "cpu": {"model": device}}, "peaks": PEAKS}}, "benchmarks": benches,
        "datetime": "2026-01-01T00:00:00"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


# A probe record as the harness writes it (telemetry.peaks): the report computes each cell's floor from it.
PEAKS = {"device": "cpu", "name": "Fixture CPU", "matmul_flops": {"float32": 1.0e11}, "read_bandwidth": 1.0e10}

CELLS = ((1, 1), (1, 4), (4, 1), (4, 4))


def effectiveness(directory: Path, datasets=("adi", "scifact"), n_queries: int = 8, seed: int = 1) -> pd.DataFrame:
    """per_query.csv and summary.csv for two systems x four cells x three modes; returns the summary."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in datasets:
        for backbone, family, encoder in ENCODE_SYSTEMS:
            for k_q, k_p in CELLS:
                modes = ["single_dense", "sparse_max"] + (["multi_dense"] if k_q * k_p > 1 else [])
                for mode in modes:
                    level = 0.3 + 0.05 * np.log2(k_q * k_p) + (0.05 if encoder == "parallel" else 0.0)
                    for q in range(n_queries):
                        value = float(np.clip(level + rng.normal(0, 0.15), 0, 1))
                        for measure, v in (("ndcg_cut_10", value), ("recip_rank_10", min(1.0, value * 1.2))):
                            rows.append({"dataset": dataset, "backbone": backbone, "family": family,
                                         "encoder": encoder, "k_q": k_q, "k_p": k_p, "mode": mode,
                                         "qid": f"q{q}", "measure": measure, "value": v})
    per_query = pd.DataFrame(rows)
    keys = ["dataset", "backbone", "family", "encoder", "k_q", "k_p", "mode", "measure"]
    summary = per_query.groupby(keys, as_index=False)["value"].agg(mean="mean", n="count")
    directory.mkdir(parents=True, exist_ok=True)
    per_query.to_csv(directory / "per_query.csv", index=False)
    summary.to_csv(directory / "summary.csv", index=False)
    return summary


def system(backbone: str, encoder: str, k_q: int, k_p: int, mode: str) -> str:
    return f"{backbone}/{encoder}/q{k_q}p{k_p}/{mode}"


def analysis(directory: Path, summary: pd.DataFrame, measure: str = "ndcg_cut_10") -> None:
    """significance.csv (per dataset, vs tiny-ar q1p1 single_dense), oracle.csv and oracle_cells.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    s = summary[summary["measure"] == measure].copy()
    s["system"] = [system(r.backbone, r.encoder, r.k_q, r.k_p, r["mode"]) for _, r in s.iterrows()]
    base = system("tiny-ar", "sequential", 1, 1, "single_dense")
    sig = []
    for dataset, grp in s.groupby("dataset"):
        means = grp.set_index("system")["mean"]
        for i, (name, mean) in enumerate(means.items()):
            if name == base:
                continue
            diff = mean - means[base]
            sig.append({"dataset": dataset, "system": name, "baseline": base, "measure": measure, "n": 8, "mean_system": mean,
                        "mean_baseline": means[base], "mean_diff": diff, "ci_low": diff - 0.1,
                        "ci_high": diff + 0.1, "test": "t", "p_value": 0.01 if i % 3 == 0 else 0.4,
                        "p_adjusted": 0.03 if i % 3 == 0 else 0.9, "correction": "holm",
                        "significant": i % 3 == 0})
    pd.DataFrame(sig).to_csv(directory / "significance.csv", index=False)
    oracle, cells = [], []
    for dataset in sorted(s["dataset"].unique()):
        for backbone, _, encoder in ENCODE_SYSTEMS:
            ident = {"dataset": dataset, "backbone": backbone, "encoder": encoder, "mode": "multi_dense",
                     "measure": measure}
            for scope, fixed in (("kq", 4), ("grid", None)):
                oracle.append({**ident, "scope": scope, "fixed_k": fixed, "budget_q": None, "budget_p": None,
                               "n": 8, "oracle_mean": 0.62, "oracle_ci_low": 0.55, "oracle_ci_high": 0.69,
                               "best_cell": "q4p4", "best_mean": 0.45, "best_ci_low": 0.38, "best_ci_high": 0.52,
                               "gap": 0.17, "gap_ci_low": 0.11, "gap_ci_high": 0.23,
                               "label": "optimistic upper bound (per-query best cell selected on the test queries)"})
            shares = {(1, 4): 0.25, (4, 1): 0.125, (4, 4): 0.625}
            for (k_q, k_p), share in shares.items():
                cells.append({**ident, "scope": "grid", "k_q": k_q, "k_p": k_p, "n_queries": int(share * 8),
                              "share": share})
    pd.DataFrame(oracle).to_csv(directory / "oracle.csv", index=False)
    pd.DataFrame(cells).to_csv(directory / "oracle_cells.csv", index=False)


def adaptive(effectiveness_dir: Path, out: Path, n_queries: int = 8, seed: int = 2) -> None:
    """signals.csv next to the fixture's per_query.csv, then `repbench adapt` on both (its real output)."""
    from repbench.cli import main
    from repbench.schema.signals import signals_frame, write_signals

    rng = np.random.default_rng(seed)
    qids = [f"q{q}" for q in range(n_queries)]
    frames = [signals_frame(qids, {"text_tokens": rng.integers(3, 20, n_queries), "entropy": rng.random((n_queries, 1)),
                                   "valid": np.ones((n_queries, 1))},
                            dataset=ds, backbone=bb, encoder=enc, side="query", k=1)
              for ds in ("adi", "scifact") for bb, _, enc in ENCODE_SYSTEMS]
    write_signals(effectiveness_dir / "signals.csv", pd.concat(frames, ignore_index=True))
    assert main(["adapt", "--per-query", str(effectiveness_dir / "per_query.csv"), "--out", str(out),
                 "--bootstrap", "200", "--permutations", "200", "--selectors", "threshold", "logistic"]) == 0


def full_results(root: Path, energy: bool = False) -> Path:
    """A results directory with every input kind, laid out as the demo does (sub-directories)."""
    bench_json(root / "bench" / "out.json", energy=energy)
    summary = effectiveness(root / "effectiveness")
    analysis(root / "analysis", summary)
    adaptive(root / "effectiveness", root / "analysis" / "adapt")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` and a hash of its bytes: a session fixture compares this at teardown, so a test
    that writes into a shared (read-only by contract) directory fails instead of changing later tests' input."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}
