"""Seed-level statistics: what varies when the *training* is repeated, not only the test images.

A row of a table trained with k seeds has k per-seed means (each seed's mean over the split's images, the
metric columns of ``results.csv``).  These are the independent units of a claim about an architecture:

* :func:`seed_interval`: the mean of the per-seed means with its Student t-interval
  (``scipy.stats.ttest_1samp(...).confidence_interval``), from :data:`SEED_LEVEL_MIN` seeds on;
* :func:`seed_difference`: row - reference on the per-seed means, a Welch t-test
  (``scipy.stats.ttest_ind(..., equal_var=False)``) or, where the seeds are paired (same model, same
  initialisation and data order: see :func:`paired`), a paired t-test (``scipy.stats.ttest_rel``), each with
  its confidence interval and two-sided p-value;
* :func:`probability_of_improvement`: P(row better than reference) = U / (n_row n_ref) over the seed means
  (Mann-Whitney U; ties count one half), descriptive only: no interval is given below 10 seeds;
* :func:`holm`: Holm's step-down adjustment of a family of p-values.

A bootstrap over 3 to 5 seeds is never used: its interval cannot leave the range of the seed means and covers
far less than it claims.  Degenerate inputs (too few seeds, zero variance) give NaN bounds and a ``reason``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.stats

from reports.statistics import Interval, degenerate_reason

SEED_LEVEL_MIN = 3   # seeds per row before a seed-level interval or test is given
WELCH, PAIRED = "welch", "paired"
TEST_WORDS = {WELCH: "Welch t-test, unpaired", PAIRED: "paired t-test"}


@dataclass(frozen=True)
class SeedComparison:
    """Row - reference over per-seed means: estimate, t-interval, two-sided p, which test, seed counts,
    the probability of improvement, and why there is no test (``reason``, empty when there is one)."""

    estimate: float
    low: float
    high: float
    p_value: float
    test: str
    n_row: int
    n_ref: int
    p_better: float
    reason: str = ""

    @property
    def defined(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high) and math.isfinite(self.p_value)


def _values(seed_means: Mapping[int, float]) -> np.ndarray:
    return np.array([seed_means[s] for s in sorted(seed_means)], dtype=np.float64)


def seed_interval(seed_means: Mapping[int, float], confidence: float) -> Interval:
    """The mean of the per-seed means ``{seed: value}`` and its t-interval (NaN bounds below 3 seeds)."""
    values = _values(seed_means)
    estimate = float(values.mean()) if values.size and np.isfinite(values).all() else math.nan
    reason = degenerate_reason(values, "seed")
    if not reason and values.size < SEED_LEVEL_MIN:
        reason = f"{values.size} seeds (a seed-level interval needs {SEED_LEVEL_MIN})"
    if reason:
        return Interval(estimate, math.nan, math.nan, int(values.size), reason)
    ci = scipy.stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return Interval(estimate, float(ci.low), float(ci.high), int(values.size))


def probability_of_improvement(row: Sequence[float], reference: Sequence[float], higher_is_better: bool) -> float:
    """P(a seed of ``row`` beats a seed of ``reference``) = U / (n_row n_ref); ties count 1/2; NaN if empty."""
    a, b = np.asarray(row, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan
    better, worse = (a, b) if higher_is_better else (b, a)
    return float(scipy.stats.mannwhitneyu(better, worse).statistic) / (a.size * b.size)


def _no_test(estimate: float, test: str, n_row: int, n_ref: int, p_better: float, reason: str) -> SeedComparison:
    return SeedComparison(estimate, math.nan, math.nan, math.nan, test, n_row, n_ref, p_better, reason)


def seed_difference(row: Mapping[int, float], reference: Mapping[int, float], *, paired_seeds: bool,
                    confidence: float, higher_is_better: bool) -> SeedComparison:
    """Row - reference over the per-seed means ``{seed: value}`` of each.

    ``paired_seeds``: the two rows share model, initialisation and data order per seed; the test is then paired
    when both hold the same seeds, else Welch.  Below :data:`SEED_LEVEL_MIN` seeds in either row, or with no
    variance to test, no interval or p is given (``reason`` says why); the estimate is the difference of means.
    """
    a, b = _values(row), _values(reference)
    paired = paired_seeds and sorted(row) == sorted(reference)
    test = PAIRED if paired else WELCH
    finite = a.size and b.size and np.isfinite(a).all() and np.isfinite(b).all()
    estimate = float(a.mean() - b.mean()) if finite else math.nan
    p_better = probability_of_improvement(a, b, higher_is_better)
    if not finite:
        return _no_test(estimate, test, a.size, b.size, p_better, "no finite per-seed means")
    if min(a.size, b.size) < SEED_LEVEL_MIN:
        return _no_test(estimate, test, a.size, b.size, p_better,
                        f"{min(a.size, b.size)} seed{'s' if min(a.size, b.size) != 1 else ''} in a row "
                        f"(the seed-level test needs {SEED_LEVEL_MIN} in both)")
    spread = np.ptp(a - b) if paired else max(np.ptp(a), np.ptp(b))
    if spread == 0.0:
        return _no_test(estimate, test, a.size, b.size, p_better, "zero variance over seeds")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # precision warnings on nearly equal seeds; the numbers stand
        result = scipy.stats.ttest_rel(a, b) if paired else scipy.stats.ttest_ind(a, b, equal_var=False)
        ci = result.confidence_interval(confidence)
    return SeedComparison(estimate, float(ci.low), float(ci.high), float(result.pvalue), test, int(a.size),
                          int(b.size), p_better)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given; NaN entries stay NaN and are not counted.

    With the m finite p-values sorted ascending, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def paired(model_a: str, model_b: str, pairs_a: str, pairs_b: str) -> bool:
    """Whether two rows' seeds are paired: the same model (and arguments) trained on the same training pairs.

    ``model_*``: the model with its arguments as one string; ``pairs_*``: the training pairs (extra-data
    strategies).  Anything else (another model, other pairs, an unknown row): unpaired.
    """
    return bool(model_a) and model_a == model_b and bool(pairs_a) and pairs_a == pairs_b


@dataclass
class SeedSource:
    """The per-seed means of every finished row (``results``: result rows as the report reads them) and which
    experiments share initialisation and data order per seed (``pairing``: experiment -> (model with its
    arguments, training pairs); an experiment missing there is paired with none)."""

    results: pd.DataFrame
    pairing: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def means(self, experiment: str, split: str, metric: str) -> dict[int, float]:
        """``{seed: mean over the split's images}`` of ``experiment``'s finished seeds (NaN where unknown)."""
        rows = self.results[(self.results["experiment"] == experiment) & (self.results["status"] == "done")
                            & (self.results["split"] == split)]
        if rows.empty or metric not in rows:
            return {}
        values = pd.to_numeric(rows[metric], errors="coerce")
        return {int(seed): float(value) for seed, value in zip(rows["seed"], values)}

    def paired(self, a: str, b: str) -> bool:
        """Whether experiments ``a`` and ``b`` are paired seed by seed (see :func:`paired`)."""
        model_a, pairs_a = self.pairing.get(a, ("", ""))
        model_b, pairs_b = self.pairing.get(b, ("", ""))
        return paired(model_a, model_b, pairs_a, pairs_b)
