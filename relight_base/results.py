"""The results contract: what one row of ``results.csv`` holds, defined once for its writer and its readers.

``bench run`` writes one row per experiment x seed x split (:mod:`bench.harness.shared_results`); the reporter
(:mod:`reports.loading`), ``bench status`` and the launchers read them.  All of them take the columns, their
order, types, units and defaults from :data:`COLUMNS`; no other module lists them.

**Versions.**  ``results.json`` records the :data:`SCHEMA_VERSION` its rows follow.  Run folders written
before versions existed have none and are read as version 0: the :data:`REQUIRED` columns must be there, every
other one may be missing and takes its default.  A column added later gets ``since=N`` and bumps
:data:`SCHEMA_VERSION` to ``N``; a folder of an older version reads it as its default.  A folder of a newer
version than this code is refused (:class:`ResultsSchemaError`): its rows may mean what this code cannot know.

**Weights.**  :class:`Weights` is the one list of trained-weight choices (``eval.weights``, ``--weights``, the
``eval_weights`` column); the file each one loads is derived from it.  A row scored without training says
:data:`UNTRAINED` instead.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Iterable

from relight_base import run_folder
from relight_base.errors import BenchError

SCHEMA_VERSION = 1
UNVERSIONED = 0  # run folders written before results.json named a schema_version


class ResultsSchemaError(BenchError):
    """A run folder's results follow a schema this code cannot read (newer, or malformed)."""


class Weights(str, enum.Enum):
    """Which trained weights score a row: ``last`` (end of training), ``best`` (best held-out step), or the
    moving average of the weights (``train.ema_decay``) at those two points, ``ema_last`` and ``ema_best``.

    Each member knows its file in an experiment folder (:attr:`file`), its words in reports (:attr:`words`),
    whether only validation during training keeps it (:attr:`needs_validation`) and whether only an EMA keeps
    it (:attr:`needs_ema`).  Stored rows and configs
    hold the plain value (``"last"``), never the member.
    """

    def __new__(cls, value: str, file: str, words: str, needs_validation: bool, needs_ema: bool) -> "Weights":
        member = str.__new__(cls, value)
        member._value_ = value
        member.file = file
        member.words = words
        member.needs_validation = needs_validation
        member.needs_ema = needs_ema
        return member

    LAST = ("last", run_folder.MODEL_WEIGHTS, "last (model.pt, end of training)", False, False)
    BEST = ("best", run_folder.BEST_WEIGHTS, "best (best.pt, best held-out score)", True, False)
    EMA_LAST = ("ema_last", run_folder.EMA_WEIGHTS, "ema_last (ema.pt, moving average of the weights at the end "
                "of training)", False, True)
    EMA_BEST = ("ema_best", run_folder.EMA_BEST_WEIGHTS, "ema_best (ema_best.pt, moving average of the weights at "
                "its best held-out score)", True, True)

    @property
    def fallback(self) -> "Weights":
        """What scores a row when these weights were not kept because no held-out validation ran: the last
        weights of the same kind (raw or moving average)."""
        return Weights.EMA_LAST if self.needs_ema else Weights.LAST

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The choices as plain strings, in declaration order (``("last", "best")``)."""
        return tuple(member.value for member in cls)


# The registry tags a row's model_tags column may hold (models.capabilities declares them, the reporter reads them):
RELIGHTING = "relighting"  # a network built for relighting: its rows join Table 4
GLOBAL_RESIDUAL = "global_residual"  # the network adds its input back itself
MODEL_TAGS = (RELIGHTING, GLOBAL_RESIDUAL)

UNTRAINED = "untrained"  # eval_weights of a row whose model had nothing to train (or trained for 0 steps)
UNTRAINED_WORDS = "untrained (nothing to train)"


def weights_words(label: str) -> str:
    """How a report names an ``eval_weights`` value (a :class:`Weights` value or :data:`UNTRAINED`)."""
    if label == UNTRAINED:
        return UNTRAINED_WORDS
    return Weights(label).words if label in Weights.values() else str(label)


@dataclass(frozen=True)
class Column:
    """One column of ``results.csv``.

    ``kind`` is the Python type of a value (``str``, ``int``, ``float``, ``bool``; NaN where unknown);
    ``default`` is the value a row without it holds: rows of run folders older than ``since``, and the time
    columns of rows the timing phase has not reached.  ``since`` 0 marks a column every version has.
    """

    name: str
    kind: type
    unit: str
    meaning: str
    default: Any = math.nan
    since: int = 1


def _c(name: str, kind: type, unit: str, meaning: str, default: Any = math.nan, since: int = 1) -> Column:
    return Column(name, kind, unit, meaning, default, since)


COLUMNS: tuple[Column, ...] = (
    _c("experiment", str, "", "experiment name (config experiments[].name)", since=0),
    _c("model", str, "", "registered model name", since=0),
    _c("seed", int, "", "training seed", since=0),
    _c("split", str, "", "evaluation split: val or test", since=0),
    _c("status", str, "", "done, failed, cancelled, killed, running, pending or not run", since=0),
    _c("psnr", float, "dB", "mean PSNR over the split's images", since=0),
    _c("ssim", float, "[0, 1]", "mean SSIM over the split's images (eval.ssim convention)", since=0),
    _c("lpips", float, "[0, 1]", "mean LPIPS (AlexNet); NaN without its weights", since=0),
    _c("mps", float, "[0, 1]", "mean MPS = 0.5 (SSIM + 1 - LPIPS); NaN without LPIPS", since=0),
    _c("time_per_image_s", float, "s", "median forward time per image in the run's timing phase"),
    _c("time_p90_s", float, "s", "90th percentile of those times"),
    _c("time_q1_s", float, "s", "first quartile of those times"),
    _c("time_q3_s", float, "s", "third quartile of those times"),
    _c("timing_phase", str, "", "id of the timing phase that timed the row (empty: not timed)", ""),
    _c("timing_size", float, "px", "side length of the timing input"),
    _c("timing_threads", float, "", "CPU threads pinned while timing"),
    _c("params_m", float, "millions", "parameters of the model"),
    _c("gflops", float, "GFLOPs", "forward FLOPs at the timing size, batch 1 (1 multiply-add = 2 FLOPs)"),
    _c("steps", float, "", "optimisation steps trained"),
    _c("train_seconds", float, "s", "wall time of training"),
    _c("eval_weights", str, "", "weights scored: a Weights value, or untrained", Weights.LAST.value),
    _c("best_step", float, "", "training step of best.pt (of ema_best.pt for eval_weights ema_*; NaN: none kept)"),
    _c("best_holdout", float, "dB or [0, 1]", "held-out score at best_step (train.best_metric)"),
    _c("residual", bool, "", "residual learning: output = relu(rgb + model(rgb, depth))", False),
    _c("extra_data", str, "", "extra-data strategies trained with (none, extra_input, mirror)", "none"),
    _c("model_tags", str, "", "registry tags of the model (NaN in older folders: unknown)"),
    _c("adapter_terms", bool, "", "trained with the adapter's own loss terms (loss.adapter_terms)", False),
    _c("data_source", str, "", "synthetic or vidit", ""),
    _c("data_size", float, "px", "training/evaluation side length"),
    _c("device", str, "", "device that trained, scored and timed the row", ""),
    _c("weights", str, "", "pretrained weights the model loaded (and its guide, if any)", ""),
    _c("perceptual_loss", str, "", "what the VGG19 perceptual term used, or why it was dropped", ""),
    _c("lpips_weights", str, "", "which AlexNet weights scored LPIPS, or why LPIPS is n/a", ""),
    _c("message", str, "", "why a row has no numbers (failed, cancelled, ...), else empty", ""),
)

NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.since == UNVERSIONED)
METRICS: tuple[str, ...] = ("psnr", "ssim", "lpips", "mps")
SPLITS: tuple[str, ...] = ("val", "test")  # the values of the split column
TIME_COLUMNS: tuple[str, ...] = ("time_per_image_s", "time_p90_s", "time_q1_s", "time_q3_s")
TIMING_COLUMNS: tuple[str, ...] = (*TIME_COLUMNS, "timing_phase", "timing_size", "timing_threads")


def defaults(names: Iterable[str]) -> dict[str, Any]:
    """``{column: its default}`` for ``names``."""
    return {name: BY_NAME[name].default for name in names}


def untimed() -> dict[str, Any]:
    """The timing columns of a row the timing phase has not timed (yet)."""
    return defaults(TIMING_COLUMNS)


def empty_row() -> dict[str, Any]:
    """A row with every column NaN: the start of a row that says why a unit has no numbers."""
    return dict.fromkeys(NAMES, math.nan)


def check_row(row: dict[str, Any], where: str = "a result row") -> dict[str, Any]:
    """``row`` itself if every key is a column of the contract; a ``ValueError`` naming the others (a bug)."""
    unknown = sorted(set(row) - set(NAMES))
    if unknown:
        raise ValueError(f"{where} has keys the results contract does not define: {', '.join(unknown)}")
    return row


def schema_version(meta: dict[str, Any], source: str) -> int:
    """The schema version recorded in a run folder's ``results.json`` (``meta``); 0 when none is recorded.

    Raises :class:`ResultsSchemaError` naming ``source`` for a version newer than :data:`SCHEMA_VERSION` or
    one that is not a whole number.
    """
    version = meta.get("schema_version", UNVERSIONED)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ResultsSchemaError(f"{source}: schema_version {version!r} is not a whole number >= 0")
    if version > SCHEMA_VERSION:
        raise ResultsSchemaError(
            f"{source}: its results follow schema version {version}, newer than this relight-bench reads "
            f"(up to {SCHEMA_VERSION}); update relight-bench to read this run folder")
    return version


def missing_for(version: int, present: Iterable[str]) -> tuple[list[str], dict[str, Any]]:
    """For a results file of ``version`` holding columns ``present``: the columns it must have but lacks,
    and ``{column: default}`` of those it may lack (added after its version, or any optional one of version 0)."""
    present = set(present)
    lacking = [c for c in COLUMNS if c.name not in present]
    required = [c.name for c in lacking if c.since == UNVERSIONED or (version > UNVERSIONED and c.since <= version)]
    filled = {c.name: c.default for c in lacking if c.name not in required}
    return required, filled
