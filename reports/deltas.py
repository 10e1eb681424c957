"""Differences between rows, at two levels: each table row against the table's reference row and the floor.

For a quality column (e.g. validation PSNR) and a row R compared with a reference row B:

* **image level** (test-set uncertainty of these trained weights): Δ is the mean over the images both rows
  scored of ``R(image) - B(image)`` (each image first averaged over seeds), with a bootstrap CI of that mean
  and a paired permutation p-value (:func:`reports.statistics.paired_difference`).  A CI that excludes 0 says
  the difference is unlikely to come from the choice of test images, for these trained weights;
* **seed level** (does it hold when the training is repeated?): R - B on the per-seed means, a Welch or paired
  t-test with its interval, Holm-adjusted over every seed-level Δ of the table, and the probability of
  improvement (:mod:`reports.seed_level`);
* the **verdict** (:func:`verdict`): ``holds across seeds`` / ``these weights only`` / ``tied``.

Two sets per table: against the table's reference (``report.table1_reference`` for Table 1,
``report.table2_reference`` for Tables 2, 3 and 4), CSV prefix ``delta_``; and, for every ranked (trained or
published) row, against the do-nothing floor (``report.floor_reference``, default ``identity``), prefix
``floor_delta_``.  A reference missing from the reported runs gives no Δ columns and a note, never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd

from reports.per_image import HIGHER_IS_BETTER, PerImage, matched
from reports.seed_level import SeedSource, holm, seed_difference
from reports.settings import ReportSettings
from reports.statistics import BootstrapSettings, paired_difference

SUFFIXES = ("", "_ci_low", "_ci_high", "_n", "_p", "_excludes_0")
SEED_SUFFIXES = ("_seed", "_seed_ci_low", "_seed_ci_high", "_seed_p", "_seed_p_holm", "_p_better")
REFERENCE, NOT_COMPARED = "reference", "not compared"
HOLDS, WEIGHTS_ONLY, TIED, NO_VALUE = "holds across seeds", "these weights only", "tied", "n/a"


@dataclass(frozen=True)
class DeltaSet:
    """One set of Δ columns: CSV prefix (``delta``/``floor_delta``), the reference experiment, who is compared."""

    prefix: str
    reference: str
    ranked_only: bool  # the floor set compares trained/published rows only

    @property
    def title(self) -> str:
        return f"Δ vs {self.reference}"


def available_references(results: pd.DataFrame, per_image: PerImage) -> set[str]:
    """Experiments that can serve as a reference: finished, with per-image metrics stored."""
    done = set(results.loc[results["status"] == "done", "experiment"])
    return done & set(per_image.frame["experiment"])


def delta_sets(reference: Optional[str], floor: Optional[str], available: set[str],
               role: str) -> tuple[list[DeltaSet], list[str]]:
    """The Δ sets a table gets (``role``: e.g. ``report.table1_reference``) and a note for each one left out."""
    sets, notes = [], []
    for prefix, name, key, ranked_only in (("delta", reference, role, False),
                                           ("floor_delta", floor, "report.floor_reference", True)):
        if name is None:
            notes.append(f"No Δ against a {'floor' if ranked_only else 'reference'} row: {key} is null.")
        elif name not in available:
            notes.append(f"No Δ vs {name}: {key} names {name!r}, which is not a finished experiment with per-image "
                         f"metrics in the reported run(s).")
        elif not (ranked_only and sets and sets[0].reference == name):
            sets.append(DeltaSet(prefix, name, ranked_only))
    return sets, notes


def delta_record(values: pd.Series, reference: pd.Series, settings: BootstrapSettings) -> dict[str, float]:
    """Image-level Δ of one cell: ``{"": estimate, "_ci_low", "_ci_high", "_n", "_p", "_excludes_0", "_note"}``."""
    comparison = paired_difference(*matched(values, reference), settings)
    d = comparison.difference
    return {"": d.estimate, "_ci_low": d.low, "_ci_high": d.high, "_n": d.n, "_p": comparison.p_value,
            "_excludes_0": comparison.significant, "_note": d.reason}


def seed_record(seeds: SeedSource, experiment: str, reference: str, split: str, metric: str,
                confidence: float) -> dict[str, float | str]:
    """Seed-level Δ of one cell (``_seed*`` and ``_p_better``; ``_seed_p_holm`` is filled per table later)."""
    c = seed_difference(seeds.means(experiment, split, metric), seeds.means(reference, split, metric),
                        paired_seeds=seeds.paired(experiment, reference), confidence=confidence,
                        higher_is_better=HIGHER_IS_BETTER[metric])
    return {"_seed": c.estimate, "_seed_ci_low": c.low, "_seed_ci_high": c.high, "_seed_p": c.p_value,
            "_seed_p_holm": math.nan, "_seed_test": c.test, "_seed_n_row": c.n_row, "_seed_n_ref": c.n_ref,
            "_seed_note": c.reason, "_p_better": c.p_better}


def _empty_record(note: str) -> dict[str, float | str]:
    return ({s: math.nan for s in SUFFIXES + SEED_SUFFIXES}
            | {"_excludes_0": False, "_n": 0, "_note": note, "_seed_test": "", "_seed_n_row": 0, "_seed_n_ref": 0,
               "_seed_note": "", "_verdict": ""})


def verdict(record: dict, min_seeds: int, confidence: float) -> str:
    """``holds across seeds``: both rows have ``min_seeds`` seeds, the Holm-adjusted seed-level p is below
    1 - ``confidence``, the image-level CI excludes 0 and both levels agree on the sign; ``these weights only``:
    the image-level CI excludes 0 but the rest does not hold; ``tied``: the image-level CI contains 0 (or none);
    ``n/a``: no value to compare (e.g. LPIPS without its weights)."""
    if not math.isfinite(record[""]):
        return NO_VALUE
    if not record["_excludes_0"]:
        return TIED
    enough = min(record["_seed_n_row"], record["_seed_n_ref"]) >= min_seeds
    p = record["_seed_p_holm"]
    same_sign = math.copysign(1.0, record["_seed"]) == math.copysign(1.0, record[""])
    return HOLDS if enough and math.isfinite(p) and p < 1.0 - confidence and same_sign else WEIGHTS_ONLY


def delta_columns(rows: pd.DataFrame, keys: Sequence[tuple[str, str, str]], sets: Sequence[DeltaSet],
                  per_image: PerImage, seeds: SeedSource, settings: ReportSettings) -> pd.DataFrame:
    """Every Δ column of one table for ``rows`` (index: label; columns ``experiment``, ``ranked``).

    ``keys``: ``(column key, split, metric)`` of each quality column.  Returns columns
    ``<prefix>_<key><suffix>``: the image-level Δ, the seed-level Δ (Holm-adjusted over every seed-level Δ of
    the table: the family), the probability of improvement, ``_note`` (``reference`` / ``not compared`` / why
    n/a) and ``_verdict``.
    """
    records: dict[tuple[str, str], dict] = {}
    for delta in sets:
        for label, row in rows.iterrows():
            for key, split, metric in keys:
                if row["experiment"] == delta.reference:
                    record = _empty_record(REFERENCE)
                elif delta.ranked_only and not row["ranked"]:
                    record = _empty_record(NOT_COMPARED)
                else:
                    record = delta_record(per_image.values(row["experiment"], split, metric),
                                          per_image.values(delta.reference, split, metric), settings.bootstrap)
                    record |= seed_record(seeds, row["experiment"], delta.reference, split, metric,
                                          settings.bootstrap.confidence)
                records[(label, f"{delta.prefix}_{key}")] = record
    _adjust_and_judge(list(records.values()), settings)
    flat = {label: {} for label in rows.index}
    for (label, name), record in records.items():
        flat[label].update({name + suffix: value for suffix, value in record.items()})
    return pd.DataFrame.from_dict(flat, orient="index")


def _adjust_and_judge(records: list[dict], settings: ReportSettings) -> None:
    """Holm over every seed-level p of the table, then each compared record's verdict."""
    compared = [r for r in records if r["_note"] not in (REFERENCE, NOT_COMPARED)]
    for record, adjusted in zip(compared, holm([r["_seed_p"] for r in compared])):
        record["_seed_p_holm"] = adjusted
        record["_verdict"] = verdict(record, settings.min_seeds, settings.bootstrap.confidence)
