"""The timing phase's pure parts with an injected clock: warm-up left out, summaries right, the order rotating."""

from __future__ import annotations

import math

import pytest
import torch

from bench.harness.timing import (TimedCall, pinned_threads, round_order, run_rounds, summarize,
                                  summarize_calls)
from bench.harness.timing_phase import (TimingTarget, apply_timing, choose_seeds, run_timing_phase)


class FakeClock:
    """A clock that only moves when a fake model advances it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_model(clock: FakeClock, durations: list[float], log: list[str] | None = None, name: str = ""):
    """A callable whose k-th call advances ``clock`` by ``durations[k]`` seconds (and notes its name in ``log``)."""
    calls = iter(durations)

    def forward(*_args) -> None:
        clock.now += next(calls)
        if log is not None:
            log.append(name)
    return forward


def test_warmup_calls_are_run_but_not_timed():
    clock = FakeClock()
    # two warm-up calls of 50 s each, then the timed ones of 1, 2, 3 s
    models = {"a": fake_model(clock, [50.0, 50.0, 1.0, 2.0, 3.0]), "b": fake_model(clock, [70.0, 70.0, 4.0, 5.0, 6.0])}
    calls = run_rounds(models, rounds=3, warmup=2, clock=clock)
    seconds = {name: [c.seconds for c in calls if c.name == name] for name in models}
    assert seconds == {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}
    assert len(calls) == 6 and clock.now == pytest.approx(100.0 + 240.0 + 21.0), "every warm-up call did run"


def test_zero_warmup_times_every_call():
    clock = FakeClock()
    calls = run_rounds({"a": fake_model(clock, [0.25, 0.5])}, rounds=2, warmup=0, clock=clock)
    assert [c.seconds for c in calls] == [0.25, 0.5]


def test_summary_odd_count_by_hand():
    # sorted 1 2 3 4 10; linear interpolation at (n-1) q = 4q: median at 2 -> 3; q1 at 1 -> 2; q3 at 3 -> 4;
    # p90 at 3.6 -> 4 + 0.6 * (10 - 4) = 7.6
    s = summarize([10.0, 3.0, 1.0, 4.0, 2.0])
    assert (s.median, s.q1, s.q3) == (3.0, 2.0, 4.0)
    assert s.p90 == pytest.approx(7.6)


def test_summary_even_count_by_hand():
    # sorted 1 2 3 4; positions 3q: median at 1.5 -> 2.5; q1 at 0.75 -> 1.75; q3 at 2.25 -> 3.25; p90 at 2.7 -> 3.7
    s = summarize([4.0, 1.0, 3.0, 2.0])
    assert s.median == pytest.approx(2.5) and s.q1 == pytest.approx(1.75)
    assert s.q3 == pytest.approx(3.25) and s.p90 == pytest.approx(3.7)


def test_summary_of_one_time_is_that_time():
    s = summarize([0.125])
    assert (s.median, s.p90, s.q1, s.q3) == (0.125, 0.125, 0.125, 0.125)


def test_round_order_rotates_by_one_each_round():
    names = ["a", "b", "c"]
    assert [round_order(names, r) for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
                                                          ["a", "b", "c"]]
    assert round_order([], 3) == []


def test_every_model_takes_every_position_once_over_n_rounds():
    clock = FakeClock()
    ran: list[str] = []
    names = ["m0", "m1", "m2", "m3"]
    models = {n: fake_model(clock, [0.01] * 5, ran, n) for n in names}
    calls = run_rounds(models, rounds=4, warmup=1, clock=clock)
    assert ran[:4] == names, "warm-up runs each model once first"
    assert ran[4:] == [c.name for c in calls], "calls are returned in the order they ran"
    for name in names:
        assert sorted(c.position for c in calls if c.name == name) == [0, 1, 2, 3]
    for r in range(4):
        in_round = sorted((c for c in calls if c.round == r), key=lambda c: c.position)
        assert [c.name for c in in_round] == names[r:] + names[:r]


def test_each_timed_call_is_synchronised_on_both_sides():
    clock = FakeClock()
    events: list[str] = []
    models = {"a": fake_model(clock, [1.0, 1.0], events, "a")}
    run_rounds(models, rounds=1, warmup=1, clock=clock, sync=lambda: events.append("sync"))
    assert events == ["a", "sync", "sync", "a", "sync"]


def test_summarize_calls_groups_by_model():
    calls = [TimedCall(0, 0, "a", 1.0), TimedCall(0, 1, "b", 5.0), TimedCall(1, 0, "b", 7.0),
             TimedCall(1, 1, "a", 3.0)]
    summaries = summarize_calls(calls)
    assert list(summaries) == ["a", "b"]
    assert summaries["a"].median == 2.0 and summaries["b"].median == 6.0


def test_pinned_threads_are_restored_even_after_an_error():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pinned_threads(2) as pinned:
            assert pinned == 2 and torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
        with pytest.raises(RuntimeError), pinned_threads(3):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 1
        with pinned_threads(None) as pinned:
            assert pinned == 1
    finally:
        torch.set_num_threads(before)


def test_phase_times_targets_on_one_input_with_threads_pinned_and_restored():
    clock = FakeClock()
    seen: list[tuple] = []

    def target(name: str, durations: list[float]) -> TimingTarget:
        advance = fake_model(clock, durations)

        def forward(rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
            seen.append((name, rgb.data_ptr(), tuple(rgb.shape), tuple(depth.shape),
                         rgb.is_contiguous(memory_format=torch.channels_last), torch.is_inference_mode_enabled(),
                         torch.get_num_threads()))
            advance()
            return rgb
        return TimingTarget(name, 7, forward, gflops=1.5)

    before = torch.get_num_threads()
    phase = run_timing_phase([target("x", [9.0, 1.0, 2.0, 4.0]), target("y", [9.0, 3.0, 3.0, 3.0])],
                             device=torch.device("cpu"), size=16, rounds=3, warmup=1, threads=1, clock=clock,
                             skipped={"z": "failed (seed 0): boom"}, phase_id="p1")
    assert torch.get_num_threads() == before
    assert {s[1] for s in seen} == {seen[0][1]}, "every model gets the same input tensor"
    assert all(s[2:] == ((1, 3, 16, 16), (1, 1, 16, 16), True, True, 1) for s in seen)
    assert phase.summaries["x"].median == 2.0 and phase.summaries["y"].median == 3.0
    frame = phase.frame()
    assert list(frame.columns) == ["phase", "round", "position", "experiment", "seed", "seconds"]
    assert len(frame) == 6 and set(frame["phase"]) == {"p1"} and set(frame["seed"]) == {7}
    assert phase.record() == {"phase": "p1", "device": phase.device, "threads": 1, "size": 16, "rounds": 3,
                              "warmup": 1, "order": "rotating", "timed": ["x", "y"],
                              "skipped": {"z": "failed (seed 0): boom"}, "allocator": phase.allocator}


def test_choose_seeds_takes_the_first_finished_seed_and_names_why_others_are_skipped():
    rows = [{"experiment": "a", "seed": 0, "status": "failed", "message": "nan"},
            {"experiment": "a", "seed": 1, "status": "done", "message": ""},
            {"experiment": "a", "seed": 2, "status": "done", "message": ""},
            {"experiment": "b", "seed": 0, "status": "failed", "message": "non-finite loss"},
            {"experiment": "c", "seed": 3, "status": "done", "message": ""}]
    chosen, skipped = choose_seeds(rows)
    assert chosen == {"a": 1, "c": 3}
    assert list(skipped) == ["b"] and "non-finite loss" in skipped["b"]


def test_apply_timing_fills_timed_rows_and_blanks_the_others():
    phase = run_timing_phase([TimingTarget("a", 0, lambda rgb, depth: rgb, gflops=2.0)], device=torch.device("cpu"),
                             size=8, rounds=2, warmup=0, phase_id="p2")
    rows = [{"experiment": "a", "seed": 0, "gflops": 9.0}, {"experiment": "a", "seed": 1, "gflops": 9.0},
            {"experiment": "b", "seed": 0, "gflops": 3.0}]
    out = apply_timing(rows, phase)
    for row in out[:2]:
        assert row["timing_phase"] == "p2" and row["gflops"] == 2.0 and row["timing_size"] == 8
        assert row["time_per_image_s"] == phase.summaries["a"].median and row["time_p90_s"] == phase.summaries["a"].p90
    assert out[2]["timing_phase"] == "" and math.isnan(out[2]["time_per_image_s"]) and out[2]["gflops"] == 3.0
    assert rows[0]["gflops"] == 9.0, "the input rows are not changed"



class FakeLibc:
    """Records the allocator calls :func:`steady_allocator` makes."""

    def __init__(self, accept: bool = True) -> None:
        self.calls: list[tuple] = []
        self.accept = accept

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return int(self.accept)

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_steady_allocator_raises_glibc_thresholds_for_the_block_then_restores_and_trims(monkeypatch):
    from bench.speedups import allocator

    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with pytest.raises(RuntimeError), allocator.steady_allocator() as described:
        assert "1 GiB" in described
        # glibc's malloc.h: M_MMAP_THRESHOLD is -3, M_TRIM_THRESHOLD is -1
        assert sorted(libc.calls) == [("mallopt", -3, 1 << 30), ("mallopt", -1, 1 << 30)]
        raise RuntimeError("a failing model still restores the allocator")
    assert sorted(libc.calls[2:]) == [("malloc_trim", 0), ("mallopt", -3, 128 * 1024), ("mallopt", -1, 128 * 1024)]
    assert libc.calls[-1] == ("malloc_trim", 0), "memory is given back after the thresholds are lowered"


@pytest.mark.parametrize("libc", [None, FakeLibc(accept=False)], ids=["not-glibc", "mallopt-refused"])
def test_steady_allocator_changes_nothing_without_glibc(monkeypatch, libc):
    from bench.speedups import allocator

    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with allocator.steady_allocator() as described:
        assert "unchanged" in described
    assert libc is None or all(call[0] == "mallopt" for call in libc.calls), "nothing trimmed when nothing was set"


def test_timing_phase_records_what_the_allocator_did(monkeypatch):
    from bench.speedups import allocator

    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    phase = run_timing_phase([TimingTarget("a", 0, lambda rgb, depth: rgb, gflops=0.0)], device=torch.device("cpu"),
                             size=8, rounds=1, warmup=0, phase_id="p3")
    assert phase.record()["allocator"] == "system allocator unchanged (not glibc)"
    assert "system allocator unchanged" in phase.description()


def test_flops_are_counted_in_eval_mode_and_leave_a_training_model_as_it_was():
    from bench.harness.timing import count_flops

    class Pooled(torch.nn.Module):
        """A 1x1 convolution, then BatchNorm on a 1x1 pooled map (fails in training mode at batch 1)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 3, 1)
            self.norm = torch.nn.BatchNorm2d(3)

        def forward(self, rgb, depth):
            x = self.conv(torch.cat([rgb, depth], dim=1))
            return self.norm(torch.nn.functional.adaptive_avg_pool2d(x, 1))

    model = Pooled().train()
    for device in ("meta", "cpu"):
        assert count_flops(model, (8, 8), device) == 2 * 8 * 8 * 4 * 3, "a 1x1 convolution: 2 FLOPs per MAC"
        assert model.training and model.norm.training, "the caller's model keeps its training mode"
    assert int(model.norm.num_batches_tracked) == 0, "no batch statistics were updated"


def test_nested_steady_allocator_blocks_restore_once_at_the_outermost(monkeypatch):
    from bench.speedups import allocator

    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    with allocator.steady_allocator():
        with allocator.steady_allocator() as inner:
            assert "1 GiB" in inner
        assert len(libc.calls) == 2, "the inner block neither set nor restored anything"
    assert libc.calls[-1] == ("malloc_trim", 0) and len(libc.calls) == 5
