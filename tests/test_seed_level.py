"""Seed-level statistics and verdicts, checked against computations written out here.

The t-intervals are recomputed from their textbook formulas (Welch-Satterthwaite degrees of freedom, the paired
differences' standard error), Holm from a hand-worked example, P(A > B) from pairs counted by hand; the verdicts
from hand-built run folders whose seeds either disagree far more than the images (image level: †, seed level:
not) or all agree, and from 1- and 3-seed runs that may never be called "holds across seeds".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from reports.render import build_report
from reports.seed_level import (PAIRED, WELCH, holm, probability_of_improvement, seed_difference,
                                seed_interval)
from tests.test_reports import SCENES, RunBuilder, scores, table

# ----------------------------------------------------------------------------- the statistics themselves


def test_seed_interval_is_the_student_t_interval():
    values = {0: 18.2, 1: 19.9, 2: 17.1, 3: 18.8}
    x = np.array(list(values.values()))
    half = scipy.stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    interval = seed_interval(values, 0.95)
    assert interval.estimate == pytest.approx(x.mean())
    assert (interval.low, interval.high) == pytest.approx((x.mean() - half, x.mean() + half), rel=1e-12)


def test_seed_interval_needs_three_seeds():
    assert not seed_interval({0: 18.0, 1: 19.0}, 0.95).defined
    assert "3" in seed_interval({0: 18.0, 1: 19.0}, 0.95).reason
    assert seed_interval({0: 18.0, 1: 18.0, 2: 18.0}, 0.95).reason == "zero variance"


def test_welch_interval_and_p_match_the_welch_satterthwaite_formula():
    row = {0: 20.1, 1: 21.7, 2: 19.4, 3: 22.0, 4: 20.9}
    ref = {0: 18.0, 1: 18.4, 2: 17.9}
    a, b = np.array(list(row.values())), np.array(list(ref.values()))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    se = math.sqrt(va + vb)
    diff = a.mean() - b.mean()
    half = scipy.stats.t.ppf(0.975, df) * se
    p = 2 * scipy.stats.t.sf(abs(diff / se), df)
    c = seed_difference(row, ref, paired_seeds=False, confidence=0.95, higher_is_better=True)
    assert c.test == WELCH and (c.n_row, c.n_ref) == (5, 3)
    assert (c.estimate, c.low, c.high, c.p_value) == pytest.approx((diff, diff - half, diff + half, p), rel=1e-10)


def test_paired_test_uses_the_per_seed_differences_only_when_seeds_match():
    row = {0: 20.0, 1: 22.5, 2: 18.0, 3: 21.0}
    ref = {0: 19.0, 1: 21.0, 2: 17.5, 3: 19.6}
    d = np.array([row[s] - ref[s] for s in range(4)])
    half = scipy.stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2.0
    p = 2 * scipy.stats.t.sf(abs(d.mean() / (d.std(ddof=1) / 2.0)), 3)
    c = seed_difference(row, ref, paired_seeds=True, confidence=0.95, higher_is_better=True)
    assert c.test == PAIRED
    assert (c.low, c.high, c.p_value) == pytest.approx((d.mean() - half, d.mean() + half, p), rel=1e-10)
    unmatched = seed_difference(row, {**ref, 4: 20.0}, paired_seeds=True, confidence=0.95, higher_is_better=True)
    assert unmatched.test == WELCH, "different seed sets cannot be paired"


def test_fewer_than_three_seeds_or_no_variance_give_no_test():
    two = seed_difference({0: 20.0, 1: 21.0}, {0: 18.0, 1: 18.5, 2: 19.0}, paired_seeds=False, confidence=0.95,
                          higher_is_better=True)
    assert not two.defined and math.isnan(two.p_value) and "3" in two.reason
    assert two.estimate == pytest.approx(20.5 - 18.5)
    flat = seed_difference({0: 1.0, 1: 1.0, 2: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0}, paired_seeds=False, confidence=0.95,
                           higher_is_better=True)
    assert not flat.defined and flat.reason == "zero variance over seeds"


def test_holm_against_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    adjusted = holm([0.01, 0.04, 0.03, math.nan, 0.005])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and adjusted[4] == pytest.approx(0.02)
    assert math.isnan(adjusted[3])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]), "capped at 1"


def test_probability_of_improvement_counts_pairs():
    # 3 beats 1, 2 and ties 3; 4 beats 1, 2, 3 and ties 4; 5 beats all four: (2.5 + 3.5 + 4) / 12
    assert probability_of_improvement([3, 4, 5], [1, 2, 3, 4], True) == pytest.approx(10 / 12)
    assert probability_of_improvement([3, 4, 5], [1, 2, 3, 4], False) == pytest.approx(2 / 12), "lower is better"
    assert probability_of_improvement([1, 2, 3], [0, 0, 0], True) == 1.0
    assert probability_of_improvement([1, 2, 3], [2, 2, 2], True) == pytest.approx(0.5)

# ----------------------------------------------------------------------------- verdicts in hand-built run folders


def seeded_run(seeds, seed_offsets, image_noise=0.05, effect=2.0, rng_seed=0, same_pairs=False) -> RunBuilder:
    """baseline (mbnet) and mbnet_plus (mbnet, ``effect`` dB better on average), identity; each seed of
    mbnet_plus shifted by ``seed_offsets[seed]`` (the training luck), each image by ``image_noise``."""
    rng = np.random.default_rng(rng_seed)
    base = rng.normal(18.0, 1.0, len(SCENES))
    ssim = rng.uniform(0.6, 0.7, len(SCENES))
    run = RunBuilder()
    pairs = "none" if same_pairs else "extra_input,mirror"
    for seed in seeds:
        for split in ("val", "test"):
            run.add("baseline", "mbnet", seed, split, scores(base + rng.normal(0, image_noise, len(SCENES)), ssim))
            run.add("mbnet_plus", "mbnet", seed, split,
                    scores(base + effect + seed_offsets[seed] + rng.normal(0, image_noise, len(SCENES)), ssim + 0.01),
                    extra_data=pairs, residual=True)
            run.add("identity", "identity", seed, split, scores(base - 3.0, ssim - 0.1), params_m=0.0, gflops=0.0)
    return run


def write_with_experiments(run: RunBuilder, folder, seeds) -> None:
    run.write(folder, report={"bootstrap_resamples": 500, "table1_reference": "baseline"})
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["seeds"] = list(seeds)
    config["experiments"] = [{"name": "baseline", "model": "mbnet"}, {"name": "mbnet_plus", "model": "mbnet"},
                             {"name": "identity", "model": "identity"}]
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


def delta_row(report, experiment: str) -> pd.Series:
    frame = table(report, "table1").frame
    return frame[frame["experiment"] == experiment].iloc[0]


def per_seed_means(folder, experiment: str, seeds, split="val", metric="psnr") -> np.ndarray:
    """Each seed's mean over images, computed here from its per-image file."""
    return np.array([pd.read_csv(folder / experiment / f"seed{s}" / f"metrics_{split}.csv")[metric].mean() for s in seeds])


def test_seeds_that_disagree_far_more_than_images_are_these_weights_only(tmp_path):
    seeds = range(5)
    offsets = {0: 6.0, 1: -5.0, 2: 4.0, 3: -6.5, 4: 3.0}  # sd ~5.6 dB; images agree within 0.05 dB
    folder = tmp_path / "lucky"
    write_with_experiments(seeded_run(seeds, offsets), folder, seeds)
    row = delta_row(build_report([folder]), "mbnet_plus")
    assert row["delta_val_psnr_excludes_0"], "image level: the 24 images agree, so the CI excludes 0 (†)"
    a, b = per_seed_means(folder, "mbnet_plus", seeds), per_seed_means(folder, "baseline", seeds)
    welch = scipy.stats.ttest_ind(a, b, equal_var=False)
    assert row["delta_val_psnr_seed_test"] == WELCH, "different training pairs: unpaired"
    assert row["delta_val_psnr_seed_p"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert row["delta_val_psnr_seed_p"] > 0.05
    assert row["delta_val_psnr_verdict"] == "these weights only"
    marks = table(build_report([folder]), "table1").frame.set_index("experiment")
    assert "val_psnr" not in marks.loc["mbnet_plus", "best"].split(","), "bold follows the seed level with 5 seeds"


def test_seeds_that_agree_hold_across_seeds(tmp_path):
    seeds = range(5)
    offsets = {0: 0.1, 1: -0.1, 2: 0.05, 3: -0.05, 4: 0.0}
    folder = tmp_path / "steady"
    write_with_experiments(seeded_run(seeds, offsets), folder, seeds)
    report = build_report([folder])
    row = delta_row(report, "mbnet_plus")
    assert row["delta_val_psnr_seed_p_holm"] < 0.05 and row["delta_val_psnr_excludes_0"]
    assert row["delta_val_psnr_verdict"] == "holds across seeds"
    a, b = per_seed_means(folder, "mbnet_plus", seeds), per_seed_means(folder, "baseline", seeds)
    ci = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (row["delta_val_psnr_seed_ci_low"], row["delta_val_psnr_seed_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["delta_val_psnr_p_better"] == 1.0
    assert "val_psnr" in table(report, "table1").frame.set_index("experiment").loc["mbnet_plus", "best"].split(",")


def test_holm_family_is_every_seed_level_delta_of_the_table(tmp_path):
    seeds = range(5)
    folder = tmp_path / "family"
    write_with_experiments(seeded_run(seeds, {s: 0.3 * (s - 2) for s in seeds}), folder, seeds)
    frame = table(build_report([folder]), "table1").frame
    p = {c: frame[c].to_numpy() for c in frame.columns if c.endswith("_seed_p")}
    raw = np.concatenate([v for v in p.values()])
    expected = dict(zip(range(len(raw)), holm(raw.tolist())))
    got = np.concatenate([frame[c[:-2] + "_p_holm"].to_numpy() for c in p])
    finite = np.isfinite(raw)
    assert finite.sum() >= 3, "PSNR Δ vs baseline and vs identity: a family of several tests (SSIM has no spread)"
    assert got[finite] == pytest.approx(np.array([expected[i] for i in range(len(raw))])[finite])


def test_same_model_and_pairs_are_paired_by_seed(tmp_path):
    seeds = range(5)
    folder = tmp_path / "paired"
    write_with_experiments(seeded_run(seeds, {s: 0.2 * s for s in seeds}, same_pairs=True), folder, seeds)
    row = delta_row(build_report([folder]), "mbnet_plus")
    assert row["delta_val_psnr_seed_test"] == PAIRED
    a, b = per_seed_means(folder, "mbnet_plus", seeds), per_seed_means(folder, "baseline", seeds)
    assert row["delta_val_psnr_seed_p"] == pytest.approx(scipy.stats.ttest_rel(a, b).pvalue, rel=1e-9)
    floor = delta_row(build_report([folder]), "mbnet_plus")["floor_delta_val_psnr_seed_test"]
    assert floor == WELCH, "identity is another model: never paired"


@pytest.mark.parametrize("count", [1, 3])
def test_fewer_seeds_than_min_seeds_never_hold_across_seeds(tmp_path, count):
    seeds = range(count)
    folder = tmp_path / f"few{count}"
    write_with_experiments(seeded_run(seeds, {s: 0.0 for s in seeds}, effect=3.0), folder, seeds)
    report = build_report([folder])
    for t in report.tables:
        verdicts = t.frame[[c for c in t.frame.columns if c.endswith("_verdict")]].to_numpy().ravel()
        assert "holds across seeds" not in set(verdicts), t.name
    row = delta_row(report, "mbnet_plus")
    assert row["delta_val_psnr_verdict"] == "these weights only"
    if count == 3:
        assert math.isfinite(row["delta_val_psnr_seed_p"]), "3 seeds: the test is shown, only the verdict waits"
        cell = table(report, "table1").frame.set_index("experiment").loc["mbnet_plus"]
        x = per_seed_means(folder, "mbnet_plus", seeds)
        ci = scipy.stats.ttest_1samp(x, 0).confidence_interval(0.95)
        assert (cell["val_psnr_seed_ci_low"], cell["val_psnr_seed_ci_high"]) == pytest.approx((ci.low, ci.high))
    else:
        assert math.isnan(row["delta_val_psnr_seed_p"])


def test_tables_show_both_levels_and_the_verdict(tmp_path):
    seeds = range(3)
    folder = tmp_path / "shown"
    write_with_experiments(seeded_run(seeds, {0: 0.3, 1: -0.2, 2: 0.1}), folder, seeds)
    from reports.writers import to_markdown
    text = to_markdown(table(build_report([folder]), "table1"))
    assert "seeds: sd" in text and "t [" in text, "cells: the seed level next to the image-level CI"
    assert "seeds, Welch 3 v 3:" in text and "Holm" in text and "P(better)" in text
    assert "these weights only" in text and "test-set uncertainty of these trained weights" in text
    assert "0: " in text and "1: " in text and "2: " in text, "each seed's mean is listed"
