"""Cost of `repbench.evaluation.metrics.evaluate` over pytrec_eval itself, interleaved in one run.

Reference: a direct ``pytrec_eval.RelevanceEvaluator(...).evaluate(run)`` on the same run and the same
measures, the evaluator built outside the timing (the strictest comparison: our call also builds its
evaluator and the tidy frame). Goal (issue 15): ours <= 1.1x the direct call. Each round times both,
alternating which goes first, so machine load hits both alike.

Default size 2,000 queries x 1,000 docs (about a minute on the 2-core machine); the issue's size:
``REPBENCH_EVAL_BENCH=7000x1000 pytest bench/test_eval_speed.py``.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import warnings

import pytrec_eval

from repbench.evaluation.metrics import DEFAULT_MEASURES, evaluate

GOAL = 1.1
ROUNDS = 5
# The same measures as DEFAULT_MEASURES, in pytrec_eval's spelling (MRR@10 derives from recip_rank).
DIRECT_MEASURES = {"ndcg_cut.10", "recip_rank", "recall.100,1000"}


def _size() -> tuple[int, int]:
    text = os.environ.get("REPBENCH_EVAL_BENCH", "2000x1000")
    queries, _, docs = text.partition("x")
    return int(queries), int(docs)


def _collection(n_queries: int, n_docs: int, seed: int = 0):
    rng = random.Random(seed)
    corpus = [f"doc{i:07d}" for i in range(max(100_000, 2 * n_docs))]
    run, qrels = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        docs = rng.sample(corpus, n_docs)
        run[qid] = {d: rng.random() for d in docs}
        judged = rng.sample(docs, 10) + rng.sample(corpus, 10)  # half retrieved, half not
        qrels[qid] = {d: rng.choice((0, 1, 1, 2)) for d in judged}
    return run, qrels


def test_evaluate_overhead_over_pytrec_eval(benchmark):
    n_queries, n_docs = _size()
    run, qrels = _collection(n_queries, n_docs)
    direct_evaluator = pytrec_eval.RelevanceEvaluator(qrels, DIRECT_MEASURES)

    # Same numbers first: every (query, measure) of ours equals pytrec_eval's.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours_df = evaluate(run, qrels, DEFAULT_MEASURES)
    direct = direct_evaluator.evaluate(run)
    got = ours_df.set_index(["qid", "measure"])["value"]
    for qid, per in direct.items():
        assert got[(qid, "ndcg_cut_10")] == per["ndcg_cut_10"] and got[(qid, "recall_1000")] == per["recall_1000"]
        assert got[(qid, "recip_rank_10")] == (per["recip_rank"] if per["recip_rank"] >= 0.1 else 0.0)

    times: dict[str, list[float]] = {"direct": [], "ours": []}
    calls = {"direct": lambda: direct_evaluator.evaluate(run), "ours": lambda: evaluate(run, qrels, DEFAULT_MEASURES)}
    order = iter(range(10**9))

    def one_round() -> None:
        first, second = ("direct", "ours") if next(order) % 2 == 0 else ("ours", "direct")
        for name in (first, second):
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    # The warm-up round is in the lists too; drop it.
    direct_s, ours_s = times["direct"][1:], times["ours"][1:]
    ratio_median = statistics.median(ours_s) / statistics.median(direct_s)
    ratio_min = min(ours_s) / min(direct_s)
    per_round = [o / d for o, d in zip(ours_s, direct_s, strict=True)]
    benchmark.extra_info.update({
        "backbone": None, "family": None, "encoder": "evaluation:metrics.evaluate", "k": None,
        "input_tokens": None, "batch_size": None, "device": "cpu", "dtype": "float64", "attn": None,
        "peak_memory_bytes": None, "tokens_per_s": None, "energy_j_per_query": None,
        "queries_per_s": n_queries / statistics.median(ours_s),
        "n_queries": n_queries, "n_docs_per_query": n_docs, "measures": list(DEFAULT_MEASURES),
        "samples_s": ours_s, "direct_samples_s": direct_s,
        "ratio_median": ratio_median, "ratio_min": ratio_min, "ratio_per_round": per_round, "goal": GOAL,
    })
    print(f"\nevaluate / pytrec_eval direct at {n_queries}x{n_docs}: median {ratio_median:.3f}, "
          f"min-based {ratio_min:.3f} (direct median {statistics.median(direct_s):.2f} s)")
    assert ratio_median <= GOAL, f"evaluate is {ratio_median:.3f}x a direct pytrec_eval call (goal <= {GOAL})"
