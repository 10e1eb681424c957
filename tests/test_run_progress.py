"""The whole run in view (bench.harness.run_progress): units done of total, elapsed, an estimate of the time left.

Fake unit folders with hand-written ``unit.json`` records (explicit timestamps) and ``result.json`` rows; every
expected number is computed by hand here.  No training; only the launcher tests import what imports torch.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.harness import unit_state
from bench.harness.run_progress import (PlannedUnit, RunBar, UnitSnapshot, estimate, format_duration, format_left,
                                        format_line, parse_stamp, plan_run_folder, snapshots)

T0 = 1_700_000_000.0  # the run's start, in seconds since the epoch


def stamp(seconds: float) -> str:
    """A record's timestamp for ``seconds`` since the epoch (what unit_state writes)."""
    return time.strftime(unit_state.STAMP_FORMAT, time.localtime(seconds))


def write_unit(folder: Path, state: str, started: float | None = None, updated: float | None = None,
               train_seconds: float | None = None) -> Path:
    """A unit folder with a ``unit.json`` record and, with ``train_seconds``, a ``result.json`` row."""
    info = {"started": stamp(started)} if started is not None else {}
    if updated is not None:
        info["updated"] = stamp(updated)
    unit_state.write_state(folder, state, **info)
    if train_seconds is not None:
        (folder / "result.json").write_text(json.dumps({"rows": [{"steps": 100, "train_seconds": train_seconds}]}))
    return folder


def unit(tmp_path: Path, name: str, model: str, steps: int, state: str, **times) -> UnitSnapshot:
    """A snapshot of one fake unit, read back from its folder as the run's readers do."""
    plan = PlannedUnit(tmp_path / name / "seed0", model, steps)
    write_unit(plan.folder, state, **times)
    return snapshots([plan])[0]


@pytest.fixture
def mixed_run(tmp_path):
    """mbnet done twice (200 s and 220 s for 100 steps), a small network done (20 s), pgar running (not measured
    yet), an mbnet unit of 50 steps pending and a small one not run."""
    return [
        unit(tmp_path, "mb_a", "mbnet", 100, "done", started=T0, updated=T0 + 200, train_seconds=190),
        unit(tmp_path, "mb_b", "mbnet", 100, "done", started=T0 + 200, updated=T0 + 420, train_seconds=210),
        unit(tmp_path, "small", "small_net", 100, "done", started=T0 + 420, updated=T0 + 440, train_seconds=15),
        unit(tmp_path, "pgar", "pgar", 100, "running", started=T0 + 440),
        unit(tmp_path, "mb_c", "mbnet", 50, "pending"),
        unit(tmp_path, "small_b", "small_net", 100, "not run"),
    ]


def test_rates_per_model_and_the_mean_for_a_model_not_measured(mixed_run):
    now = T0 + 470  # the pgar unit has run 30 s
    est = estimate(mixed_run, now, run_started=T0)
    # mbnet: (200 + 220) s over 200 steps; small_net: 20 s over 100 steps
    assert est.rates == pytest.approx({"mbnet": 2.1, "small_net": 0.2})
    # pgar is not measured: the mean over the measured units' rates, (2.0 + 2.2 + 0.2) / 3 s per step
    mean = (2.0 + 2.2 + 0.2) / 3
    pgar_left = mean * 100 - 30
    mbnet_left = 2.1 * 50
    small_left = 0.2 * 100
    assert est.left_s == pytest.approx(pgar_left + mbnet_left + small_left)  # 116.67 + 105 + 20 = 241.67 s
    assert (est.total, est.done, est.failed, est.unfinished) == (6, 3, 0, 3)
    assert est.elapsed_s == pytest.approx(470)
    assert format_line(est) == "run: 3/6 units done | 7 min 50 s elapsed | about 4 min left (+ timing phase)"


def test_a_running_unit_past_its_estimate_counts_zero_not_less(tmp_path):
    units = [unit(tmp_path, "a", "conv", 100, "done", started=T0, updated=T0 + 100, train_seconds=90),
             unit(tmp_path, "b", "conv", 100, "running", started=T0 + 100),
             unit(tmp_path, "c", "conv", 10, "pending")]
    est = estimate(units, T0 + 400, run_started=T0)  # b has run 300 s, its estimate is 100 s
    assert est.left_s == pytest.approx(0 + 1.0 * 10)


def test_before_any_unit_finished_there_is_no_estimate(tmp_path):
    units = [unit(tmp_path, "a", "mbnet", 100, "running", started=T0 + 5),
             unit(tmp_path, "b", "pgar", 100, "pending")]
    est = estimate(units, T0 + 65, run_started=T0)
    assert est.left_s is None and est.rates == {}
    assert format_line(est) == "run: 0/2 units done | 1 min 5 s elapsed | estimating after the first unit"


def test_reused_and_earlier_units_do_not_set_the_rates(tmp_path):
    units = [
        # reused in this run: running then done within a second, though its training took 300 s
        unit(tmp_path, "reused", "mbnet", 100, "done", started=T0 + 1, updated=T0 + 1, train_seconds=300),
        # an earlier run's, measured then: started before this run
        unit(tmp_path, "earlier", "mbnet", 100, "done", started=T0 - 5000, updated=T0 - 4000, train_seconds=990),
        # finished by an older version: no started
        unit(tmp_path, "old", "mbnet", 100, "done", updated=T0 - 9000, train_seconds=500),
        unit(tmp_path, "todo", "mbnet", 100, "pending"),
    ]
    est = estimate(units, T0 + 10, run_started=T0)
    assert est.done == 3 and est.left_s is None  # all three count as done; none measures this run
    assert format_line(est).endswith("| estimating after the first unit this run trains")
    measured = unit(tmp_path, "fresh", "mbnet", 100, "done", started=T0 + 1, updated=T0 + 301, train_seconds=290)
    est = estimate([*units, measured], T0 + 301, run_started=T0)
    assert est.rates == pytest.approx({"mbnet": 3.0}) and est.left_s == pytest.approx(300.0)


def test_a_model_with_nothing_to_train_does_not_drag_the_mean(tmp_path):
    units = [unit(tmp_path, "identity", "identity", 100, "done", started=T0, updated=T0 + 2, train_seconds=0.0),
             unit(tmp_path, "conv", "conv", 100, "done", started=T0 + 2, updated=T0 + 102, train_seconds=95),
             unit(tmp_path, "mbnet", "mbnet", 100, "pending")]
    est = estimate(units, T0 + 102, run_started=T0)
    assert est.rates == pytest.approx({"identity": 0.02, "conv": 1.0})
    assert est.left_s == pytest.approx(100.0)  # the mean over the units that trained: conv's 1 s per step


def test_failed_units_are_finished_work_reported_apart(tmp_path):
    units = [unit(tmp_path, "a", "conv", 10, "done", started=T0, updated=T0 + 10, train_seconds=9),
             unit(tmp_path, "b", "conv", 10, "failed", started=T0 + 10, updated=T0 + 11),
             unit(tmp_path, "c", "conv", 10, "killed", started=T0 + 11, updated=T0 + 12)]
    est = estimate(units, T0 + 500, run_started=T0)
    assert (est.done, est.failed, est.finished, est.unfinished) == (1, 2, 3, 0)
    assert est.rates == pytest.approx({"conv": 1.0})  # a failed unit measures nothing
    assert est.elapsed_s == pytest.approx(12)  # nothing left: the clock stops at the last unit's end
    assert format_line(est) == "run: 1/3 units done, 2 failed | 12 s elapsed | no unit left"


def test_without_a_known_start_elapsed_counts_from_the_earliest_started_unit(tmp_path):
    units = [unit(tmp_path, "a", "conv", 10, "running", started=T0 + 100),
             unit(tmp_path, "b", "conv", 10, "done", started=T0 + 40, updated=T0 + 100, train_seconds=50)]
    est = estimate(units, T0 + 160)
    assert est.elapsed_s == pytest.approx(120) and est.left_s == pytest.approx(0.0)


@pytest.mark.parametrize("seconds, duration, left", [(42, "42 s", "40 s"), (252, "4 min 12 s", "4 min"),
                                                     (3930, "1 h 05 min", "1 h 06 min")])
def test_durations_read_as_people_say_them(seconds, duration, left):
    assert format_duration(seconds) == duration and format_left(seconds) == left


def test_update_state_records_when_a_unit_started_and_keeps_it(tmp_path):
    folder = tmp_path / "exp" / "seed0"
    unit_state.write_state(folder, unit_state.PENDING, job="7")
    assert "started" not in unit_state.read_state(folder)
    before = time.time()
    running = unit_state.update_state(folder, unit_state.RUNNING, pid=1)
    assert before - 1 <= parse_stamp(running["started"]) <= time.time()
    done = unit_state.update_state(folder, unit_state.DONE)
    assert done["started"] == running["started"] and done["job"] == "7"
    unit_state.write_state(folder, unit_state.PENDING)  # a new submission: a new attempt
    assert "started" not in unit_state.read_state(folder)


def fake_run_folder(tmp_path: Path, start: float, **train) -> Path:
    """A run folder as `bench run` leaves it, without training: config.yaml, data.json, unit records."""
    run_dir = tmp_path / "runs" / "fake"
    run_dir.mkdir(parents=True)
    cfg = {"name": "fake", "seeds": [0, 1], "train": {"steps": 100, "batch_size": 3, **train},
           "experiments": [{"name": "big", "model": "mbnet"}, {"name": "small", "model": "pgar", "extra_data": True}]}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    splits = {"train:": {"samples": 10}, "train:extra_input,mirror": {"samples": 30}}
    (run_dir / "data.json").write_text(json.dumps({"written": stamp(start), "splits": splits}))
    write_unit(run_dir / "big" / "seed0", "done", started=start + 1, updated=start + 201, train_seconds=190)
    write_unit(run_dir / "big" / "seed1", "done", started=start + 201, updated=start + 421, train_seconds=210)
    write_unit(run_dir / "small" / "seed0", "pending")
    return run_dir


def test_bench_status_prints_the_whole_run_line(tmp_path, capsys):
    run_dir = fake_run_folder(tmp_path, time.time() - 600)
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert sorted(out[-2].split(", ")) == ["1 not run", "1 pending", "2 done"]  # the counts line, then the run's
    # small (pgar) has no rate: the mean of mbnet's units (2.0 and 2.2 s/step) times 100 steps, twice
    assert re.fullmatch(r"run: 2/4 units done \| (9 min 5\d s|10 min \d+ s) elapsed \| about 7 min left "
                        r"\(\+ timing phase\)", out[-1]), out[-1]


def test_planned_steps_follow_epochs_over_the_training_pairs(tmp_path):
    run_dir = fake_run_folder(tmp_path, T0, epochs=2)
    steps = {p.folder.relative_to(run_dir).as_posix(): (p.model, p.steps) for p in plan_run_folder(run_dir)}
    # 2 epochs of ceil(10 / 3) = 4 batches; with extra data ceil(30 / 3) = 10 batches
    assert steps == {"big/seed0": ("mbnet", 8), "big/seed1": ("mbnet", 8),
                     "small/seed0": ("pgar", 20), "small/seed1": ("pgar", 20)}


def test_launcher_summary_appends_the_run_line(tmp_path, monkeypatch):
    from bench.launch.progress import UnitProgress
    from bench.launch.units import Unit

    run_dir = fake_run_folder(tmp_path, T0)
    units = [Unit(e, s, run_dir / e / f"seed{s}") for e in ("big", "small") for s in (0, 1)]
    progress = UnitProgress(units, stream=io.StringIO())  # plans from the run folder's config.yaml
    progress.started_wall = T0
    monkeypatch.setattr(time, "time", lambda: T0 + 600)
    records = {u: unit_state.read_state(u.folder) for u in units}
    summary = progress.summary(records)
    assert summary.startswith("2 done, 1 not run, 1 pending (")
    assert summary.endswith("; run: 2/4 units done | 10 min 0 s elapsed | about 7 min left (+ timing phase)"), summary
    given = UnitProgress(units[:1], stream=io.StringIO(), plans=[PlannedUnit(units[0].folder, "mbnet", 100)])
    given.started_wall = T0
    assert given.run_line({units[0]: records[units[0]]}, now=T0 + 600) == \
        "run: 1/1 units done | 3 min 21 s elapsed | no unit left"


def test_launcher_summary_without_plans_is_the_counts_alone(tmp_path):
    from bench.launch.progress import UnitProgress
    from bench.launch.units import Unit

    units = [Unit("x", 0, tmp_path / "nowhere" / "x" / "seed0")]
    progress = UnitProgress(units, stream=io.StringIO())
    summary = progress.summary({units[0]: {"state": "pending"}})
    assert summary.startswith("1 pending (") and "run:" not in summary


def test_the_inline_run_bar_shows_the_line(tmp_path, capsys):
    plan = PlannedUnit(tmp_path / "a" / "seed0", "conv", 10)
    write_unit(plan.folder, "running", started=time.time())
    bar = RunBar([plan, PlannedUnit(tmp_path / "b" / "seed0", "conv", 10)], enabled=True)
    assert bar.bar is not None and bar.bar.pos == 0 and bar.bar.total == 2
    bar.close()
    assert "run: 0/2 units done | 0 s elapsed | estimating after the first unit" in capsys.readouterr().err
    quiet = RunBar([plan], enabled=False)
    quiet.refresh()
    assert quiet.bar is None


def test_with_restart_the_inline_bar_counts_units_not_reached_yet_as_to_do(tmp_path, capsys):
    plans = [PlannedUnit(tmp_path / name / "seed0", "conv", 10) for name in ("a", "b")]
    for plan in plans:  # an earlier run's, finished
        write_unit(plan.folder, "done", started=T0, updated=T0 + 10, train_seconds=9)
    plain = RunBar(plans, enabled=True)
    assert plain.bar.n == 2  # without restart they will be reused: done
    plain.close()
    bar = RunBar(plans, enabled=True, restart=True)
    assert bar.bar.n == 0
    write_unit(plans[0].folder, "done", started=time.time(), updated=time.time(), train_seconds=0.5)
    bar.advance()
    assert bar.bar.n == 1
    bar.close()
    assert "run: 1/2 units done | 0 s elapsed | about 10 s left (+ timing phase)" in capsys.readouterr().err
