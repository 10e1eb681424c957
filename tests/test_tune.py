"""``bench tune``: an exact, equal budget per experiment, trials scored on held-out scenes only, resumable,
and ``bench run --tuned`` applying what it chose (or refusing a file that does not fit).

Every expected number is read back here from the files the trials wrote (their training logs), not from the
tuner's own bookkeeping.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from relight_base.errors import BenchError, ConfigError
from tests.data_helpers import one_conv_plugin

optuna = pytest.importorskip("optuna")

STEPS, TRIALS = 3, 3


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    """A one-conv net (tunable) and the identity (not), on 8 tiny training scenes; trials of seconds."""
    (tmp_path / "tune_plugin.py").write_text(one_conv_plugin("tune_test_conv"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"name": "t", "plugins": ["tune_plugin"],
           "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                    "synthetic": {"train": 8, "val": 2, "test": 1, "seed": 0, "size": 16}},
           "train": {"steps": 50, "batch_size": 2, "lr": 3e-4, "schedule": "constant"},
           "eval": {"timing_rounds": 1, "timing_warmup": 0, "splits": ["val"]},
           "tune": {"trials": TRIALS, "steps": STEPS, "holdout": 2, "val_every": 1},
           "experiments": [{"name": "conv", "model": "tune_test_conv"}, {"name": "identity", "model": "identity"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def _cfg(root: Path, *overrides: str):
    from bench.harness.config import load_config

    return load_config(root / "c.yaml", list(overrides))


def _tune(root: Path, *overrides: str, out: str = "runs"):
    from bench.tune.runner import tune

    return tune(_cfg(root, *overrides), root / out, progress=False)


def _trials(run_dir: Path, name: str = "conv") -> list:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(run_dir / "tune.journal")))
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def test_every_tunable_experiment_spends_exactly_its_budget_on_held_out_scenes(workspace):
    outcome = _tune(workspace)
    run_dir = outcome.run_dir
    assert run_dir.name == "t-tune"
    trials = _trials(run_dir)
    assert len(trials) == TRIALS and all(t.state.name == "COMPLETE" for t in trials)
    assert [study.study_name for study in optuna.get_all_study_summaries(
        optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run_dir / "tune.journal"))))] \
        == ["conv"], "identity has nothing to tune"
    tuned = yaml.safe_load(outcome.tuned.read_text())
    assert tuned["not_tuned"] == ["identity"] and list(tuned["experiments"]) == ["conv"]
    held_out = json.loads((run_dir / "data.json").read_text())["splits"]["holdout"]["scene_ids"]
    assert len(held_out) == 2
    for trial in trials:
        folder = run_dir / f"conv-t{trial.number:03d}" / "seed1000"
        log = pd.read_csv(folder / "train_log.csv")
        assert log["step"].max() == STEPS, "every trial trains exactly tune.steps steps"
        assert trial.value == pytest.approx(log["holdout_psnr"].max()), "objective: best held-out PSNR"
        assert 3e-5 <= trial.params["lr"] <= 3e-3
        assert not list(folder.glob("metrics_*.csv")), "a trial is never scored on val or test"
        assert not (folder / "model.pt").exists(), "a scored trial's weights are dropped"
        experiment = yaml.safe_load((folder / "experiment.yaml").read_text())
        assert experiment["train"]["lr"] == pytest.approx(trial.params["lr"]), "the trial trained at its own lr"
    train_scenes = {p.name.split(".")[0] for p in (Path(json.loads((run_dir / "data.json").read_text())["root"])
                                                    / "track1_train" / "input").glob("*.png")}
    assert set(held_out) <= train_scenes, "held-out scenes are training scenes, not val or test"
    best = max(trials, key=lambda t: t.value)
    entry = tuned["experiments"]["conv"]
    assert entry["train"]["lr"] == pytest.approx(best.params["lr"]) and entry["trial"] == best.number + 1
    assert entry["budget"]["trials"] == TRIALS and entry["budget"]["trial_steps"] == TRIALS * STEPS


def test_an_interrupted_tuning_continues_to_the_same_trials(workspace, monkeypatch):
    from bench.tune import runner

    told = []
    real_tell = runner._tell

    def tell_then_stop(run_dir, cfg, study, exp, number):
        real_tell(run_dir, cfg, study, exp, number)
        told.append(number)
        if len(told) == 2:
            raise KeyboardInterrupt("stopped after two trials")

    monkeypatch.setattr(runner, "_tell", tell_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _tune(workspace)
    assert len(_trials(workspace / "runs" / "t-tune")) == 2
    monkeypatch.setattr(runner, "_tell", real_tell)
    resumed = _tune(workspace)
    straight = _tune(workspace, out="straight")
    a, b = _trials(resumed.run_dir), _trials(straight.run_dir)
    assert len(a) == TRIALS, "exactly the budget, no trial twice"
    assert [t.params for t in a] == [t.params for t in b], "the same proposals as an uninterrupted tuning"
    assert [t.value for t in a] == pytest.approx([t.value for t in b])
    again = _tune(workspace)
    assert len(_trials(again.run_dir)) == TRIALS, "a finished study is reused, not extended"


def test_bench_run_tuned_applies_the_chosen_values_and_refuses_files_that_do_not_fit(workspace, capsys):
    from bench.cli.run import with_tuned
    from bench.harness.fingerprints import experiment_fingerprint
    from bench.harness.job import ExperimentJob
    from bench.harness.prepare import PreparedRun

    outcome = _tune(workspace)
    chosen = yaml.safe_load(outcome.tuned.read_text())["experiments"]["conv"]["train"]["lr"]
    cfg = with_tuned(_cfg(workspace), outcome.tuned, None)
    assert cfg.experiment("conv").train.lr == pytest.approx(chosen) and cfg.experiment("identity").train.lr is None
    assert "conv: lr" in capsys.readouterr().out
    plain = _cfg(workspace)
    job = ExperimentJob.of(PreparedRun(cfg, Path("/x"), Path("/x")), cfg.experiment("conv"), 0)
    assert job.cfg.train.lr == pytest.approx(chosen)
    assert job.fingerprint != experiment_fingerprint(plain, plain.experiment("conv"), 0)
    with pytest.raises(ConfigError, match="made for another config"):
        with_tuned(_cfg(workspace, "train.batch_size=4"), outcome.tuned, None)
    with pytest.raises(ConfigError, match="experiments.conv: tuned for another experiment of that name"):
        with_tuned(_cfg(workspace, "experiments.conv.residual=true"), outcome.tuned, None)
    assert with_tuned(_cfg(workspace, "seeds=[0,1]"), outcome.tuned, "conv").experiments[0].name == "conv", \
        "other evaluation seeds and --only keep the file valid"
    text = outcome.tuned.read_text()
    outside = workspace / "outside.yaml"
    outside.write_text(text.replace(f"lr: {chosen}", "lr: 0.5", 1))
    with pytest.raises(ConfigError, match=r"experiments.conv.train: lr 0.5 lies outside \[3e-05, 0.003\]"):
        with_tuned(_cfg(workspace), outside, None)
    unknown = workspace / "unknown.yaml"
    unknown.write_text(text.replace("\n  conv:\n", "\n  convv:\n", 1))
    with pytest.raises(ConfigError, match="experiments.convv: no such experiment"):
        with_tuned(_cfg(workspace), unknown, None)
    code = workspace / "code.yaml"
    code.write_text("format: 1\nexperiments: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError):
        with_tuned(_cfg(workspace), code, None)


@pytest.mark.parametrize("tune, message", [
    ({"space": {"momentum": {"low": 0.1, "high": 0.9}}}, "tune.space.momentum: unknown key"),
    ({"space": {"lr": {"low": 0.01, "high": 0.001}}}, "tune.space.lr: empty range"),
    ({"trials": -2}, "tune.trials: expected an integer >= 1"),
    ({"steps": 0}, "tune.steps: expected an integer or null, got 0"),
    ({"seeds": [0]}, "tune.seeds: expected distinct seeds none of which is an evaluation seed"),
    ({"space": {"lr": None}}, "tune.space: nothing to search"),
])
def test_bad_tune_sections_are_clear_errors(workspace, tune, message):
    from bench.harness.config import parse_config

    text = yaml.safe_dump({"experiments": [{"name": "a", "model": "identity"}], "tune": tune})
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_config(text)


def test_a_study_made_for_another_budget_is_refused(workspace):
    _tune(workspace)
    with pytest.raises(BenchError, match="made for another tuning protocol"):
        _tune(workspace, "tune.trials=4")


def test_a_failed_trial_counts_as_the_worst_value(workspace, monkeypatch):
    from bench.tune import runner, trials

    real = trials.trial_score
    monkeypatch.setattr(runner, "trial_score", lambda run_dir, cfg, exp, number: math.nan if number == 1
                        else real(run_dir, cfg, exp, number))
    outcome = _tune(workspace)
    values = [t.value for t in _trials(outcome.run_dir)]
    assert values[1] == 0.0 and len(values) == TRIALS, "told the worst PSNR, counted, not retried"
    entry = yaml.safe_load(outcome.tuned.read_text())["experiments"]["conv"]
    assert entry["budget"]["failed_trials"] == [2] and entry["trial"] != 2


@pytest.mark.slow
def test_local_launcher_with_two_jobs_tunes_to_the_same_result_as_inline(workspace, monkeypatch):
    """Rounds of two trials: `--launcher local --jobs 2` runs each round's trials at once, in subprocesses, and
    ends with the same trials and the same tuned.yaml as running them one after another here."""
    import os

    from bench.tune.runner import tune

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(workspace), os.environ.get("PYTHONPATH", "")]))
    inline = tune(_cfg(workspace, "tune.parallel=2", "launcher.threads=1"), workspace / "inline", progress=False)
    local = tune(_cfg(workspace, "tune.parallel=2", "launcher.jobs=2", "launcher.threads=1"), workspace / "local",
                 launcher="local", progress=False)
    a, b = _trials(inline.run_dir), _trials(local.run_dir)
    assert [t.params for t in a] == [t.params for t in b] and len(a) == TRIALS
    assert [t.value for t in a] == pytest.approx([t.value for t in b])
    picked = [yaml.safe_load(o.tuned.read_text())["experiments"]["conv"]["train"] for o in (inline, local)]
    assert picked[0] == picked[1]


def test_a_tuned_run_reports_each_rows_values_and_budget(workspace, capsys):
    from bench.cli import main

    outcome = _tune(workspace)
    entry = yaml.safe_load(outcome.tuned.read_text())["experiments"]["conv"]
    args = ["run", str(workspace / "c.yaml"), "--out", str(workspace / "runs"), "--no-progress"]
    assert main(args + ["--tuned", str(outcome.tuned)]) == 0
    run_dir = workspace / "runs" / "t"
    assert (run_dir / "tuned.yaml").read_text() == outcome.tuned.read_text(), "the run keeps the file it used"
    record = json.loads((run_dir / "results.json").read_text())["tuned"]
    assert record["experiments"]["conv"]["train"] == entry["train"] and record["experiments"]["conv"]["study"] == "conv"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["experiments"][0]["train"]["lr"] == pytest.approx(entry["train"]["lr"])
    table = pd.read_csv(run_dir / "tables" / "table2.csv").set_index("experiment")
    assert table.loc["conv", "tuning"].startswith(f"tuned: lr {entry['train']['lr']:.3g} (trial {entry['trial']} of "
                                                  f"{TRIALS} × {STEPS} steps × 1 seed(s)")
    assert table.loc["identity", "tuning"].startswith("not tuned")
    page = (run_dir / "report.html").read_text()
    section = page[page.index('<section id="tuning">'):page.index('<section id="visual">')]
    assert "Best held-out score so far" in section and section.count("<tr>") == TRIALS + 1
    assert "on 2 training scenes held out of training" in section
    assert main(args) == 0, "the same config without --tuned: trains at the shared lr again"
    assert not (run_dir / "tuned.yaml").exists(), "no stale copy crediting a tuning not in force"
    assert json.loads((run_dir / "results.json").read_text())["tuned"] is None
    table = pd.read_csv(run_dir / "tables" / "table2.csv").set_index("experiment")
    assert table.loc["conv", "tuning"] == "not tuned (shared lr 0.0003)"
