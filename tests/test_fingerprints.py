"""What a rerun may reuse: the experiment and scoring fingerprints, pinned as literal hashes.

The literals were computed by the code before the fingerprint was built from an explicit list of keys (commit
647eb2f, where it hashed "the whole config minus some sections"), so these tests check that finished units of
earlier runs are still recognised, not the fingerprint against its own formula.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench.harness.config import BenchConfig, load_config, parse_config
from bench.harness.fingerprints import experiment_fingerprint, scoring_fingerprint

MINIMAL = "experiments:\n  - name: a\n    model: identity\n"
FROZEN_V0 = Path(__file__).parent / "fixtures" / "run_folders" / "v0"
REPO = Path(__file__).resolve().parent.parent

# (overrides, fingerprint of seed 0, of seed 1, scoring fingerprint): computed at commit 647eb2f
EARLIER = [
    ([], "e0891a717287", "f10d373736ff", "c92fafb092f4"),
    (["train.schedule=cosine"], "07e20f850a19", "6f8748c10ff4", "c92fafb092f4"),
    (["train.lr=0.001"], "fb7606c3617f", "2dfcaa08be18", "c92fafb092f4"),
    (["train.val_every=5"], "dba885ff564e", "8a9998b1fc00", "c92fafb092f4"),
    (["loss.adapter_terms=true"], "1b75a03ee8b1", "c6b7de8036f7", "c92fafb092f4"),
    (["eval.weights=best", "train.val_every=5"], "dba885ff564e", "8a9998b1fc00", "4b9b2ff63766"),
    # settings that decide where and how results are written, timed or reported, not what is trained
    (["eval.timing_rounds=5", "report.confidence=0.9", "launcher.jobs=3", "train.checkpoint_every=7",
      "data.workers=2", "weights.lpips=false", "name=other"], "e0891a717287", "f10d373736ff", "d5abea677183"),
]
BENCHMARK_YAML = ["73127027750c", "5ee48f317a29", "43135b539130", "c3d83a5ddea5", "87c60d099279", "52498c05d3f0",
                  "7ece2ce27345", "790ce6a3b37a"]  # the default benchmark's experiments, seed 0, at 647eb2f


@pytest.mark.parametrize("overrides, seed0, seed1, scoring", EARLIER, ids=lambda v: ",".join(v) if isinstance(v, list) else None)
def test_fingerprints_equal_those_earlier_code_computed(overrides, seed0, seed1, scoring):
    cfg = parse_config(MINIMAL, overrides=overrides)
    exp = cfg.experiments[0]
    assert (experiment_fingerprint(cfg, exp, 0), experiment_fingerprint(cfg, exp, 1)) == (seed0, seed1)
    assert scoring_fingerprint(cfg) == scoring


def test_the_default_benchmark_keeps_its_fingerprints():
    cfg = load_config(REPO / "benchmark.yaml")
    assert [experiment_fingerprint(cfg, exp, 0) for exp in cfg.experiments] == BENCHMARK_YAML


def test_a_run_folder_written_by_earlier_code_is_recognised_as_finished():
    """Every unit of the frozen version-0 run folder: its stored fingerprints are the ones this code computes."""
    cfg = load_config(FROZEN_V0 / "config.yaml")
    for exp in cfg.experiments:
        for seed in cfg.seeds:
            stored = json.loads((FROZEN_V0 / exp.name / f"seed{seed}" / "result.json").read_text())
            assert stored["fingerprint"] == experiment_fingerprint(cfg, exp, seed), (exp.name, seed)
            assert stored["scoring"] == scoring_fingerprint(cfg)


def test_a_section_added_later_at_its_default_leaves_the_fingerprint_alone():
    """A config schema that grew a section (here a made-up ``tune:``) fingerprints its units as before."""
    grown = dataclasses.make_dataclass(
        "GrownConfig", [("tune", dict, dataclasses.field(default_factory=lambda: {"trials": 20}))], bases=(BenchConfig,))
    cfg = parse_config(MINIMAL)
    bigger = grown(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(BenchConfig)})
    assert experiment_fingerprint(bigger, bigger.experiments[0], 0) == EARLIER[0][1]


def test_an_experiment_key_that_changes_training_changes_the_fingerprint():
    cfg = parse_config(MINIMAL)
    plain = experiment_fingerprint(cfg, cfg.experiments[0], 0)
    residual = parse_config(MINIMAL, overrides=["experiments.a.residual=true"])
    assert experiment_fingerprint(residual, residual.experiments[0], 0) != plain


def test_an_experiment_lr_enters_the_fingerprint_as_a_shared_lr_would():
    from bench.harness.config import experiment_config
    from bench.harness.job import ExperimentJob
    from bench.harness.prepare import PreparedRun

    cfg = parse_config(MINIMAL)
    own = parse_config(MINIMAL, overrides=["experiments.a.train.lr=0.00042"])
    shared = parse_config(MINIMAL, overrides=["train.lr=0.00042"])
    assert experiment_config(cfg, cfg.experiments[0]) is cfg, "no own settings: the run's config itself"
    job = ExperimentJob.of(PreparedRun(own, Path("/nonexistent"), Path("/nonexistent")), own.experiments[0], 0)
    assert job.cfg.train.lr == 0.00042 and own.train.lr == cfg.train.lr, "the shared train: section is untouched"
    assert job.fingerprint == experiment_fingerprint(shared, shared.experiments[0], 0) != EARLIER[0][1]
    empty = ExperimentJob.of(PreparedRun(cfg, Path("/nonexistent"), Path("/nonexistent")), cfg.experiments[0], 0)
    assert empty.fingerprint == EARLIER[0][1], "experiments[].train left empty: the fingerprint of earlier code"
