"""Seeds made visible: held-out curves over seeds, rank stability (Kendall's τ), strip plots.

Each expected value is worked out here by hand: a band's mean/min/max over three seeds, τ of a ranking with one
swapped pair out of three ((concordant - discordant) / pairs = (2 - 1) / 3), one dot per seed in the SVG.
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from reports import figures
from reports.train_logs import held_out_band, rank_stability, read_train_log


def log(steps, values) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, "loss": [0.1] * len(steps), "holdout_psnr": values})


def test_band_is_mean_min_max_over_seeds_at_shared_steps():
    logs = {0: log([25, 50, 75], [10.0, 12.0, 13.0]), 1: log([25, 50, 75], [11.0, 15.0, 13.0]),
            2: log([25, 50, 75, 100], [12.0, 12.0, 16.0, 20.0])}  # step 100: one seed only, left out
    band = held_out_band(logs)
    assert band.steps == [25, 50, 75] and band.seeds == 3
    assert band.mean == pytest.approx([11.0, 13.0, 14.0])
    assert (band.low, band.high) == ([10.0, 12.0, 13.0], [12.0, 15.0, 16.0])


def test_rank_stability_is_kendall_tau_against_the_last_step():
    # final order a > b > c; at step 10 fully reversed (τ = -1); at step 20 b and c swapped (τ = 1/3)
    logs = {"a": {0: log([10, 20, 30], [1.0, 3.0, 3.0])}, "b": {0: log([10, 20, 30], [2.0, 1.0, 2.0])},
            "c": {0: log([10, 20, 30], [3.0, 2.0, 1.0])}}
    stability = rank_stability(["a", "b", "c"], logs)
    assert stability.steps == [10, 20, 30]
    assert stability.taus == pytest.approx([-1.0, 1 / 3, 1.0])
    assert stability.halfway == (20, pytest.approx(1 / 3)), "the first validation step at or after half the last"
    assert "0.33" in stability.describe()


def test_rank_stability_needs_two_rows_with_logs():
    logs = {"a": {0: log([10, 20], [1.0, 2.0])}}
    assert rank_stability(["a", "b"], logs) is None
    assert rank_stability(["a", "b"], {**logs, "b": {0: log([10], [float("nan")])}}) is None


def test_an_unreadable_or_empty_log_is_left_out(tmp_path):
    bad = tmp_path / "train_log.csv"
    bad.write_text('step,loss\n1,"0.5\n')
    assert read_train_log(bad) is None
    (tmp_path / "empty.csv").write_text("")
    assert read_train_log(tmp_path / "empty.csv") is None
    assert read_train_log(tmp_path / "missing.csv") is None


def test_strip_plot_draws_one_dot_per_seed_and_a_mean_line():
    svg = figures.strip_svg([("mbnet", [19.0, 21.0, 20.0]), ("pgar", [22.0, math.nan]), ("empty", [])],
                            "Validation PSNR per seed", "PSNR (dB)")
    assert len(re.findall(r"<circle ", svg)) == 4, "three seeds of mbnet, one finite of pgar"
    assert svg.count('stroke-width="2"') == 2, "one mean line per row with values"
    assert "mbnet: 19" in svg and "empty" not in svg


def test_curves_with_bands_shade_each_band():
    svg = figures.curves_svg([("a", [1, 2, 3], [1.0, 2.0, 3.0]), ("b", [1, 2, 3], [2.0, 2.0, 2.0])], "t", "x", "y",
                             bands=[([0.5, 1.5, 2.5], [1.5, 2.5, 3.5]), None])
    assert svg.count("<polygon") == 1 and svg.count("<polyline") == 2
