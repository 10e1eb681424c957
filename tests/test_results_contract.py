"""The results contract (relight_base/results.py): one definition of a results row, read back by every version.

``tests/fixtures/run_folders/v<N>/`` holds one frozen run folder per schema version, written by ``bench run`` of the
code of that version (v0: before versions existed, commit 647eb2f) on a tiny synthetic config, without weights or
predictions.  Each must still render; its numbers are checked against its own per-image files here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import typing
from pathlib import Path

import pandas as pd
import pytest

from relight_base import results as contract
from bench.cli.arguments import add_trained_experiment_args
from bench.harness.config import EvalConfig
from reports.errors import ReportError
from reports.loading import load_run
from reports.render import build_report, render_report

FIXTURES = Path(__file__).parent / "fixtures" / "run_folders"
VERSIONS = sorted(int(p.name[1:]) for p in FIXTURES.glob("v*"))


def test_every_version_up_to_the_current_one_has_a_frozen_run_folder():
    assert VERSIONS == list(range(contract.SCHEMA_VERSION + 1))


def test_the_columns_are_defined_once_with_type_unit_and_meaning():
    assert len(set(contract.NAMES)) == len(contract.NAMES)
    assert contract.NAMES[:9] == ("experiment", "model", "seed", "split", "status", "psnr", "ssim", "lpips", "mps")
    assert set(contract.REQUIRED) == set(contract.NAMES[:9])
    for column in contract.COLUMNS:
        assert column.kind in (str, int, float, bool) and column.meaning, column.name
        assert 0 <= column.since <= contract.SCHEMA_VERSION, column.name
    assert contract.BY_NAME["psnr"].unit == "dB" and contract.BY_NAME["time_per_image_s"].unit == "s"


def test_the_weights_choices_and_their_files_come_from_one_enum():
    assert {w.value: w.file for w in contract.Weights} == {"last": "model.pt", "best": "best.pt",
                                                                  "ema_last": "ema.pt", "ema_best": "ema_best.pt"}
    hints = typing.get_type_hints(EvalConfig)
    assert typing.get_args(hints["weights"]) == contract.Weights.values()  # eval.weights accepts exactly these
    import argparse

    parser = argparse.ArgumentParser()
    add_trained_experiment_args(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "weights")
    assert tuple(choices) == contract.Weights.values()  # and so does --weights
    assert [contract.weights_words(v) for v in ("last", "best", "untrained")] == [
        "last (model.pt, end of training)", "best (best.pt, best held-out score)", "untrained (nothing to train)"]


def test_an_older_version_gets_the_defaults_a_newer_one_must_carry_its_columns():
    missing, filled = contract.missing_for(0, contract.REQUIRED)
    assert missing == [] and filled["eval_weights"] == "last" and math.isnan(filled["gflops"])
    assert filled["timing_phase"] == "" and filled["residual"] is False and filled["extra_data"] == "none"
    missing, filled = contract.missing_for(1, [n for n in contract.NAMES if n != "gflops"])
    assert missing == ["gflops"] and filled == {}
    missing, _ = contract.missing_for(1, ["experiment"])
    assert "psnr" in missing and "timing_phase" in missing


def _seed_averaged_mean(folder: Path, experiment: str, split: str, metric: str) -> float:
    """Computed from the folder's own files: each image averaged over the seeds, then over the images."""
    frames = [pd.read_csv(p, dtype={"scene_id": str}).set_index("scene_id")[metric]
              for p in sorted((folder / experiment).glob(f"seed*/metrics_{split}.csv"))]
    return float(pd.concat(frames, axis=1).mean(axis=1).mean())


@pytest.mark.parametrize("version", VERSIONS)
def test_a_frozen_run_folder_of_every_version_renders_with_its_own_numbers(version, tmp_path):
    folder = FIXTURES / f"v{version}"
    run = load_run(folder)
    assert run.schema_version == version
    assert set(contract.NAMES) <= set(run.results.columns)  # read with the defaults of columns it may lack
    page = render_report([folder], tmp_path / "out")
    assert page.is_file() and (tmp_path / "out" / "tables" / "table4.csv").is_file()
    table1 = pd.read_csv(tmp_path / "out" / "tables" / "table1.csv").set_index("experiment")
    table3 = pd.read_csv(tmp_path / "out" / "tables" / "table3.csv").set_index("experiment")
    for experiment in ("baseline", "mbnet"):
        assert table1.loc[experiment, "val_psnr_mean"] == pytest.approx(
            _seed_averaged_mean(folder, experiment, "val", "psnr"), rel=1e-9)
    assert table3.loc["pgar", "test_ssim_mean"] == pytest.approx(_seed_averaged_mean(folder, "pgar", "test", "ssim"),
                                                                  rel=1e-9)
    table4 = pd.read_csv(tmp_path / "out" / "tables" / "table4.csv")
    assert {"mbnet", "ian", "identity"} <= set(table4["experiment"]) and "pgar" not in set(table4["experiment"])
    provenance = json.loads((tmp_path / "out" / "tables" / "table1.json").read_text())["provenance"]
    assert "best (best.pt, best held-out score): baseline" in provenance["weights scored"]


def test_a_run_folder_of_a_newer_schema_is_refused_by_name(tmp_path):
    folder = shutil.copytree(FIXTURES / f"v{contract.SCHEMA_VERSION}", tmp_path / "newer")
    meta = json.loads((folder / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**meta, "schema_version": contract.SCHEMA_VERSION + 1}))
    with pytest.raises(contract.ResultsSchemaError, match=r"results.json: its results follow schema version \d+, newer"):
        build_report([folder])


def test_a_current_run_folder_missing_a_column_names_it(tmp_path):
    folder = shutil.copytree(FIXTURES / f"v{contract.SCHEMA_VERSION}", tmp_path / "cut")
    results = pd.read_csv(folder / "results.csv").drop(columns=["gflops"])
    results.to_csv(folder / "results.csv", index=False)
    with pytest.raises(ReportError, match="missing column.*gflops"):
        build_report([folder])


def test_rows_the_harness_builds_have_only_contract_columns():
    with pytest.raises(ValueError, match="not_a_column"):
        contract.check_row({"experiment": "a", "not_a_column": 1})
    assert set(contract.empty_row()) == set(contract.NAMES)
    assert set(contract.untimed()) == set(contract.TIMING_COLUMNS)
    assert dataclasses.is_dataclass(contract.Column)
