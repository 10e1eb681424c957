"""Where does a run's memory go?  Resident memory sampled through a whole `bench run`, phase by phase.

    python -m benchmarks.run_memory benchmark.yaml --out /tmp/memory-runs [--set key=value ...] [--json FILE]

Runs the config inline in this process (as `python -m bench run` does) while a thread reads the process's
resident set size from ``/proc/self/statm`` every 50 ms.  The harness's own log lines mark the phases: data
preparation, each unit (training and scoring one experiment x seed), the timing phase, the final results.  It
prints one line per phase: when it started, how long it took, the RSS at its start and its peak; and at the end
the process's high-water mark (``ru_maxrss``, what `/usr/bin/time -v` reports as "Maximum resident set size").
Samples 50 ms apart can miss a shorter peak: the high-water mark is the number to quote, the phases say where
it was reached.  Linux only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@dataclass
class Phase:
    label: str
    start_s: float
    start_rss: int
    peak_rss: int
    end_s: float = 0.0


@dataclass
class MemoryTrace:
    """Phases in order; the sampler raises the current phase's peak, the log handler opens new phases."""

    t0: float = field(default_factory=time.monotonic)
    phases: list[Phase] = field(default_factory=list)

    def begin(self, label: str) -> None:
        now, rss = time.monotonic() - self.t0, rss_bytes()
        if self.phases:
            self.phases[-1].end_s = now
        self.phases.append(Phase(label, now, rss, rss))

    def sample(self) -> None:
        rss = rss_bytes()
        if self.phases and rss > self.phases[-1].peak_rss:
            self.phases[-1].peak_rss = rss


class PhaseMarker(logging.Handler):
    """Opens a phase at each harness log line that starts one (training a unit, reusing one, the timing phase)."""

    def __init__(self, trace: MemoryTrace):
        super().__init__(logging.INFO)
        self.trace = trace

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("timing phase: reloading"):
            self.trace.begin("timing phase")
        elif record.name == "bench.harness.experiment" and message.startswith("training "):
            self.trace.begin("unit " + message[len("training "):].split(" on ")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="output root of the run (as bench run --out)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path, help="also write the phases here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from bench.harness.config import load_config
    from bench.harness.run import run_benchmark

    trace = MemoryTrace()
    logging.getLogger("bench").addHandler(PhaseMarker(trace))
    trace.begin("start and data")
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(0.05):
            trace.sample()

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        run_benchmark(load_config(args.config, args.overrides), args.out, progress=False)
        trace.begin("results written")
        trace.sample()
    finally:
        stop.set()
        thread.join()
    trace.phases[-1].end_s = time.monotonic() - trace.t0
    high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\n{'phase':<28} {'start s':>8} {'seconds':>8} {'RSS at start MiB':>17} {'peak RSS MiB':>13}")
    for phase in trace.phases:
        print(f"{phase.label:<28} {phase.start_s:8.1f} {phase.end_s - phase.start_s:8.1f} "
              f"{phase.start_rss / MIB:17,.0f} {phase.peak_rss / MIB:13,.0f}")
    print(f"\nhigh-water mark (ru_maxrss): {high_water / MIB:,.0f} MiB = {high_water / (1 << 30):.2f} GiB")
    if args.json:
        args.json.write_text(json.dumps({"phases": [asdict(p) for p in trace.phases], "high_water": high_water},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
