"""The search space of ``tune.space`` as Optuna distributions, one space for every experiment.

``lr``: log-uniform over [low, high]; ``schedule``: a choice among the listed schedules; ``warmup_steps``: a
whole number, uniform over [low, high].  A setting left null is not searched (the shared ``train:`` value).
"""

from __future__ import annotations

import math
from typing import Any

from bench.harness.config.schema import SpaceConfig


def distributions(space: SpaceConfig) -> dict[str, Any]:
    """``{train key: optuna distribution}`` of the settings ``space`` searches, in a fixed order."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, Any] = {}
    if space.lr is not None:
        found["lr"] = FloatDistribution(float(space.lr.low), float(space.lr.high), log=True)
    if space.schedule is not None:
        found["schedule"] = CategoricalDistribution(list(space.schedule))
    if space.warmup_steps is not None:
        found["warmup_steps"] = IntDistribution(int(space.warmup_steps.low), int(space.warmup_steps.high))
    return found


def describe(space: SpaceConfig) -> str:
    """The space in words, for the report and the tuned file: ``lr log-uniform in [3e-05, 0.003]``."""
    parts = []
    if space.lr is not None:
        parts.append(f"lr log-uniform in [{space.lr.low:g}, {space.lr.high:g}]")
    if space.schedule is not None:
        parts.append(f"schedule one of {', '.join(space.schedule)}")
    if space.warmup_steps is not None:
        parts.append(f"warmup_steps a whole number in [{space.warmup_steps.low}, {space.warmup_steps.high}]")
    return "; ".join(parts)


def outside(values: dict[str, Any], space: SpaceConfig) -> str | None:
    """Why ``values`` (train key -> value) do not lie in ``space``, or None when they do."""
    searched = distributions(space)
    for key, value in values.items():
        if key not in searched:
            return f"{key} is not searched by tune.space ({describe(space) or 'nothing'})"
        if key == "schedule":
            if value not in space.schedule:
                return f"schedule {value!r} is not one of {', '.join(space.schedule)}"
            continue
        bounds = getattr(space, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            return f"{key} {value!r} is not a number"
        if key == "warmup_steps" and not float(value).is_integer():
            return f"warmup_steps {value!r} is not a whole number"
        if not bounds.low <= value <= bounds.high:
            return f"{key} {value!r} lies outside [{bounds.low:g}, {bounds.high:g}]"
    return None
