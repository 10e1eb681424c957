"""Paired differences per image: each table row against the table's reference row and against the floor.

For a quality column (e.g. validation PSNR) and a row R compared with a reference row B, Δ is the mean over the
images both rows scored of ``R(image) - B(image)`` (each image first averaged over seeds), with a bootstrap CI
of that mean and a paired permutation p-value (:func:`reports.statistics.paired_difference`).  A CI that
excludes 0 says the difference is unlikely to be image-sampling noise.

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

from reports.per_image import PerImage, matched
from reports.statistics import BootstrapSettings, paired_difference

SUFFIXES = ("", "_ci_low", "_ci_high", "_n", "_p", "_excludes_0")
REFERENCE, NOT_COMPARED = "reference", "not compared"


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
    """Δ of one cell: ``{"": estimate, "_ci_low": ..., "_ci_high": ..., "_n": ..., "_p": ..., "_excludes_0": ...}``."""
    comparison = paired_difference(*matched(values, reference), settings)
    d = comparison.difference
    return {"": d.estimate, "_ci_low": d.low, "_ci_high": d.high, "_n": d.n, "_p": comparison.p_value,
            "_excludes_0": comparison.significant, "_note": d.reason}


def delta_columns(rows: pd.DataFrame, keys: Sequence[tuple[str, str, str]], sets: Sequence[DeltaSet],
                  per_image: PerImage, settings: BootstrapSettings) -> pd.DataFrame:
    """Every Δ column for ``rows`` (index: label; columns ``experiment``, ``ranked``).

    ``keys``: ``(column key, split, metric)`` of each quality column.  Returns columns
    ``<prefix>_<key><suffix>`` and ``<prefix>_<key>_note`` (``reference`` / ``not compared`` / why n/a).
    """
    records = {label: {} for label in rows.index}
    for delta in sets:
        for label, row in rows.iterrows():
            for key, split, metric in keys:
                name = f"{delta.prefix}_{key}"
                record = {s: math.nan for s in SUFFIXES} | {"_excludes_0": False, "_n": 0}
                if row["experiment"] == delta.reference:
                    record["_note"] = REFERENCE
                elif delta.ranked_only and not row["ranked"]:
                    record["_note"] = NOT_COMPARED
                else:
                    record = delta_record(per_image.values(row["experiment"], split, metric),
                                          per_image.values(delta.reference, split, metric), settings)
                records[label].update({name + suffix: value for suffix, value in record.items()})
    return pd.DataFrame.from_dict(records, orient="index")
