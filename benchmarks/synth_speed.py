"""Time the built-in synthetic dataset generator.

Renders ``--scenes`` scenes (split like VIDIT: about 77 % train, the rest half validation, half test) at
``--size`` px into a temporary folder: every scene gets its input and target images and depth, and the
training scenes additionally the 4 paper conditions (6500_N, 6500_NE, 4500_E, 4500_W).  Prints the elapsed
seconds and scenes per second.  Target: 390 scenes at 256 px in under 60 s on 2 CPU cores.

Example::

    python -m benchmarks.synth_speed --scenes 390 --size 256 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from datasets.synthetic import PAPER_CONDITIONS, SyntheticSpec, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=390, help="total scenes (VIDIT: 390)")
    parser.add_argument("--size", type=int, default=256, help="image side length in pixels")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write here and keep the data instead of a temp folder")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.scenes < 1:
        parser.error("--scenes must be at least 1")
    # VIDIT proportions: 300 / 45 / 45 of 390
    val = test = round(args.scenes * 45 / 390)
    train = args.scenes - val - test
    if train < 1:
        train, val, test = args.scenes, 0, 0
    spec = SyntheticSpec(train=train, val=val, test=test, seed=args.seed, size=args.size, conditions=PAPER_CONDITIONS)
    workers = args.workers if args.workers is not None else os.cpu_count()

    tmp = Path(tempfile.mkdtemp(prefix="synth-speed-")) if args.keep is None else None
    root = args.keep if args.keep is not None else tmp / "data"
    try:
        start = time.perf_counter()
        generate(root, spec, workers=workers, progress=args.progress)
        elapsed = time.perf_counter() - start
        files = sum(len(files) for _, _, files in os.walk(root))
        size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{args.scenes} scenes ({train}/{val}/{test}), {args.size} px, conditions {','.join(spec.conditions)}, "
        f"{workers} workers on {os.cpu_count()} cores: {elapsed:.1f} s, {args.scenes / elapsed:.1f} scenes/s, "
        f"{files} files, {size_mb:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
