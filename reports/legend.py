"""The words beside the numbers: each table's caption, and the page's "how to read" paragraphs."""

from __future__ import annotations

from reports.per_image import PerImage
from reports.seed_level import SEED_LEVEL_MIN
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
        text += "; each image is averaged over its seeds first, then the bootstrap resamples images, so the seeds' " \
                "spread does not enter this interval"
    return text


def values_line(table: Table, per_image: PerImage, settings: ReportSettings) -> str:
    """What a quality cell is: the mean over n images with its CI, the image count per split and the seeds."""
    splits = list(dict.fromkeys(c.split for c in table.quality_columns))
    counts = ", ".join(f"n = {len(per_image.scene_ids(s))} {SPLIT_WORDS.get(s, s)} images" for s in splits)
    b = settings.bootstrap
    most = int(table.frame["seeds"].max()) if not table.frame.empty else 0
    seed_level = (f"Second line, the seed level: the standard deviation of the seeds' means and, from "
                  f"{SEED_LEVEL_MIN} seeds, the {b.percent} % t-interval of their mean." if most >= 2 else
                  "Every row was trained once: there is no seed level, so every interval, mark and verdict here is "
                  "about these trained weights, not about the architectures.")
    return (f"PSNR/SSIM/LPIPS/MPS cells: value [low, high] = the mean over images ({counts}) with its {b.percent} % "
            f"CI, a BCa bootstrap over images ({b.resamples} resamples, seed {b.seed}): the test-set uncertainty of "
            f"these trained weights, not of the architecture; {_seeds_text(table)}. {seed_level} [n/a]: no interval "
            f"(one image, zero variance, or no per-image metrics stored); n/a: no value.")


def marks_line(table: Table, settings: ReportSettings) -> str:
    """What bold and (tied) mean, and at which level this table's marks were judged."""
    seeds = [int(s) for s in table.frame.loc[table.frame["ranked"], "seeds"]] if not table.frame.empty else []
    enough = sum(s >= settings.min_seeds for s in seeds)
    level = ("the image level only: no ranked row has" if enough == 0 else
             "the image and seed levels together: every ranked row has" if enough == len(seeds) else
             "the image and seed levels together for pairs of rows that both have, the image level otherwise; "
             "some rows have fewer than")
    return (f"Bold: the best ranked row of a column, and significantly better than every other ranked row (the "
            f"{settings.bootstrap.percent} % CI of the paired per-image difference excludes 0, and with "
            f"{settings.min_seeds} seeds in both rows (report.min_seeds) so does the seed-level t-interval; each "
            f"pair unadjusted). (tied): no row is significantly best; the leader and every row it is not "
            f"significantly ahead of share the mark. Here judged at {level} {settings.min_seeds} seeds. Rows "
            f"without parameters (identity: the input image itself) are shown but not ranked.")


def delta_lines(table: Table, settings: ReportSettings) -> list[str]:
    """What each Δ set is, what its seed level and verdicts are."""
    lines = []
    for delta in table.deltas:
        who = "every trained or published row" if delta.ranked_only else "every row"
        lines.append(f"{delta.title}: for {who}, the mean over the images both rows scored of (row − "
                     f"{delta.reference}) per image, with its {settings.bootstrap.percent} % bootstrap CI (image "
                     f"level); † that CI excludes 0. LPIPS is lower-is-better, so there a negative Δ is an "
                     f"improvement.")
    if table.deltas:
        lines += [seed_delta_line(settings), verdict_line(settings)]
    return lines


def seed_delta_line(settings: ReportSettings) -> str:
    """What the second line of a Δ cell is."""
    return (f"Second line of a Δ, the seed level: row − reference on the seeds' means, a Welch t-test (unpaired), or "
            f"a paired t-test where both rows are the same model trained on the same pairs with the same seeds (same "
            f"initialisation and data order); its {settings.bootstrap.percent} % t-interval and p are unadjusted, "
            f"'Holm' is that p adjusted over every seed-level Δ of this table (the family); no test below "
            f"{SEED_LEVEL_MIN} seeds in either row. P(better): the share of (row seed, reference seed) pairs in which "
            f"the row's seed is better, U / (n_row · n_ref), descriptive only (no interval below 10 seeds).")


def verdict_line(settings: ReportSettings) -> str:
    """The verdict rule."""
    return (f"Verdict: 'holds across seeds' only when both rows have at least {settings.min_seeds} seeds "
            f"(report.min_seeds), the Holm-adjusted seed-level p is below {1 - settings.bootstrap.confidence:.3g} and "
            f"the image-level CI excludes 0 on the same side; 'these weights only' when the image-level CI excludes 0 "
            f"but the seed level does not hold (or there are too few seeds): a fact about these trained weights and "
            f"these test images, not about the architectures; 'tied' otherwise; n/a: no value to compare.")


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


def caption(table: Table, per_image: PerImage, settings: ReportSettings, scoring: str, rescored: str = "") -> list[str]:
    """The caption of ``table`` (``scoring``: :meth:`reports.conventions.Scoring.caption`; ``rescored``: how the
    scoring differs from the run's protocol, empty when it does not), one sentence group a line."""
    lines = [f"Protocol changed: {rescored}. The run's protocol.yaml fixed other settings before it ran."] \
        if rescored else []
    lines += [values_line(table, per_image, settings), scoring] if table.quality_columns else [scoring]
    lines.append(marks_line(table, settings))
    lines += delta_lines(table, settings) + time_lines(table, settings)
    if table.rank_stability is not None:
        lines.append(table.rank_stability.describe())
    if not table.frame.empty and table.frame["extra"].any():
        lines.append("Rows marked (scored from published images): a method's published outputs scored by "
                     "`python -m bench score` with this harness's metric code, not trained here.")
    return lines


def how_to_read(settings: ReportSettings) -> list[str]:
    """Paragraphs for the page: the two levels of uncertainty, the paired differences, the verdicts and marks."""
    level = settings.bootstrap.percent
    return [
        f"Each quality number is a mean over images followed by its {level} % confidence interval [low, high]. The "
        f"interval comes from a bootstrap: the images are drawn again with replacement many times and the mean "
        f"recomputed; the interval holds the middle {level} % of those means (BCa-corrected, so it need not be "
        f"symmetric). It is the test-set uncertainty of these trained weights: how far the mean could move with "
        f"another draw of images like these. It says nothing about training the network again: with several seeds "
        f"each image is averaged over them first, so the seeds' spread never enters it.",
        f"The second line of a cell is the seed level: each training seed gives one mean over the images, and the "
        f"spread of those means (sd) is what retraining the same architecture changes. From {SEED_LEVEL_MIN} seeds a "
        f"t-interval of their mean is shown. A claim about an architecture needs this level: a difference larger than "
        f"the image-level interval can still be one seed's luck.",
        "Δ compares two rows: at the image level, image by image (the row's score minus the reference's, then the "
        "mean, with its interval; † the interval excludes 0); at the seed level, on the seeds' means (Welch or paired "
        "t-test, Holm-adjusted over the table). The verdict says which of them holds: 'holds across seeds', 'these "
        f"weights only', or 'tied'. Fewer than {settings.min_seeds} seeds per row (report.min_seeds) never give "
        "'holds across seeds'. A Δ whose interval contains 0 is no evidence of a difference, and no proof of "
        "equality either.",
        "Bold marks a row only when it is significantly better than every other ranked row of that column; when the "
        "leader's lead is within the noise, the leader and the rows it does not clearly beat are marked (tied). "
        "Times are ranked only among rows timed in the same timing phase, judged on per-round paired ratios.",
    ]
