"""Confidence intervals and paired comparisons for the report, computed with :mod:`scipy.stats`.

Every interval is a bootstrap interval over independent units: images for the quality metrics (each image
averaged over seeds first), timing rounds for the times.  The resampling is seeded, so the same numbers always
give the same report.

* :func:`mean_interval`: the mean of per-image values with its BCa bootstrap CI;
* :func:`paired_difference`: the mean of per-image differences ``a - b`` with its BCa bootstrap CI and a paired
  permutation p-value (random sign flips of the differences; exact when ``2**n`` is at most the resamples);
* :func:`median_ratio_interval`: the median of per-round ratios ``a / b`` with its percentile bootstrap CI
  (BCa is ill-behaved for a median of a few rounds).

Degenerate inputs (no value, one value, a value that is not finite, zero variance) give an :class:`Interval`
whose bounds are NaN and whose ``reason`` says why, never an exception and never a made-up interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.stats

BCA = "BCa"
ZERO_VARIANCE = "zero variance"
PERCENTILE = "percentile"


@dataclass(frozen=True)
class BootstrapSettings:
    """How every interval is computed: level in [0.5, 1), resamples, and the seed of the resampling.

    A report's come from its ``report:`` section (:class:`reports.settings.ReportConfig`, where the defaults are).
    """

    confidence: float
    resamples: int
    seed: int

    def describe(self) -> str:
        """E.g. ``95 % CI (bootstrap, 2000 resamples, seed 0)``."""
        return f"{self.percent} % CI (bootstrap, {self.resamples} resamples, seed {self.seed})"

    @property
    def percent(self) -> str:
        """The level as a percentage without trailing zeros: ``95``, ``99.9``."""
        return f"{self.confidence * 100:.6g}"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval from ``n`` units.

    ``low``/``high`` are NaN where no interval can be given; ``reason`` then says why (e.g. ``one image``).
    ``estimate`` is NaN only when the values themselves are unknown (NaN) or there are none.
    """

    estimate: float
    low: float
    high: float
    n: int
    reason: str = ""

    @property
    def defined(self) -> bool:
        """True when both bounds are finite numbers."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def excludes(self, value: float) -> bool:
        """True when the interval is defined and ``value`` lies outside it."""
        return self.defined and (self.low > value or self.high < value)

    def wholly_above(self, value: float) -> bool:
        """The interval is defined and lies wholly above ``value`` (undefined, e.g. zero variance: False)."""
        return self.defined and self.low > value

    def wholly_below(self, value: float) -> bool:
        """The interval is defined and lies wholly below ``value``."""
        return self.defined and self.high < value


@dataclass(frozen=True)
class Comparison:
    """A paired comparison ``a - b`` over ``difference.n`` matched units, with a permutation p-value (NaN if none)."""

    difference: Interval
    p_value: float

    @property
    def significant(self) -> bool:
        """True when the CI of the difference is defined and excludes 0."""
        return self.difference.excludes(0.0)


def degenerate_reason(values: np.ndarray, unit: str = "image") -> str:
    """Why ``values`` (1-D) admit no bootstrap interval, or ``""`` when they do."""
    if values.size == 0:
        return f"no {unit}s"
    if not np.isfinite(values).all():
        article = "an" if unit[:1] in "aeiou" else "a"
        return "not a finite number" if np.isnan(values).all() else f"{article} {unit} without a finite value"
    if values.size == 1:
        return f"one {unit}"
    if np.ptp(values) == 0.0:
        return ZERO_VARIANCE
    return ""


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def _bootstrap(values: np.ndarray, statistic: Callable, settings: BootstrapSettings, method: str) -> tuple[float, float]:
    """The two bounds of scipy's bootstrap CI of ``statistic`` over ``values`` (NaN where scipy gives none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on degenerate resamples; a NaN bound says it here
        result = scipy.stats.bootstrap((values,), statistic, n_resamples=settings.resamples, vectorized=True,
                                       confidence_level=settings.confidence, method=method, rng=settings.seed)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _interval(values: np.ndarray, statistic: Callable, settings: BootstrapSettings, method: str, unit: str) -> Interval:
    values = np.asarray(values, dtype=np.float64).ravel()
    reason = degenerate_reason(values, unit)
    estimate = float(statistic(values)) if values.size and not np.isnan(values).any() else math.nan
    if reason:
        return Interval(estimate, math.nan, math.nan, int(values.size), reason)
    low, high = _bootstrap(values, statistic, settings, method)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Interval(estimate, math.nan, math.nan, int(values.size), "bootstrap degenerate")
    return Interval(estimate, low, high, int(values.size))


def mean_interval(values: np.ndarray, settings: BootstrapSettings, unit: str = "image") -> Interval:
    """The mean of ``values`` (1-D, one per independent unit) and its BCa bootstrap CI."""
    return _interval(values, _mean, settings, BCA, unit)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a - b, axis=axis)


def permutation_p_value(a: np.ndarray, b: np.ndarray, settings: BootstrapSettings) -> float:
    """Two-sided p-value of the paired permutation test of ``mean(a - b) = 0`` (``a``, ``b``: matched 1-D)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = scipy.stats.permutation_test((a, b), _mean_difference, permutation_type="samples", vectorized=True,
                                              n_resamples=settings.resamples, rng=settings.seed)
    return float(result.pvalue)


def paired_difference(a: np.ndarray, b: np.ndarray, settings: BootstrapSettings, unit: str = "image") -> Comparison:
    """``mean(a - b)`` over matched units (``a[i]`` and ``b[i]`` measured on the same unit) with CI and p-value."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must match one to one, got {a.size} and {b.size}")
    difference = mean_interval(a - b, settings, unit)
    p_value = permutation_p_value(a, b, settings) if difference.defined else math.nan
    return Comparison(difference, p_value)


def median_ratio_interval(a: np.ndarray, b: np.ndarray, settings: BootstrapSettings, unit: str = "round") -> Interval:
    """The median of the matched ratios ``a[i] / b[i]`` (positive times of one round) and its percentile CI."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must match one to one, got {a.size} and {b.size}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a / b
    return _interval(ratios, _median, settings, PERCENTILE, unit)
