"""Which rows of a column are marked best: alone only when the lead is significant, otherwise a shared tie.

The rule, the same for every column: order the candidate rows by their value; the leader is marked ``best``
alone only when it is significantly ahead of *every* other candidate, otherwise the leader and every row it is
not significantly ahead of are marked ``tied``.  Fewer than two candidates: no mark.

"Significantly ahead", for the quality metrics: the image-level CI of the paired per-image difference
excludes 0 on the leader's side and, when both rows have ``report.min_seeds`` seeds, so does the seed-level
t-interval of the difference of their per-seed means (:mod:`reports.seed_level`).  Each pair is judged at the
unadjusted level: "best" claims the leader beats *every* other row, an intersection of the pairwise claims,
which needs no correction for multiplicity.  For time: see :mod:`reports.timing_phases`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from reports.per_image import matched
from reports.seed_level import seed_difference
from reports.settings import ReportSettings
from reports.statistics import mean_interval

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


@dataclass(frozen=True)
class Candidate:
    """A row competing for a quality column's mark: its experiment, per-image values (indexed by scene id,
    seed-averaged) and per-seed means ``{seed: value}``."""

    experiment: str
    images: pd.Series
    seeds: Mapping[int, float]


def metric_marks(candidates: Mapping[str, Candidate], higher_is_better: bool, settings: ReportSettings,
                 paired: Callable[[str, str], bool] = lambda a, b: False) -> dict[str, str]:
    """Marks for one metric column (``candidates``: label -> :class:`Candidate`; ``paired(exp_a, exp_b)``:
    whether two experiments' seeds are paired).

    Rows without values, or with a mean that is not a finite number (e.g. LPIPS without weights), are not
    candidates.  A lead is significant when the CI of the mean per-image difference leader - other (over the
    images both rows hold) excludes 0 on the leader's side (no CI, e.g. zero variance: not significant) and,
    where both rows have ``settings.min_seeds`` seeds, the seed-level interval does too.
    """
    samples = {label: c.images for label, c in candidates.items()}
    means = {label: float(np.mean(s.to_numpy(np.float64))) for label, s in samples.items() if len(s)}
    order = sorted([label for label, mean in means.items() if math.isfinite(mean)],
                   key=lambda label: -means[label] if higher_is_better else means[label])

    def clearly_ahead(leader: str, other: str) -> bool:
        a, b = matched(samples[leader], samples[other])
        image_level = mean_interval(a - b, settings.bootstrap)  # the CI of paired_difference, without its p-value
        if not (image_level.wholly_above(0.0) if higher_is_better else image_level.wholly_below(0.0)):
            return False
        first, second = candidates[leader], candidates[other]
        if min(len(first.seeds), len(second.seeds)) < settings.min_seeds:
            return True
        seed_level = seed_difference(first.seeds, second.seeds, paired_seeds=paired(first.experiment, second.experiment),
                                     confidence=settings.bootstrap.confidence, higher_is_better=higher_is_better)
        return seed_level.defined and (seed_level.low > 0.0 if higher_is_better else seed_level.high < 0.0)

    return marks(order, clearly_ahead)


def exact_marks(values: Mapping[str, float], relative_tolerance: float = 1e-9) -> dict[str, str]:
    """Marks for a column without noise (parameters, GFLOPs): the lowest value; equal values tie."""
    finite = {label: v for label, v in values.items() if math.isfinite(v)}
    order = sorted(finite, key=finite.__getitem__)
    return marks(order, lambda leader, other: not math.isclose(finite[leader], finite[other], rel_tol=relative_tolerance))
