"""Which rows of a column are marked best: alone only when the lead is significant, otherwise a shared tie.

The rule, the same for every column: order the candidate rows by their value; the leader is marked ``best``
alone only when it is significantly ahead of *every* other candidate (for the quality metrics: the paired
bootstrap CI of the per-image difference excludes 0; for time: see :mod:`reports.timing_phases`).  Otherwise
the leader and every row it is not significantly ahead of are marked ``tied``.  Fewer than two candidates:
no mark.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from reports.per_image import matched
from reports.statistics import BootstrapSettings, mean_interval

BEST = "best"
TIED = "tied"


def marks(order: Sequence[str], clearly_ahead: Callable[[str, str], bool]) -> dict[str, str]:
    """Marks for candidates ``order``ed best first; ``clearly_ahead(leader, other)``: is the lead significant?"""
    if len(order) < 2:
        return {}
    leader = order[0]
    tied = [other for other in order[1:] if not clearly_ahead(leader, other)]
    if not tied:
        return {leader: BEST}
    return {label: TIED for label in (leader, *tied)}


def metric_marks(samples: Mapping[str, pd.Series], higher_is_better: bool, settings: BootstrapSettings) -> dict[str, str]:
    """Marks for one metric column from each candidate row's per-image values (indexed by scene id).

    Rows without values, or with a mean that is not a finite number (e.g. LPIPS without weights), are not
    candidates.  A lead is significant when the CI of the mean per-image difference leader - other (over the
    images both rows hold) excludes 0 on the leader's side; no CI (e.g. zero variance): no significant lead.
    """
    means = {label: float(np.mean(s.to_numpy(np.float64))) for label, s in samples.items() if len(s)}
    candidates = [label for label, mean in means.items() if math.isfinite(mean)]
    order = sorted(candidates, key=lambda label: -means[label] if higher_is_better else means[label])

    def clearly_ahead(leader: str, other: str) -> bool:
        a, b = matched(samples[leader], samples[other])
        difference = mean_interval(a - b, settings)  # the CI of paired_difference, without its p-value
        return difference.wholly_above(0.0) if higher_is_better else difference.wholly_below(0.0)

    return marks(order, clearly_ahead)


def exact_marks(values: Mapping[str, float], relative_tolerance: float = 1e-9) -> dict[str, str]:
    """Marks for a column without noise (parameters, GFLOPs): the lowest value; equal values tie."""
    finite = {label: v for label, v in values.items() if math.isfinite(v)}
    order = sorted(finite, key=finite.__getitem__)
    return marks(order, lambda leader, other: not math.isclose(finite[leader], finite[other], rel_tol=relative_tolerance))
