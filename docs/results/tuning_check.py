"""What the equal tuning budget changed: the untuned and the tuned 5-seed studies side by side, from their raw files.

    python docs/results/tuning_check.py [UNTUNED_FOLDER TUNED_FOLDER]

Defaults: docs/results/tuned_study_untuned and docs/results/tuned_study (the two `bench publish` folders of
configs/tuned_study.yaml). Reads each folder's raw/results.csv (one row per experiment, seed and split: that
seed's mean over the split's images) and prints, for validation and test, PSNR and SSIM:

  (1) per experiment, tuned - untuned over the seeds' means: a paired t-test over the shared seeds (a seed fixes
      the initialisation and the order of the batches in both runs; only the training settings differ), its 95 %
      interval and p, Holm over every row and both metrics of one split, and P(better) = U / (n n);
  (2) the order of the rows by their seeds' mean in each run, Kendall's tau between the two orders, and every
      pair of rows whose order flips, with the seed-level Welch p of that pair in each run (a flip between two
      rows that no run separates is a flip between ties);
  (3) the rows below the input image (the identity row) in each run.

The seed-level statistics are the report's own (reports.seed_level); nothing here is image-level: the image-level
intervals of each run are in its report.
"""
from __future__ import annotations

import argparse
import sys
from itertools import combinations
from pathlib import Path

import pandas as pd
from scipy import stats

from reports.seed_level import holm, seed_difference

HERE = Path(__file__).resolve().parent
SPLITS = ("val", "test")
METRICS = {"psnr": "PSNR", "ssim": "SSIM"}
FLOOR = "identity"
CONFIDENCE = 0.95


def seed_means(folder: Path) -> pd.DataFrame:
    """``raw/results.csv`` of a published run: rows of finished units, indexed by (split, experiment, seed)."""
    path = Path(folder) / "raw" / "results.csv"
    if not path.is_file():
        sys.exit(f"{path}: not found; expected a folder written by `python -m bench publish`")
    table = pd.read_csv(path)
    missing = {"experiment", "seed", "split", "status", *METRICS} - set(table.columns)
    if missing:
        sys.exit(f"{path}: expected the columns {sorted(missing)} of a run's results.csv")
    return table[table["status"] == "done"].set_index(["split", "experiment", "seed"]).sort_index()


def per_seed(table: pd.DataFrame, split: str, experiment: str, metric: str) -> dict[int, float]:
    """``{seed: that seed's mean}`` of one row."""
    rows = table.loc[(split, experiment)]
    return {int(seed): float(value) for seed, value in rows[metric].items()}


def tuning_effect(untuned: pd.DataFrame, tuned: pd.DataFrame, split: str) -> pd.DataFrame:
    """(1): one line per experiment and metric, tuned - untuned, Holm over the split."""
    experiments = sorted(set(untuned.loc[split].index.get_level_values(0))
                         & set(tuned.loc[split].index.get_level_values(0)) - {FLOOR})
    lines = []
    for metric in METRICS:
        for name in experiments:
            before, after = per_seed(untuned, split, name, metric), per_seed(tuned, split, name, metric)
            d = seed_difference(after, before, paired_seeds=True, confidence=CONFIDENCE, higher_is_better=True)
            lines.append(dict(metric=METRICS[metric], experiment=name, untuned=sum(before.values()) / len(before),
                              tuned=sum(after.values()) / len(after), delta=d.estimate, low=d.low, high=d.high,
                              p=d.p_value, test=d.test, seeds=min(d.n_row, d.n_ref), p_better=d.p_better,
                              reason=d.reason))
    out = pd.DataFrame(lines)
    out["p_holm"] = holm(out["p"].tolist())
    return out


def order(table: pd.DataFrame, split: str, metric: str) -> list[str]:
    """Rows by their seeds' mean, best first."""
    return table.loc[split][metric].groupby(level=0).mean().sort_values(ascending=False).index.tolist()


def flips(untuned: pd.DataFrame, tuned: pd.DataFrame, split: str, metric: str) -> tuple[float, float, list[dict]]:
    """(2): Kendall's tau (and its p) between the two orders over the rows both hold, and the pairs that flip."""
    first, second = order(untuned, split, metric), order(tuned, split, metric)
    rows = [name for name in first if name in second]
    rank_a = [first.index(name) for name in rows]
    rank_b = [second.index(name) for name in rows]
    tau = stats.kendalltau(rank_a, rank_b)
    flipped = []
    for a, b in combinations(rows, 2):
        if (first.index(a) < first.index(b)) != (second.index(a) < second.index(b)):
            p_each = [seed_difference(per_seed(t, split, a, metric), per_seed(t, split, b, metric),
                                      paired_seeds=False, confidence=CONFIDENCE, higher_is_better=True).p_value
                      for t in (untuned, tuned)]
            flipped.append(dict(untuned_order=f"{a} > {b}" if first.index(a) < first.index(b) else f"{b} > {a}",
                                p_untuned=p_each[0], p_tuned=p_each[1]))
    return float(tau.statistic), float(tau.pvalue), flipped


def below_floor(table: pd.DataFrame, split: str, metric: str) -> list[str]:
    """(3): rows whose seeds' mean is below the identity row's."""
    means = table.loc[split][metric].groupby(level=0).mean()
    if FLOOR not in means:
        return []
    return [f"{name} {value:.4g}" for name, value in means.sort_values().items()
            if name != FLOOR and value < means[FLOOR]]


def show_effect(effect: pd.DataFrame, split: str) -> None:
    print(f"\n(1) {split}: tuned - untuned per experiment (paired t over shared seeds, {CONFIDENCE:.0%} interval; "
          f"Holm over these {effect['p'].notna().sum()})")
    print(f"{'':5} {'experiment':11} {'untuned':>9} {'tuned':>9} {'delta':>9} {'interval':>22} {'p':>7} "
          f"{'Holm':>7} {'P(better)':>9} seeds")
    for r in effect.itertuples():
        digits = 3 if r.metric == "PSNR" else 4
        interval = f"[{r.low:+.{digits}f}, {r.high:+.{digits}f}]" if r.reason == "" else r.reason
        print(f"{r.metric:5} {r.experiment:11} {r.untuned:9.{digits}f} {r.tuned:9.{digits}f} "
              f"{r.delta:+9.{digits}f} {interval:>22} {r.p:7.4f} {r.p_holm:7.4f} {r.p_better:9.2f} {r.seeds}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("untuned", nargs="?", type=Path, default=HERE / "tuned_study_untuned")
    parser.add_argument("tuned", nargs="?", type=Path, default=HERE / "tuned_study")
    args = parser.parse_args(argv)
    untuned, tuned = seed_means(args.untuned), seed_means(args.tuned)
    for split in SPLITS:
        if split not in untuned.index.get_level_values(0) or split not in tuned.index.get_level_values(0):
            continue
        show_effect(tuning_effect(untuned, tuned, split), split)
        for metric, name in METRICS.items():
            tau, p, flipped = flips(untuned, tuned, split, metric)
            print(f"\n(2) {split} {name}: untuned order {' > '.join(order(untuned, split, metric))}")
            print(f"    {split} {name}: tuned order   {' > '.join(order(tuned, split, metric))}")
            print(f"    Kendall tau {tau:+.3f} (p {p:.3f}); {len(flipped)} pair(s) flip")
            for f in flipped:
                print(f"      untuned {f['untuned_order']}: seed-level Welch p {f['p_untuned']:.4f} untuned, "
                      f"{f['p_tuned']:.4f} tuned")
            before = ", ".join(below_floor(untuned, split, metric)) or "none"
            after = ", ".join(below_floor(tuned, split, metric)) or "none"
            print(f"(3) {split} {name} below the input: untuned: {before}; tuned: {after}")


if __name__ == "__main__":
    main()
