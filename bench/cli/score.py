"""``bench score``: score a folder of relit PNGs against a folder of ground truth with the harness's metrics."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cli.arguments import add_command, require_positive
from bench.cli.exit_codes import EXIT_OK
from relight_base.errors import BenchError

if TYPE_CHECKING:
    from reports.statistics import Interval

_DESCRIPTION = (
    "Score every ImageNNN.png in PRED_DIR against the PNG of the same name in GT_DIR with the metric code of "
    "`bench run` (PSNR, SSIM, LPIPS, MPS): for published outputs of methods without an adapter, or any two "
    "folders of VIDIT-named images. 8-bit RGB or RGBA PNGs (VIDIT's ground truth is RGBA: an opaque alpha is "
    "dropped, a transparent one is an error). Prints each metric's mean over images with a 95 % bootstrap "
    "confidence interval (the test-set uncertainty of these outputs: one set of images, no training seeds) and "
    "writes one row per image (scene_id, psnr, ssim, lpips, mps) to a CSV. LPIPS (and "
    "so MPS) needs torchvision's ImageNet AlexNet weights on disk; nothing is downloaded."
)
_EPILOG = """\
examples:
  python -m bench score runs/benchmark/mbnet/seed0/predictions/val data/vidit/track1_validation_gt
  python -m bench score published/s3net/val data/vidit/track1_validation_gt --out s3net_val.csv --ssim uniform7
  python -m bench score published/mbnet/val data/vidit/track1_validation_gt --size 512 --lpips false"""

_DECIMALS = {"psnr": 3, "ssim": 4, "lpips": 4, "mps": 4}  # as printed; the CSV keeps full precision
_NAMES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "mps": "MPS"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "score", summary="score a folder of relit PNGs against ground truth",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("pred_dir", type=Path, metavar="PRED_DIR", help="folder of predicted ImageNNN.png images")
    parser.add_argument("gt_dir", type=Path, metavar="GT_DIR", help="folder of ground-truth ImageNNN.png images")
    parser.add_argument("--out", type=Path, metavar="CSV", help="per-image CSV to write (default: PRED_DIR/scores.csv)")
    parser.add_argument("--ssim", choices=("gaussian", "uniform7"), default="gaussian",
                        help="SSIM convention: gaussian (pytorch-msssim, 11-tap sigma 1.5; the default, as eval.ssim) "
                        "or uniform7 (scikit-image's default: 7x7 uniform window on the 8-bit image)")
    parser.add_argument("--size", type=int, metavar="S",
                        help="resize (shorter side S) and centre-crop both images to S x S as the data loader does "
                        "(default: score at native size; sizes must then match)")
    parser.add_argument("--lpips", default="auto", metavar="auto|true|false|PATH",
                        help="AlexNet weights for LPIPS: auto (use them if found locally, else LPIPS and MPS are n/a), "
                        "true (required), false (skip LPIPS) or a checkpoint path")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Score the folders, print the means with their intervals, write the per-image CSV."""
    from bench.harness.distributed import pick_device
    from bench.harness.metrics import LPIPSMetric, conventions
    from bench.harness.scoring import MIN_SIDE, metric_intervals, score_folders
    from models.weights import parse_pretrained
    from relight_base.atomic import atomic_write_text
    from reports.settings import ReportConfig

    if args.size is not None and require_positive(args.size, "--size") < MIN_SIDE[args.ssim]:
        raise BenchError(f"--size: the {args.ssim} SSIM needs images of at least {MIN_SIDE[args.ssim]} pixels per side, "
                         f"got {args.size}")
    out = _check_out(args.out if args.out is not None else args.pred_dir / "scores.csv")
    device = pick_device("auto")
    lpips_metric = LPIPSMetric(parse_pretrained(args.lpips, "--lpips"), device, key="--lpips")
    per_image = score_folders(args.pred_dir, args.gt_dir, lpips_metric=lpips_metric, ssim_kind=args.ssim,
                              size=args.size, device=device)
    settings = ReportConfig().bootstrap  # the report's defaults, so both give the same interval for the same images
    summary = metric_intervals(per_image, settings)
    atomic_write_text(out, per_image.to_csv(index=False))
    print(f"scored {len(per_image)} images: {args.pred_dir} against {args.gt_dir}"
          + (f" (both resized to {args.size}x{args.size})" if args.size else ""))
    print(f"SSIM: {conventions(True, args.ssim)['ssim']}")
    print(f"LPIPS: {lpips_metric.status}")
    print(f"{'metric':<10} {'mean':>9}  {settings.describe()} over images")
    for metric, stat in summary.items():
        missing = "" if lpips_metric.available or metric not in ("lpips", "mps") else "LPIPS not computed"
        print(f"{_NAMES[metric]:<10} {_format_row(stat, _DECIMALS[metric], missing)}")
    print(f"per-image scores: {out}")
    return EXIT_OK


def _check_out(out: Path) -> Path:
    """``out`` if a CSV can be written there (checked before any scoring), else a BenchError naming ``--out``."""
    if out.is_dir():
        raise BenchError(f"--out: {out} is a folder; expected the path of the CSV file to write")
    existing = next((folder for folder in out.parents if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise BenchError(f"--out: cannot write {out}: {existing} is a file, not a folder; pass --out with a path in a "
                         "folder you can write to")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"--out: cannot write {out}: {existing} is not writable; pass --out with a path in a folder "
                         "you can write to")
    return out


def _format_row(stat: "Interval", decimals: int, missing: str = "") -> str:
    """``mean  [low, high]``, or ``n/a (why)`` in place of what is unknown; never a NaN printed as a number.

    ``missing`` names why the metric was not computed at all (it then replaces the interval's own reason).
    """
    if math.isnan(stat.estimate):
        return f"{'n/a':>9} ({missing or stat.reason})"
    interval = f"[{stat.low:.{decimals}f}, {stat.high:.{decimals}f}]" if stat.defined else f"n/a ({stat.reason})"
    return f"{stat.estimate:>9.{decimals}f}  {interval}"
