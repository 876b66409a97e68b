"""Per-query cell selectors: learn, on training queries only, which (K_q, K_p) cell to use for a query.

A selector is fitted on a feature matrix X [n, F] (one row per training query, NaN = unknown) and the
value matrix V [C, n] of the same queries (cells ordered cheapest first, as in analysis.oracle), and then
predicts a cell index for unseen queries from their features alone. Every tie goes to the cheapest
cell (the lowest index) and, for the threshold rule, to no split at all, so a selector only departs
from the best fixed cell when the training queries give it a reason to.

Learned selectors are gated: an inner cross-validation over the training queries alone compares the
learned rule with the training queries' best fixed cell, and the rule is kept only if it wins there by
more than one standard error of the per-query differences.
Without the gate a rule fitted to noise loses to the fixed cell on held-out queries (it overfits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from repbench.analysis.folds import make_folds
from repbench.analysis.oracle import best_fixed_index
from repbench.errors import RepbenchError
from repbench.schema import SELECTORS


def _impute(X: np.ndarray, medians: np.ndarray) -> np.ndarray:
    X = np.array(X, dtype=np.float64, copy=True)
    rows, cols = np.nonzero(np.isnan(X))
    X[rows, cols] = medians[cols]
    return X


def _medians(X: np.ndarray) -> np.ndarray:
    """Training medians per feature (0 for an all-unknown feature), used to fill unknown values."""
    with np.errstate(all="ignore"):
        known = ~np.isnan(X).all(axis=0)
        med = np.zeros(X.shape[1])
        if known.any():
            med[known] = np.nanmedian(X[:, known], axis=0)
    return med


class Selector:
    """Base: remembers which query ids it was fitted on (so callers and tests can check disjointness)."""

    name = "selector"
    gated = False  # learned selectors: True (see the module docstring)
    inner_folds = 5

    def __init__(self, gate: bool = True) -> None:
        self.train_qids: frozenset[str] = frozenset()
        self.gate = gate and self.gated
        self.gate_note = ""

    def fit(self, X: np.ndarray, V: np.ndarray, qids: Sequence[str], features: Sequence[str]) -> Selector:
        X = np.asarray(X, dtype=np.float64)
        V = np.asarray(V, dtype=np.float64)
        if X.shape[0] != V.shape[1] or len(qids) != X.shape[0]:
            raise RepbenchError(f"selector fit: {X.shape[0]} feature rows, {V.shape[1]} value columns, "
                                f"{len(qids)} query ids")
        self.train_qids = frozenset(str(q) for q in qids)
        self.fixed_only = False
        if self.gate and X.shape[0] >= 2 * self.inner_folds:
            self._apply_gate(X, V, [str(q) for q in qids], list(features))
        if self.fixed_only:
            self.fixed_cell = best_fixed_index(V)
        else:
            self._fit(X, V, list(features))
        return self

    def _apply_gate(self, X: np.ndarray, V: np.ndarray, qids: list[str], features: list[str]) -> None:
        inner = make_folds(qids, self.inner_folds, seed=0)
        cols = np.arange(V.shape[1])
        learned = np.empty(V.shape[1])
        fixed = np.empty(V.shape[1])
        for fold in np.unique(inner):
            te, tr = inner == fold, inner != fold
            model = self._ungated().fit(X[tr], V[:, tr], [q for q, t in zip(qids, tr, strict=True) if t], features)
            learned[te] = V[model._predict(X[te]), cols[te]]
            fixed[te] = V[best_fixed_index(V[:, tr]), cols[te]]
        diff = learned - fixed
        gain = diff.mean()
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        # one-standard-error rule: a rule that wins by less than its own noise is not worth a departure
        self.fixed_only = not gain > max(se, 1e-12)
        self.gate_note = f"inner-CV gain {gain:+.4f}, SE {se:.4f}"

    def _ungated(self) -> Selector:
        return type(self)(gate=False)

    def predict(self, X: np.ndarray, qids: Sequence[str]) -> np.ndarray:
        seen = self.train_qids.intersection(str(q) for q in qids)
        if seen:  # guards the one rule that makes the numbers honest
            raise RepbenchError(f"{self.name}: asked to score queries it was trained on ({sorted(seen)[:5]})")
        X = np.asarray(X, dtype=np.float64)
        if self.fixed_only:
            return np.full(X.shape[0], self.fixed_cell, dtype=np.int64)
        return self._predict(X)

    def describe(self) -> str:
        if self.fixed_only:
            return f"gated to the fixed cell {self.fixed_cell} ({self.gate_note})"
        return self._describe() + (f" ({self.gate_note})" if self.gate_note else "")

    def _describe(self) -> str:
        return self.name

    def _fit(self, X: np.ndarray, V: np.ndarray, features: list[str]) -> None:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FixedSelector(Selector):
    """The best fixed cell of the training queries: the honest (cross-validated) fixed baseline."""

    name = "fixed_cv"

    def _fit(self, X, V, features):
        self.cell = best_fixed_index(V)

    def _predict(self, X):
        return np.full(X.shape[0], self.cell, dtype=np.int64)

    def _describe(self) -> str:
        return f"cell {self.cell}"


class ThresholdSelector(Selector):
    """One feature, one threshold, one cell on each side, chosen to maximise the training mean.

    For a feature sorted ascending, the best cell left of a split and the best cell right of it can be
    chosen independently, so every (feature, split) is scored from cumulative sums in O(C n) per
    feature. Splits leave at least `min_leaf` training queries on each side (default: max(2, n // 10)),
    which keeps a single lucky query from defining the rule. A split must beat the best fixed cell
    strictly; otherwise the rule is that fixed cell.
    """

    name = "threshold"
    gated = True

    def __init__(self, gate: bool = True, min_leaf: int | None = None) -> None:
        super().__init__(gate)
        self.min_leaf = min_leaf

    def _ungated(self) -> Selector:
        return ThresholdSelector(gate=False, min_leaf=self.min_leaf)

    def _fit(self, X, V, features):
        n = X.shape[0]
        self.medians = _medians(X)
        Xi = _impute(X, self.medians)
        total = V.sum(axis=1)
        self.feature, self.feature_name, self.threshold = None, None, np.inf
        self.low = self.high = best_fixed_index(V)
        best = total[self.low]
        min_leaf = self.min_leaf if self.min_leaf is not None else max(2, n // 10)
        tol = 1e-12 * max(1.0, np.abs(V).sum())
        for j in range(Xi.shape[1]):
            order = np.argsort(Xi[:, j], kind="stable")
            xs = Xi[order, j]
            cum = np.cumsum(V[:, order], axis=1)  # cum[:, i-1] = sum over the i smallest
            i = np.arange(min_leaf, n - min_leaf + 1)
            i = i[(i >= 1) & (i < n)]
            i = i[xs[i - 1] < xs[i]]  # only between distinct values
            if i.size == 0:
                continue
            left = cum[:, i - 1]
            right = total[:, None] - left
            score = left.max(axis=0) + right.max(axis=0)
            a = int(np.argmax(score))
            if score[a] > best + tol:
                best = score[a]
                split = int(i[a])
                self.feature, self.feature_name = j, features[j]
                self.threshold = 0.5 * (xs[split - 1] + xs[split])
                self.low, self.high = int(np.argmax(left[:, a])), int(np.argmax(right[:, a]))

    def _predict(self, X):
        if self.feature is None:
            return np.full(X.shape[0], self.low, dtype=np.int64)
        x = _impute(X, self.medians)[:, self.feature]
        return np.where(x <= self.threshold, self.low, self.high).astype(np.int64)

    def _describe(self) -> str:
        if self.feature is None:
            return f"no split: cell {self.low}"
        return f"{self.feature_name} <= {self.threshold:.6g} -> cell {self.low}; else cell {self.high}"


class _ClassifierSelector(Selector):
    """Predicts each query's oracle cell from all features.

    Training labels are the per-query best cells (cheapest on ties); a query whose cells all tie carries
    no information and is left out; each other query is weighted by how much its best cell beats the
    average cell, so queries where the choice matters most count most. With fewer than two distinct
    labels left, the selector falls back to the training queries' best fixed cell.
    """

    gated = True

    def _model(self):
        raise NotImplementedError

    def _fit(self, X, V, features):
        self.medians = _medians(X)
        self.fallback = best_fixed_index(V)
        labels = np.argmax(V, axis=0)
        weight = V.max(axis=0) - V.mean(axis=0)
        keep = weight > 1e-12
        self.model = None
        if np.unique(labels[keep]).size < 2:
            return
        self.model = self._model()
        self.model.fit(_impute(X, self.medians)[keep], labels[keep], **self._weights(weight[keep]))

    def _weights(self, w: np.ndarray) -> dict:
        return {"clf__sample_weight": w / w.mean()}

    def _predict(self, X):
        if self.model is None:
            return np.full(X.shape[0], self.fallback, dtype=np.int64)
        return np.asarray(self.model.predict(_impute(X, self.medians)), dtype=np.int64)

    def _describe(self) -> str:
        return self.name if self.model is not None else f"{self.name}: fallback cell {self.fallback}"


class LogisticSelector(_ClassifierSelector):
    """Multinomial logistic regression (L2, C = 1) on standardised features."""

    name = "logistic"

    def _model(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=1.0, max_iter=2000))])


class BoostedSelector(_ClassifierSelector):
    """Gradient-boosted trees (scikit-learn HistGradientBoosting; small: 50 shallow trees, seeded)."""

    name = "gbt"

    def _model(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=50, max_depth=2, learning_rate=0.1,
                                              min_samples_leaf=3, random_state=0)

    def _weights(self, w: np.ndarray) -> dict:
        return {"sample_weight": w / w.mean()}


_FACTORIES: dict[str, Callable[[], Selector]] = {
    "fixed_cv": FixedSelector, "threshold": ThresholdSelector, "logistic": LogisticSelector, "gbt": BoostedSelector,
}


def make_selectors(names: Sequence[str]) -> dict[str, Callable[[], Selector]]:
    """name -> factory for each requested selector (unknown names are refused)."""
    out = {}
    for name in names:
        if name not in _FACTORIES:
            raise RepbenchError(f"unknown selector {name!r}; expected one of {', '.join(SELECTORS)}")
        out[name] = _FACTORIES[name]
    return out
