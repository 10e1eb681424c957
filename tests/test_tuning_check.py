"""docs/results/tuning_check.py (the reading of the tuned study) on two made-up published folders whose answers
are known by hand: four of six pairs reordered (Kendall's tau -1/3), a paired difference of 1..5 dB, a row below
the input."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "results" / "tuning_check.py"
T_975_DF4 = 2.7764451  # Student t, 97.5 % quantile, 4 degrees of freedom (printed tables)


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("tuning_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _publish(folder: Path, values: dict[str, list[float]]) -> Path:
    """A published folder whose raw/results.csv holds ``values[experiment]`` as five seeds' val PSNR
    (SSIM = PSNR / 100, test = val)."""
    rows = [dict(experiment=name, seed=seed, split=split, status="done", psnr=v, ssim=v / 100)
            for name, seeds in values.items() for seed, v in enumerate(seeds) for split in ("val", "test")]
    (folder / "raw").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "raw" / "results.csv", index=False)
    return folder


@pytest.fixture()
def runs(tmp_path, check):
    base = [10.0, 11.0, 12.0, 13.0, 14.0]
    untuned = _publish(tmp_path / "untuned", {"a": [v + 10 for v in base], "b": [v + 5 for v in base],
                                              "c": base, "identity": [15.0] * 5})
    tuned = _publish(tmp_path / "tuned", {"a": [v + 10 + d for v, d in zip(base, [1, 2, 3, 4, 5])],
                                          "b": [v + 25 for v in base], "c": [v + 40 for v in base],
                                          "identity": [15.0] * 5})
    return check.seed_means(untuned), check.seed_means(tuned)


def test_a_paired_difference_of_one_to_five_gives_the_textbook_interval(check, runs):
    effect = check.tuning_effect(*runs, "val").set_index(["metric", "experiment"])
    a = effect.loc[("PSNR", "a")]
    half = T_975_DF4 * math.sqrt(2.5) / math.sqrt(5)     # sd of 1..5 is sqrt(2.5)
    assert a["delta"] == pytest.approx(3.0)
    assert (a["low"], a["high"]) == pytest.approx((3 - half, 3 + half), abs=1e-6)
    assert a["test"].startswith("paired") and a["seeds"] == 5
    # tuned beats untuned in 20 of 25 seed pairs (two ties count 1/2 each; counted by hand)
    assert a["p_better"] == pytest.approx(20 / 25)
    # a constant shift has no variance over seeds: no interval, a reason instead
    assert effect.loc[("PSNR", "b"), "reason"] == "zero variance over seeds"
    assert "identity" not in effect.index.get_level_values("experiment")


def test_an_order_with_four_of_six_pairs_flipped_has_tau_minus_one_third(check, runs):
    tau, _, flipped = check.flips(*runs, "val", "psnr")
    assert check.order(runs[0], "val", "psnr") == ["a", "b", "identity", "c"]
    assert check.order(runs[1], "val", "psnr") == ["c", "b", "a", "identity"]
    # ranks untuned a0 b1 identity2 c3 -> tuned a2 b1 identity3 c0: pairs (a,b), (a,c), (b,c), (identity,c) flip
    assert sorted(f["untuned_order"] for f in flipped) == ["a > b", "a > c", "b > c", "identity > c"]
    assert tau == pytest.approx((2 - 4) / 6)


def test_rows_below_the_input_are_named(check, runs):
    assert check.below_floor(runs[0], "val", "psnr") == ["c 12"]
    assert check.below_floor(runs[1], "val", "psnr") == []


def test_a_folder_without_raw_results_is_a_clear_exit(check, tmp_path):
    with pytest.raises(SystemExit, match="raw/results.csv: not found"):
        check.seed_means(tmp_path)
