"""Recompute the numbers of a published relight-bench report from its raw files alone, and compare.

    python recompute.py [PUBLISHED_DIR]      (default: the folder this script lies in)

A standalone script: Python 3.9+, numpy, pandas and SciPy 1.15+ (whose seeded resampling, ``rng=``, the report
used), nothing of relight-bench.  ``bench publish`` copies
it next to ``raw/`` (the run's files) and ``tables/`` (the report's numbers).  For every table
``tables/<name>.csv`` (settings in ``tables/<name>.json``: "bootstrap" {confidence, resamples, seed} and
"references" {prefix: experiment}), every row and every quality column ``<split>_<metric>`` (val_psnr, ...):

* a seed's mean is the ``<metric>`` of its row in raw/results.csv (status done); an image's value is the mean
  over the row's seeds of raw/<experiment>/seed<k>/metrics_<split>.csv (NaN in any seed: NaN);
* ``<key>_mean``, ``_n``: mean over images, number of images; ``_ci_low``/``_ci_high``: BCa bootstrap CI of that
  mean (none for fewer than 2 images, a non-finite value or zero variance);
* ``<key>_seed_mean``, ``_seed_std`` (ddof 1), ``_seeds``: over the seeds' means that have a value;
  ``_seed_ci_low``/``_high``: the t-interval of their mean (``scipy.stats.ttest_1samp``; 3 seeds or more, not
  all equal);
* Δ ``<prefix>_<key>`` (prefix delta or floor_delta) against the reference row: the mean over the scenes both
  rows hold of (row - reference), its BCa CI, ``_n``, the paired permutation p-value ``_p`` and ``_excludes_0``;
  on the seeds' means (every seed with a value, else none of these): ``_seed`` = mean(row) - mean(reference),
  ``_seed_ci_low``/``_high`` and ``_seed_p`` of the t-test ``_seed_test`` names (paired: ``ttest_rel`` seed by
  seed; welch: ``ttest_ind(equal_var=False)``; 3 seeds or more in both rows, some variance),
  ``_p_better`` = Mann-Whitney U / (n_row n_ref) (the chance that a seed of the row beats one of the
  reference; lower is better for LPIPS), ``_seed_n_row``/``_ref`` and ``_seed_p_holm`` (Holm over every
  seed-level p of the table).

It prints one line per checked group of numbers and a summary.  Exit status: 0 when every number agrees
within 1e-9 relative (1e-12 absolute near zero), 1 on any mismatch, 2 when the folder is not a publish.
Columns a table does not have (older reports) are skipped with a note; so are rows scored from published
images (their images are not in raw/).  Times, parameters, GFLOPs and the best/tied marks are not checked.
"""

from __future__ import annotations

import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

REL_TOL, ABS_TOL = 1e-9, 1e-12
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mps": True, "lpips": False}
QUALITY_KEY = re.compile(r"(val|test)_(psnr|ssim|lpips|mps)")
SKIPPED_NOTES = ("reference", "not compared")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # an experiment name as `bench run` allows it (a folder of raw/)


class Raw:
    """The published run's files: seeds' means from results.csv, per-image values from metrics_<split>.csv."""

    def __init__(self, raw: Path) -> None:
        self.raw = raw
        results = pd.read_csv(raw / "results.csv", dtype={"experiment": str, "split": str, "status": str})
        self.done = results[results["status"] == "done"]
        self.experiments = set(results["experiment"])

    def seed_means(self, experiment: str, split: str, metric: str, keep_missing: bool = False) -> pd.Series:
        """Each finished seed's mean over images (indexed by seed); seeds without a value left out unless
        ``keep_missing``."""
        rows = self.done[(self.done["experiment"] == experiment) & (self.done["split"] == split)]
        means = pd.to_numeric(rows[metric], errors="coerce").set_axis(rows["seed"].astype(int).to_numpy())
        return means if keep_missing else means.dropna()

    def per_image(self, experiment: str, split: str, metric: str) -> pd.Series:
        """Each scene's value averaged over the finished seeds that scored it (NaN in any seed: NaN), by scene id."""
        rows = self.done[(self.done["experiment"] == experiment) & (self.done["split"] == split)]
        frames = []
        if not NAME.fullmatch(experiment):  # never a path outside raw/
            rows = rows.iloc[:0]
        for seed in rows["seed"].astype(int):
            path = self.raw / experiment / f"seed{seed}" / f"metrics_{split}.csv"
            if path.is_file():
                frames.append(pd.read_csv(path, dtype={"scene_id": str}))
        if not frames:
            return pd.Series(dtype=np.float64)
        long = pd.concat(frames, ignore_index=True)
        long["scene_id"] = long["scene_id"].str.strip()
        values = pd.to_numeric(long[metric], errors="coerce").astype(np.float64)
        means = values.groupby(long["scene_id"]).mean()
        unknown = values.isna().groupby(long["scene_id"]).any()
        return means.mask(unknown).sort_index()


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def bootstrap_ci(values: np.ndarray, boot: dict) -> tuple[float, float]:
    """The BCa bootstrap CI of the mean of ``values``; NaN bounds for <2 values, a non-finite one, zero variance."""
    if values.size < 2 or not np.isfinite(values).all() or np.ptp(values) == 0.0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = scipy.stats.bootstrap((values,), _mean, n_resamples=boot["resamples"], vectorized=True,
                                   confidence_level=boot["confidence"], method="BCa", rng=boot["seed"]).confidence_interval
    low, high = float(ci.low), float(ci.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else (math.nan, math.nan)


def mean_or_nan(values: np.ndarray) -> float:
    """The mean, NaN when there is no value or one is unknown."""
    return float(np.mean(values)) if values.size and not np.isnan(values).any() else math.nan


def quality_numbers(raw: Raw, experiment: str, key: str, boot: dict) -> dict[str, float]:
    """Every number of the quality cell ``key`` (e.g. val_psnr) of one row, by CSV column."""
    split, metric = key.split("_", 1)
    values = raw.per_image(experiment, split, metric).to_numpy(np.float64)
    seeds = raw.seed_means(experiment, split, metric)
    if values.size:
        low, high = bootstrap_ci(values, boot)
        out = {"_mean": mean_or_nan(values), "_ci_low": low, "_ci_high": high, "_n": values.size}
    else:  # no per-image files: the mean of the seeds' means, without an interval
        rows = raw.done[(raw.done["experiment"] == experiment) & (raw.done["split"] == split)]
        all_seeds = pd.to_numeric(rows[metric], errors="coerce")
        known = bool(all_seeds.notna().any() and all_seeds.notna().all())
        out = {"_mean": float(all_seeds.mean()) if known else math.nan, "_ci_low": math.nan, "_ci_high": math.nan,
               "_n": 0}
    out |= {"_seed_mean": float(seeds.mean()) if len(seeds) else math.nan,
            "_seed_std": float(seeds.std(ddof=1)) if len(seeds) > 1 else math.nan, "_seeds": len(seeds),
            "_seed_ci_low": math.nan, "_seed_ci_high": math.nan}
    if len(seeds) >= 3 and np.ptp(seeds.to_numpy()) > 0:  # 3 seeds or more, not all equal
        ci = scipy.stats.ttest_1samp(seeds.to_numpy(np.float64), 0.0).confidence_interval(boot["confidence"])
        out |= {"_seed_ci_low": float(ci.low), "_seed_ci_high": float(ci.high)}
    return {key + suffix: value for suffix, value in out.items()}


def image_delta(raw: Raw, experiment: str, reference: str, key: str, boot: dict) -> dict[str, float]:
    """Δ over images: the mean of (row - reference) on the scenes both hold, its CI, n, p and whether CI excludes 0."""
    split, metric = key.split("_", 1)
    a, b = raw.per_image(experiment, split, metric), raw.per_image(reference, split, metric)
    common = a.index.intersection(b.index).sort_values()
    x, y = a.loc[common].to_numpy(np.float64), b.loc[common].to_numpy(np.float64)
    low, high = bootstrap_ci(x - y, boot)
    p = math.nan
    if math.isfinite(low):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(scipy.stats.permutation_test((x, y), _mean_difference, permutation_type="samples",
                                                   vectorized=True, n_resamples=boot["resamples"],
                                                   rng=boot["seed"]).pvalue)
    return {"": mean_or_nan(x - y), "_ci_low": low, "_ci_high": high, "_n": x.size, "_p": p,
            "_excludes_0": math.isfinite(low) and (low > 0 or high < 0)}


def seed_delta(raw: Raw, experiment: str, reference: str, key: str, test: str, confidence: float) -> dict[str, float]:
    """Δ over the seeds' means (``test``: paired or welch, as the table names it) and the chance that a seed of
    the row beats one of the reference.  A seed without a value leaves all of it undefined; fewer than 3 seeds
    in a row, or no variance to test, leaves the interval and p undefined."""
    split, metric = key.split("_", 1)
    row = raw.seed_means(experiment, split, metric, keep_missing=True)
    ref = raw.seed_means(reference, split, metric, keep_missing=True)
    out = {"_seed": math.nan, "_seed_ci_low": math.nan, "_seed_ci_high": math.nan, "_seed_p": math.nan,
           "_p_better": math.nan, "_seed_n_row": len(row), "_seed_n_ref": len(ref)}
    if not (len(row) and len(ref)) or row.isna().any() or ref.isna().any():
        return out
    x, y = row.sort_index().to_numpy(np.float64), ref.sort_index().to_numpy(np.float64)
    better, worse = (x, y) if HIGHER_IS_BETTER[metric] else (y, x)
    out["_p_better"] = float(scipy.stats.mannwhitneyu(better, worse).statistic) / (x.size * y.size)
    out["_seed"] = float(x.mean() - y.mean())
    if min(x.size, y.size) < 3:
        return out
    if test == "paired" and list(row.sort_index().index) == list(ref.sort_index().index) and np.ptp(x - y) > 0:
        result = scipy.stats.ttest_rel(x, y)  # seed k of the row against seed k of the reference
    elif test == "welch" and max(np.ptp(x), np.ptp(y)) > 0:
        result = scipy.stats.ttest_ind(x, y, equal_var=False)
    else:
        return out
    ci = result.confidence_interval(confidence)
    return out | {"_seed_ci_low": float(ci.low), "_seed_ci_high": float(ci.high), "_seed_p": float(result.pvalue)}


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: sorted ascending, p_(i) -> max over j <= i of (m - j + 1) p_(j)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [math.nan] * m, 0.0
    for rank, i in enumerate(order, start=1):
        running = max(running, min(1.0, (m - rank + 1) * p_values[i]))
        adjusted[i] = running
    return adjusted


def same(table_value, recomputed) -> bool:
    """Whether a table's cell and the recomputed number agree (both missing counts as agreeing)."""
    if isinstance(recomputed, (bool, np.bool_)):
        return str(table_value).strip().lower() == str(bool(recomputed)).lower()
    try:
        table_number = math.nan if table_value is None else float(table_value)
    except (TypeError, ValueError):  # not a number where one belongs
        return False
    if math.isnan(table_number) or math.isnan(float(recomputed)):
        return math.isnan(table_number) and math.isnan(float(recomputed))
    return math.isclose(table_number, float(recomputed), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def table_groups(raw: Raw, table: pd.DataFrame, settings: dict) -> list[tuple[str, str, dict]]:
    """``(row label, group name, {column: recomputed number})`` for every group of numbers of a table."""
    boot, references = settings["bootstrap"], settings.get("references", {})
    keys = [c[:-5] for c in table.columns if c.endswith("_mean") and QUALITY_KEY.fullmatch(c[:-5])]
    groups, seed_p = [], []
    for _, row in table.iterrows():
        label, experiment = str(row["label"]), str(row["experiment"])
        if str(row.get("extra", "")).strip().lower() == "true" or experiment not in raw.experiments:
            print(f"skip  {label}: scored from published images or not in raw/results.csv")
            continue
        for key in keys:
            groups.append((label, key, quality_numbers(raw, experiment, key, boot)))
        for prefix, reference in references.items():
            for key in keys:
                name = f"{prefix}_{key}"
                if name not in table.columns or str(row.get(f"{name}_note", "")) in SKIPPED_NOTES:
                    continue
                numbers = {name + s: v for s, v in image_delta(raw, experiment, reference, key, boot).items()}
                test = row.get(f"{name}_seed_test")
                test = str(test).strip() if isinstance(test, str) else ""
                if test:  # the table names the seed-level test (reports from before it have none)
                    numbers |= {name + s: v for s, v in
                                seed_delta(raw, experiment, reference, key, test, boot["confidence"]).items()}
                    numbers[name + "_seed_p_holm"] = math.nan  # set below where the p is defined
                if math.isfinite(numbers.get(name + "_seed_p", math.nan)):
                    seed_p.append((numbers, name))
                groups.append((label, name, numbers))
    adjusted = holm([numbers[name + "_seed_p"] for numbers, name in seed_p])
    for (numbers, name), value in zip(seed_p, adjusted):
        numbers[name + "_seed_p_holm"] = value
    return groups


def check_table(folder: Path, name: str, raw: Raw) -> tuple[int, int]:
    """Check one table; prints a line per group; returns (groups checked, mismatched numbers)."""
    settings = json.loads((folder / "tables" / f"{name}.json").read_text(encoding="utf-8"))
    table = pd.read_csv(folder / "tables" / f"{name}.csv", dtype={"label": str, "experiment": str})
    if table.empty:
        print(f"ok    {name}: no rows")
    groups = table_groups(raw, table, settings)
    absent = sorted({"*" + c[len(group):] for _, group, numbers in groups for c in numbers if c not in table.columns})
    if absent:
        print(f"skip  {name}: columns absent (an older report), not checked: {', '.join(absent)}")
    bad_total = 0
    rows = table.set_index("label", drop=False)
    for label, group, numbers in groups:
        present = {c: v for c, v in numbers.items() if c in table.columns}
        bad = [c for c, v in present.items() if not same(rows.loc[label, c], v)]
        bad_total += len(bad)
        if not bad:
            print(f"ok    {name} | {label} | {group}: {len(present)} numbers")
        for c in bad:
            print(f"FAIL  {name} | {label} | {c}: table {rows.loc[label, c]!r}, recomputed {present[c]!r}")
    return len(groups), bad_total


def main(argv: list[str]) -> int:
    """Check every table of the publish ``argv[0]`` (default: this script's folder); returns the exit status."""
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent
    raw_dir, tables_dir = folder / "raw", folder / "tables"
    if not (raw_dir / "results.csv").is_file() or not tables_dir.is_dir():
        print(f"error: {folder} is not a published run: expected raw/results.csv and tables/ "
              "(as `python -m bench publish` writes them)", file=sys.stderr)
        return 2
    if tuple(int(part) for part in re.findall(r"\d+", scipy.__version__)[:2]) < (1, 15):
        print(f"error: SciPy {scipy.__version__} is too old: the report's resampling (rng=) needs SciPy 1.15 or newer",
              file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # scipy's notes on nearly equal seeds: no number changes
    raw = Raw(raw_dir)
    groups = mismatches = 0
    for csv in sorted(tables_dir.glob("*.csv")):
        if not csv.with_suffix(".json").is_file():
            print(f"skip  {csv.name}: no {csv.stem}.json beside it (its settings)")
            continue
        checked, bad = check_table(folder, csv.stem, raw)
        groups, mismatches = groups + checked, mismatches + bad
    verdict = "all numbers agree" if not mismatches else f"{mismatches} number(s) DIFFER"
    print(f"\n{groups} groups of numbers recomputed from {raw_dir}: {verdict}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
