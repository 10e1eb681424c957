"""Lock files (bench.harness.lock): take-over of a stale lock under ``<lock>.takeover``, owners named by pid, boot
id and process start time, and lock files with bad contents.  The busy / Slurm / requeue rules are tested in
test_launchers.py and test_reliability.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.harness import lock_owner
from bench.harness.lock import GUARD_STALE_S, RunFolderBusy, SharedFilesLock, UnitLock
from bench.harness.lock_owner import boot_id, current_owner, parse_owner, process_start_ticks, read_record

REPO = Path(__file__).resolve().parent.parent
HAS_PROC = Path("/proc/self/stat").is_file() and boot_id() is not None
ROUNDS = 200

# One racer: for each round, wait for the go file, try the unit lock at once, and while holding it log "+",
# hold it a moment, check the lock file still carries its own token, log "-" and release.  ``owner_gone`` sleeps
# a random moment before answering, so the two racers judge the stale owner, then take over, at different times.
RACER = r"""
import json, os, random, sys, time
from pathlib import Path
from bench.harness import lock as locks
locks.log.disabled = True
folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
judge = locks.owner_gone
def slow_owner_gone(owner):
    gone = judge(owner)
    time.sleep(random.uniform(0, 0.01))
    return gone
locks.owner_gone = slow_owner_gone
def note(line):
    fd = os.open(folder / "holders.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)
for r in range(rounds):
    while not (folder / f"go{r}").exists():
        time.sleep(0.0002)
    lock = locks.UnitLock(folder / "unit")
    try:
        lock.acquire()
    except locks.RunFolderBusy:
        pass
    else:
        note(f"{r} + {os.getpid()}\n")
        time.sleep(0.02)
        try:
            mine = json.loads(lock.path.read_text()).get("token") == lock._token
        except (OSError, ValueError):
            mine = False
        note(f"{r} - {os.getpid()} {'ok' if mine else 'lost'}\n")
        lock.release()
    (folder / f"done{r}-{os.getpid()}").touch()
"""


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped): no process on this host has it now."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def record(**fields) -> dict:
    """An owner record on this host, made now; ``fields`` override."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "job": None, "since": "x", "created": time.time(),
            "boot_id": boot_id(), "start_ticks": process_start_ticks(os.getpid()), "token": "t0", **fields}


def write_lock(path: Path, owner: dict | str, age_s: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(owner if isinstance(owner, str) else json.dumps(owner))
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))


@pytest.fixture
def no_slurm(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sleeper():
    """A live process on this host (not this one), ended afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def count_holders(log_text: str) -> tuple[int, int, set[int]]:
    """From the racers' log: rounds in which a second holder came in while one held the lock, holders that found
    their lock file no longer theirs, and the rounds that had a holder."""
    active: set[str] = set()
    overlapping, held = set(), set()
    lost = 0
    for line in log_text.splitlines():
        r, sign, pid, *rest = line.split()
        held.add(int(r))
        if sign == "+":
            if active:
                overlapping.add(int(r))
            active.add(pid)
        else:
            active.discard(pid)
            lost += rest == ["lost"]
    return len(overlapping), lost, held


def test_two_takers_of_one_stale_lock_never_both_hold_it(tmp_path, no_slurm):
    """200 rounds: a lock left by a dead pid, two processes released at once to take it over, each with a random
    delay between judging the owner gone and taking over.  One of them holds it, never both."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PYTHONPATH"] = str(REPO)
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(ROUNDS)], cwd=REPO, env=env)
              for _ in range(2)]
    lock_file, dead, finished = tmp_path / "unit" / ".unit.lock", dead_pid(), False
    lock_file.parent.mkdir()
    try:
        for r in range(ROUNDS):
            write_lock(tmp_path / "stale.tmp", record(pid=dead, token=f"dead{r}"))
            os.replace(tmp_path / "stale.tmp", lock_file)
            (tmp_path / f"go{r}").touch()
            deadline = time.monotonic() + 60
            while waiting := [p for p in racers if not (tmp_path / f"done{r}-{p.pid}").exists()]:
                assert time.monotonic() < deadline, f"round {r}: no answer from a racer in a minute"
                assert all(p.poll() is None for p in waiting), f"round {r}: a racer ended early"
                time.sleep(0.001)
        finished = True
    finally:
        for p in racers:
            if not finished:
                p.kill()
            p.wait(timeout=60)
    codes = [p.returncode for p in racers]
    assert codes == [0, 0]
    overlapping, lost, held = count_holders((tmp_path / "holders.log").read_text())
    assert (overlapping, lost) == (0, 0), f"{overlapping} round(s) with two holders, {lost} lost lock(s)"
    assert held == set(range(ROUNDS)), "every round, one of the two took the stale lock over"
    assert not lock_file.exists() and not (tmp_path / "unit" / ".unit.lock.takeover").exists()


def test_take_over_removes_only_the_lock_that_was_judged_gone(tmp_path, no_slurm):
    """The forced interleaving, in one process: judged gone from one read, replaced by a live holder before the
    take-over: the live holder's file stays."""
    path = tmp_path / ".unit.lock"
    write_lock(path, record(pid=dead_pid(), token="dead"))
    taker = UnitLock(tmp_path)
    owner, seen = read_record(path)
    assert taker._is_stale(owner)
    path.unlink()
    write_lock(path, record(token="live"))  # someone else took it over meanwhile, and holds it
    assert taker._take_over(seen, owner) is True  # "look again": nothing removed
    assert read_record(path)[0]["token"] == "live"
    with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
        taker.acquire()


@pytest.mark.parametrize("guard_text", ["owner", "garbage"])
def test_a_takeover_file_older_than_a_minute_is_cleared(tmp_path, no_slurm, guard_text):
    lock_file, guard = tmp_path / ".unit.lock", tmp_path / ".unit.lock.takeover"
    write_lock(lock_file, record(pid=dead_pid()))
    old = GUARD_STALE_S + 30
    write_lock(guard, record(created=time.time() - old) if guard_text == "owner" else "{not json", age_s=old)
    with UnitLock(tmp_path):
        assert read_record(lock_file)[0]["token"] != "t0"
        assert not guard.exists()
    assert not lock_file.exists() and not guard.exists() and not (tmp_path / ".unit.lock.takeover.break").exists()


def test_a_takeover_file_and_its_break_file_both_left_by_the_dead_are_cleared(tmp_path, no_slurm):
    lock_file, guard = tmp_path / ".unit.lock", tmp_path / ".unit.lock.takeover"
    write_lock(lock_file, record(pid=dead_pid()))
    for path in (guard, tmp_path / ".unit.lock.takeover.break"):
        write_lock(path, record(created=time.time() - 2 * GUARD_STALE_S), age_s=2 * GUARD_STALE_S)
    with UnitLock(tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_fresh_takeover_file_makes_the_taker_fail_or_wait_as_for_a_busy_lock(tmp_path, no_slurm):
    """Another process is taking the lock over this instant: a unit lock is busy (naming that process), the
    shared-files lock waits until the ``.takeover`` file is gone."""
    lock_file, guard = tmp_path / ".unit.lock", tmp_path / ".unit.lock.takeover"
    stale = record(pid=dead_pid())
    write_lock(lock_file, stale)
    write_lock(guard, record(pid=4242, host="taker-node", token="g"))
    with pytest.raises(RunFolderBusy, match="pid 4242 on taker-node"):
        UnitLock(tmp_path).acquire()
    assert json.loads(lock_file.read_text()) == stale and guard.exists()

    shared, shared_guard = tmp_path / ".shared.lock", tmp_path / ".shared.lock.takeover"
    write_lock(shared, record(created=time.time() - 3600, pid=1, host="other-node"))  # past SHARED_STALE_S
    write_lock(shared_guard, record(token="g"))
    with pytest.raises(RunFolderBusy, match="shared-files lock"):
        SharedFilesLock(tmp_path, wait_s=0.2).acquire()
    timer = threading.Timer(0.3, shared_guard.unlink)
    start = time.monotonic()
    timer.start()
    try:
        with SharedFilesLock(tmp_path, wait_s=10):
            assert time.monotonic() - start >= 0.3
            assert read_record(shared)[0]["pid"] == os.getpid()
    finally:
        timer.cancel()
    assert not shared.exists() and not shared_guard.exists()


def test_the_owner_record_names_the_process_by_boot_and_start_time():
    owner = current_owner()
    assert {"host", "pid", "job", "since", "created", "boot_id", "start_ticks"} <= set(owner)
    if HAS_PROC:
        assert owner["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert owner["start_ticks"] == int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        assert parse_owner(json.dumps({**owner, "token": "t"}))["start_ticks"] == owner["start_ticks"]


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc (boot id and process start times)")
def test_a_reused_pid_does_not_keep_a_dead_lock_alive(tmp_path, no_slurm, sleeper):
    ticks = process_start_ticks(sleeper.pid)
    assert ticks is not None
    lock_file = tmp_path / ".unit.lock"
    write_lock(lock_file, record(pid=sleeper.pid, start_ticks=ticks))  # that very process: alive
    with pytest.raises(RunFolderBusy, match=f"pid {sleeper.pid}"):
        UnitLock(tmp_path).acquire()
    assert UnitLock(tmp_path).live_holder()["pid"] == sleeper.pid
    write_lock(lock_file, record(pid=sleeper.pid, start_ticks=ticks + 1))  # the pid now names another process
    assert UnitLock(tmp_path).live_holder() is None
    with UnitLock(tmp_path):
        assert read_record(lock_file)[0]["pid"] == os.getpid()


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc (boot id and process start times)")
def test_a_lock_from_an_earlier_boot_of_this_host_is_taken_over(tmp_path, no_slurm, sleeper):
    lock_file = tmp_path / ".unit.lock"
    write_lock(lock_file, record(pid=sleeper.pid, start_ticks=process_start_ticks(sleeper.pid),
                                 boot_id="00000000-0000-0000-0000-000000000000"))
    with UnitLock(tmp_path):
        assert read_record(lock_file)[0]["boot_id"] == boot_id()


def test_without_proc_the_pid_alone_decides(tmp_path, no_slurm, sleeper, monkeypatch):
    monkeypatch.setattr(lock_owner, "boot_id", lambda: None)
    monkeypatch.setattr(lock_owner, "process_start_ticks", lambda pid: None)
    lock_file = tmp_path / ".unit.lock"
    write_lock(lock_file, record(pid=sleeper.pid, start_ticks=1, boot_id="another-boot"))
    with pytest.raises(RunFolderBusy, match=f"pid {sleeper.pid}"):  # cannot tell it from its earlier self
        UnitLock(tmp_path).acquire()
    old_style = {"host": socket.gethostname(), "pid": sleeper.pid, "job": None, "since": "x", "created": time.time()}
    write_lock(lock_file, old_style)  # written before boot ids and start times were recorded
    with pytest.raises(RunFolderBusy):
        UnitLock(tmp_path).acquire()
    write_lock(lock_file, {**old_style, "pid": dead_pid()})
    with UnitLock(tmp_path):
        pass


MALFORMED = {
    "pid not a number": json.dumps({"host": "h", "pid": "abc", "job": None, "since": "x", "created": 1.0}),
    "created not a number": json.dumps({"host": socket.gethostname(), "pid": 1, "created": "x"}),
    "a list": json.dumps([1, 2, 3]),
    "a string": json.dumps("locked"),
    "null": "null",
    "empty object": "{}",
    "pid missing": json.dumps({"host": socket.gethostname(), "created": 1.0}),
    "host not a string": json.dumps({"host": 5, "pid": 1, "created": 1.0}),
    "pid zero": json.dumps({"host": socket.gethostname(), "pid": 0, "created": 1.0}),
    "pid true": json.dumps({"host": socket.gethostname(), "pid": True, "created": 1.0}),
    "created NaN": '{"host": "h", "pid": 1, "created": NaN}',
    "created huge": '{"host": "h", "pid": 1, "created": 1' + "0" * 400 + "}",
    "job a list": json.dumps({"host": "h", "pid": 1, "created": 1.0, "job": [7]}),
    "start_ticks a string": json.dumps({"host": "h", "pid": 1, "created": 1.0, "start_ticks": "9"}),
    "not JSON": "pid=12 host=node1",
    "truncated": '{"host": "node1", "pid": 12, "crea',
    "not UTF-8": "\udcff\udcfe",
    "deeply nested": "[" * 100000 + "]" * 100000,
    "empty": "",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_lock_file_with_bad_contents_is_judged_by_its_age(tmp_path, no_slurm, name):
    lock_file = tmp_path / ".unit.lock"
    text = MALFORMED[name]
    if name == "not UTF-8":
        lock_file.write_bytes(b"\xff\xfe{")
    else:
        write_lock(lock_file, text)
    assert read_record(lock_file)[0] == {}
    with pytest.raises(RunFolderBusy):  # recent: perhaps being written this instant
        UnitLock(tmp_path).acquire()
    assert UnitLock(tmp_path).live_holder() == {}
    then = time.time() - GUARD_STALE_S - 10
    os.utime(lock_file, (then, then))
    assert UnitLock(tmp_path).live_holder() is None
    with UnitLock(tmp_path):  # old: left by a dead writer, taken over
        assert read_record(lock_file)[0]["pid"] == os.getpid()
    assert not lock_file.exists()


def test_a_shared_lock_with_bad_contents_and_a_held_lock_overwritten_with_garbage(tmp_path, no_slurm):
    shared = tmp_path / ".shared.lock"
    write_lock(shared, MALFORMED["created not a number"])
    with pytest.raises(RunFolderBusy, match="shared-files lock"):
        SharedFilesLock(tmp_path, wait_s=0.1).acquire()
    write_lock(shared, MALFORMED["a list"], age_s=GUARD_STALE_S + 10)
    lock = SharedFilesLock(tmp_path, wait_s=0)
    with lock:
        shared.write_text("[]")  # no longer this process's record: release leaves it
    assert shared.read_text() == "[]"
