"""Cross-validated adaptive K: the threshold rule recovers a planted rule, finds nothing in noise, and no
query is ever scored by a selector fitted on a fold that contains it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from repbench.analysis.adaptive import cross_validate, holm_across_datasets, make_folds, score_option_set
from repbench.analysis.oracle import OptionSet
from repbench.analysis.selectors import LogisticSelector, Selector, ThresholdSelector, make_selectors
from repbench.errors import RepbenchError

CELLS = [(1, 1), (2, 1), (4, 1)]  # cheapest first


def _table(rng: np.random.Generator, n: int, planted: bool):
    """Values [3, n] and features: query j's best cell is +0.4 above the others' U(0.2, 0.5) level.

    planted: best cell = K_q 1 when signal s <= 0.4, K_q 4 above; else the best cell is drawn at random,
    independently of every feature (cell 1 is favoured a little so the best fixed cell is well defined).
    """
    s = rng.random(n)
    noise = rng.random((n, 3))
    if planted:
        best = np.where(s <= 0.4, 0, 2)
    else:
        best = rng.choice(3, size=n, p=[0.3, 0.4, 0.3])
    values = rng.uniform(0.2, 0.5, size=(3, n))
    values[best, np.arange(n)] += 0.4
    qids = [f"q{j:03d}" for j in range(n)]
    feats = pd.DataFrame(np.column_stack([noise[:, 0], s, noise[:, 1:]]), index=qids,
                         columns=["noise_a", "s", "noise_b", "noise_c"])
    ident = {"dataset": "synthetic", "backbone": "b", "encoder": "e", "mode": "m", "measure": "ndcg_cut_10"}
    return OptionSet(ident, "kq", 1, list(CELLS), values, qids), feats


def _score(option, feats, names=("threshold",), seed=0):
    folds = dict(zip(option.qids, make_folds(option.qids, 5, seed).tolist(), strict=True))
    summary, choices, cells, rules = score_option_set(option, feats, folds, make_selectors(names),
                                                      n_bootstrap=2000, seed=seed)
    return holm_across_datasets(pd.DataFrame(summary)), pd.DataFrame(choices), pd.DataFrame(rules)


def test_threshold_recovers_planted_rule_and_finds_nothing_in_noise():
    rng = np.random.default_rng(7)
    option, feats = _table(rng, 200, planted=True)
    summary, choices, rules = _score(option, feats)
    row = summary.iloc[0]
    V = option.values
    oracle, best = V.max(axis=0).mean(), V.mean(axis=1).max()  # references computed here, not by the code
    assert row["oracle_mean"] == pytest.approx(oracle) and row["best_mean"] == pytest.approx(best)
    assert row["adaptive_mean"] >= best + 0.9 * (oracle - best)
    assert row["gap_closed"] >= 0.9
    assert row["p_adjusted"] < 0.05 and row["significant"]
    # the rule learned in every fold is the planted one: signal s, threshold near 0.4, K_q 1 below, 4 above
    for text in rules["rule"]:
        feature, rest = text.split(" (inner-CV")[0].split(" <= ")
        assert feature == "s"
        assert abs(float(rest.split(" ")[0]) - 0.4) < 0.05
        assert rest.endswith("cell 0; else cell 2")
    assert set(choices.loc[choices["k_q"] == 1, "qid"]) <= set(feats.index[feats["s"] < 0.45])

    # Noise: several independent tables, so the check cannot be passed by one lucky seed. A selector
    # must never claim a significant gain; held-out it may lose a little to the best fixed cell, which
    # is chosen on all queries (optimistic).
    significant = 0
    for seed in range(8, 14):
        option, feats = _table(np.random.default_rng(seed), 200, planted=False)
        summary, _, _ = _score(option, feats, names=("threshold", "logistic"))
        for _, row in summary.iterrows():
            assert row["oracle_mean"] > row["best_mean"] + 0.2  # there is a gap to close ...
            assert row["gain"] < 0.01 and row["gain_ci_low"] <= 0  # ... but noise cannot close it
            assert not (row["significant"] and row["gain"] > 0)
            significant += bool(row["significant"])
    assert significant <= 1


class Recording(Selector):
    """Wraps a real selector and logs which queries each fitted model was trained on and scored."""

    log: list[tuple[frozenset, list[str]]] = []

    def __init__(self, inner: Selector):
        super().__init__()
        self.inner = inner

    def fit(self, X, V, qids, features):
        self.inner.fit(X, V, qids, features)
        self.train = frozenset(qids)
        return self

    def predict(self, X, qids):
        Recording.log.append((self.train, list(qids)))
        return self.inner.predict(X, qids)

    def describe(self):
        return self.inner.describe()


@pytest.mark.parametrize("inner", [ThresholdSelector, LogisticSelector])
def test_no_query_is_scored_by_a_model_fitted_on_its_fold(inner):
    option, feats = _table(np.random.default_rng(3), 60, planted=True)
    folds = make_folds(option.qids, 5, seed=1)
    Recording.log = []
    picks, rules = cross_validate(option.values, feats.to_numpy(), option.qids, list(feats.columns), folds,
                                  lambda: Recording(inner()))
    assert len(Recording.log) == 5 == len(rules)
    scored = [q for _, qs in Recording.log for q in qs]
    assert sorted(scored) == sorted(option.qids)  # every query scored exactly once
    for train, qs in Recording.log:
        assert train.isdisjoint(qs)
        assert len(train) + len(qs) == 60
        assert len({folds[option.qids.index(q)] for q in qs}) == 1  # one fold per model


class Memoriser(Selector):
    """Picks each query's oracle cell if it saw the query in training, else the first cell: any leak
    of a test query into training would lift its score to the oracle's."""

    name = "memoriser"

    def _fit(self, X, V, features):
        self.best_of = dict(zip(sorted(self.train_qids), np.argmax(V, axis=0), strict=True))

    def predict(self, X, qids):  # deliberately without the base class's guard
        return np.array([self.best_of.get(q, 0) for q in qids])


def test_a_memorising_selector_scores_exactly_the_first_cell():
    option, feats = _table(np.random.default_rng(5), 40, planted=True)
    folds = dict(zip(option.qids, make_folds(option.qids, 4, seed=2).tolist(), strict=True))
    summary, choices, _, _ = score_option_set(option, feats, folds, {"memoriser": Memoriser}, n_bootstrap=200)
    assert summary[0]["adaptive_mean"] == pytest.approx(option.values[0].mean())
    assert {c["k_q"] for c in choices} == {1}


def test_predict_refuses_training_queries():
    sel = ThresholdSelector().fit(np.zeros((4, 1)), np.ones((2, 4)), ["a", "b", "c", "d"], ["x"])
    with pytest.raises(RepbenchError, match="trained on"):
        sel.predict(np.zeros((2, 1)), ["e", "b"])


def test_threshold_hand_example():
    x = np.array([[3.0], [1.0], [4.0], [2.0]])
    V = np.array([[0, 1, 0, 1], [1, 0, 1, 0]], dtype=float)  # cell 0 best for x <= 2, cell 1 above
    sel = ThresholdSelector(min_leaf=1).fit(x, V, list("abcd"), ["x"])
    assert (sel.feature_name, sel.threshold, sel.low, sel.high) == ("x", 2.5, 0, 1)
    # an unknown value is the training median, 2.5, which is <= the threshold
    assert sel.predict(np.array([[0.0], [2.4], [2.6], [np.nan]]), list("efgh")).tolist() == [0, 0, 1, 0]
    # no split beats the best fixed cell -> the fixed cell, cheapest on ties
    flat = ThresholdSelector(min_leaf=1).fit(x, np.ones((2, 4)), list("abcd"), ["x"])
    assert flat.feature is None and flat.low == 0


def test_folds_balanced_seeded_and_order_free():
    qids = [f"q{i}" for i in range(23)]
    f = make_folds(qids, 5, seed=4)
    assert sorted(np.bincount(f).tolist()) == [4, 4, 5, 5, 5]
    shuffled = qids[::-1]
    g = make_folds(shuffled, 5, seed=4)
    assert dict(zip(qids, f, strict=True)) == dict(zip(shuffled, g, strict=True))
    assert not np.array_equal(f, make_folds(qids, 5, seed=5))
    assert sorted(make_folds(qids[:3], 5).tolist()) == [0, 1, 2]  # leave-one-out when n < folds
    with pytest.raises(RepbenchError):
        make_folds(["only"], 5)


def test_holm_families_include_grid_rows_without_fixed_k():
    rows = [{"dataset": ds, "backbone": "b", "encoder": "e", "mode": "m", "measure": "x", "scope": scope,
             "fixed_k": fk, "selector": "threshold", "p_value": p}
            for ds, scope, fk, p in (("d1", "grid", None, 0.01), ("d2", "grid", None, 0.04),
                                     ("d1", "kq", 1, 0.03), ("d2", "kq", 1, 0.5))]
    frame = pd.DataFrame(rows)
    frame["fixed_k"] = frame["fixed_k"].astype("Int64")
    out = holm_across_datasets(frame)
    # by hand: grid family {0.01, 0.04} -> {0.02, 0.04}; kq family {0.03, 0.5} -> {0.06, 0.5}
    assert out["p_adjusted"].tolist() == pytest.approx([0.02, 0.04, 0.06, 0.5])
    assert out["significant"].tolist() == [True, True, False, False]
