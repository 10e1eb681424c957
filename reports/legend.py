"""The words beside the numbers: each table's caption, and the page's "how to read" paragraphs."""

from __future__ import annotations

from reports.per_image import PerImage
from reports.settings import ReportSettings
from reports.tables import EXACT, TIME, Table

SPLIT_WORDS = {"val": "validation", "test": "test"}


def _seeds_text(table: Table) -> str:
    counts = sorted(set(int(s) for s in table.frame.loc[~table.frame["extra"], "seeds"] if s > 0))
    if not counts:
        return "no finished seeds"
    text = f"{counts[0]} seed{'s' if counts[0] > 1 else ''}" if len(counts) == 1 else \
        f"{counts[0]} to {counts[-1]} seeds per row"
    if counts[-1] > 1:
        text += "; each image is averaged over its seeds first, then the bootstrap resamples images"
    return text


def values_line(table: Table, per_image: PerImage, settings: ReportSettings) -> str:
    """What a quality cell is: the mean over n images with its CI, the image count per split and the seeds."""
    splits = list(dict.fromkeys(c.split for c in table.quality_columns))
    counts = ", ".join(f"n = {len(per_image.scene_ids(s))} {SPLIT_WORDS.get(s, s)} images" for s in splits)
    b = settings.bootstrap
    return (f"PSNR/SSIM/LPIPS/MPS cells: value [low, high] = the mean over images ({counts}) with its {b.percent} % "
            f"CI, a BCa bootstrap over images ({b.resamples} resamples, seed {b.seed}); {_seeds_text(table)}. "
            f"[n/a]: no interval (one image, zero variance, or no per-image metrics stored); n/a: no value.")


def marks_line(settings: ReportSettings) -> str:
    """What bold and (tied) mean."""
    return (f"Bold: the best ranked row of a column, and significantly better than every other ranked row (the "
            f"{settings.bootstrap.percent} % CI of the paired per-image difference excludes 0). (tied): no row is "
            f"significantly best; the leader and every row it is not significantly ahead of share the mark. "
            f"Rows without parameters (identity: the input image itself) are shown but not ranked.")


def delta_lines(table: Table, settings: ReportSettings) -> list[str]:
    """What each Δ set is."""
    lines = []
    for delta in table.deltas:
        who = "every trained or published row" if delta.ranked_only else "every row"
        lines.append(f"{delta.title}: for {who}, the mean over the images both rows scored of (row − "
                     f"{delta.reference}) per image, with its {settings.bootstrap.percent} % bootstrap CI; "
                     f"† the CI excludes 0. LPIPS is lower-is-better, so there a negative Δ is an improvement.")
    return lines


def time_lines(table: Table, settings: ReportSettings) -> list[str]:
    """Table 2's counts and time columns."""
    lines = []
    if any(c.kind == EXACT for c in table.columns):
        lines.append("Params and GFLOPs do not vary with the seed and are shown once (GFLOPs at the timing input "
                     "size); bold: the fewest.")
    if any(c.kind == TIME for c in table.columns):
        lines.append(f"Time/img: median seconds per image over the timing phase's rounds (batch 1, forward only), "
                     f"IQR (q1–q3) in parentheses; p90 separately. Fastest is bold only when its lead over every "
                     f"other ranked row of the same phase exceeds the spread: the {settings.bootstrap.percent} % CI "
                     f"of the median per-round ratio of their times lies below 1; otherwise the rows share (tied).")
    return lines


def caption(table: Table, per_image: PerImage, settings: ReportSettings, scoring: str) -> list[str]:
    """The caption of ``table`` (``scoring``: :meth:`reports.conventions.Scoring.caption`), one sentence group a line."""
    lines = [values_line(table, per_image, settings), scoring] if table.quality_columns else [scoring]
    lines.append(marks_line(settings))
    lines += delta_lines(table, settings) + time_lines(table, settings)
    if not table.frame.empty and table.frame["extra"].any():
        lines.append("Rows marked (scored from published images): a method's published outputs scored by "
                     "`python -m bench score` with this harness's metric code, not trained here.")
    return lines


def how_to_read(settings: ReportSettings) -> list[str]:
    """Paragraphs for the page: how to read the intervals, the paired differences and the marks."""
    level = settings.bootstrap.percent
    return [
        f"Each quality number is a mean over images followed by its {level} % confidence interval [low, high]. The "
        f"interval comes from a bootstrap: the images are drawn again with replacement many times and the mean "
        f"recomputed; the interval holds the middle {level} % of those means (BCa-corrected, so it need not be "
        f"symmetric). It says how far the mean could move with another draw of images like these. It does not cover "
        f"training randomness beyond the seeds averaged, and with few images it is too narrow: mind the n stated "
        f"with each table.",
        "Δ compares two rows image by image: for each image, the row's score minus the reference's, then the mean "
        "over images, with its own interval. Both rows are scored on the same images, so Δ is far more precise than "
        "comparing two separate intervals: two rows' intervals can overlap while the CI of their Δ excludes 0. A Δ "
        "marked † (its CI excludes 0) is unlikely to come from the choice of images alone; a Δ whose CI contains "
        "0 is no evidence of a difference, and no proof of equality either.",
        "Bold marks a row only when it is significantly better than every other ranked row of that column; when the "
        "leader's lead is within the noise, the leader and the rows it does not clearly beat are marked (tied). "
        "Times are ranked only among rows timed in the same timing phase, judged on per-round paired ratios.",
    ]
