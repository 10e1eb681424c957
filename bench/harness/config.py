"""Benchmark configuration: YAML in, typed and validated dataclasses out.

The schema is the dataclasses below.  :func:`load_config` reads a YAML file,
applies ``--set key=value`` overrides and converts the result, collecting every
problem into one :class:`~relight_base.errors.ConfigError` whose lines name the file,
the line, the dotted key, the value found and what was expected.  Unknown keys
get a did-you-mean.  Configs are data only: nothing in them is executed
(plugins are imported by module name, see :mod:`models.registry`).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import yaml

from relight_base.errors import ConfigError

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- schema


def _meta(help: str, *, minimum: int | None = None, positive: bool = False,
          nonnegative: bool = False) -> dict[str, Any]:
    """A schema field's metadata: its ``help`` line (``config --keys``, missing-key messages) and the checks
    the converter applies: ``minimum`` for integers, ``positive`` / ``nonnegative`` for numbers."""
    meta: dict[str, Any] = {"help": help}
    if minimum is not None:
        meta["minimum"] = minimum
    if positive:
        meta["positive"] = True
    if nonnegative:
        meta["nonnegative"] = True
    return meta


@dataclass
class FoldersConfig:
    """Sub-folders of ``data.root`` (relative to it, or absolute)."""

    train_input: str = field(default="track1_train/input", metadata=_meta("Track 1 training inputs: ImageNNN.png + ImageNNN.npy"))
    train_target: str = field(default="track1_train/target", metadata=_meta("Track 1 training targets: ImageNNN.png"))
    val_input: str = field(default="track1_validation", metadata=_meta("validation inputs: ImageNNN.png + ImageNNN.npy"))
    val_target: str = field(default="track1_validation_gt", metadata=_meta("validation ground truth: ImageNNN.png"))
    test_input: str = field(default="track1_test", metadata=_meta("test inputs: ImageNNN.png + ImageNNN.npy"))
    test_target: Optional[str] = field(
        default="track1_test_gt", metadata=_meta("test ground truth, if any (VIDIT never published it; a missing folder means none)")
    )
    full: Optional[str] = field(
        default="vidit_full",
        metadata=_meta("full VIDIT naming Image{NNN}_{TTTT}_{D}.png + Image{NNN}.npy: the source of the paper's extra data"),
    )


@dataclass
class SyntheticConfig:
    """The built-in procedural dataset written in VIDIT's formats (used when ``data.source: synthetic``)."""

    train: int = field(default=24, metadata=_meta("training scenes", minimum=1))
    val: int = field(default=24, metadata=_meta("validation scenes (intervals over images need more than a handful)", minimum=1))
    test: int = field(default=24, metadata=_meta("test scenes", minimum=1))
    seed: int = field(default=0, metadata=_meta("random seed of the scene generator", minimum=0))
    size: int = field(default=256, metadata=_meta("rendered image side length in pixels", minimum=8))


@dataclass
class DataConfig:
    """Where the data comes from and how it is fed to the models."""

    source: Literal["synthetic", "vidit"] = field(default="synthetic", metadata=_meta("synthetic (built in) or vidit (on disk)"))
    root: Optional[str] = field(
        default=None,
        metadata=_meta("data folder; for synthetic data null means a cache folder ($RELIGHT_BENCH_CACHE or ~/.cache/relight-bench)"),
    )
    size: int = field(default=128, metadata=_meta("training/evaluation side length (resize shorter side, centre crop; SSIM needs >= 11)", minimum=11))
    input: str = field(default="6500_N", metadata=_meta("input lighting condition, TEMPERATURE_DIRECTION"))
    target: str = field(default="4500_E", metadata=_meta("target lighting condition"))
    extra_input: str = field(default="6500_NE", metadata=_meta("extra-input strategy's additional input condition"))
    cache: bool = field(default=True, metadata=_meta("decode every image once and keep it in memory"))
    workers: int = field(default=0, metadata=_meta("DataLoader worker processes", minimum=0))
    folders: FoldersConfig = field(default_factory=FoldersConfig, metadata=_meta("dataset sub-folders"))
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig, metadata=_meta("built-in synthetic dataset"))


@dataclass
class TrainConfig:
    """Training schedule shared by every experiment (paper, section 4.1)."""

    steps: int = field(default=100, metadata=_meta("optimisation steps per experiment (ignored when epochs is set)", minimum=0))
    epochs: Optional[int] = field(default=None, metadata=_meta("train for this many passes over the training pairs instead of steps", minimum=1))
    batch_size: int = field(default=3, metadata=_meta("images per step over all processes (paper: 3)", minimum=1))
    lr: float = field(default=1e-4, metadata=_meta("Adam learning rate (paper: 1e-4)", positive=True))
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999], metadata=_meta("Adam betas (paper: 0.5, 0.999)"))
    lr_decay_step: Optional[int] = field(
        default=None, metadata=_meta("step after which the lr is divided by 10; null: a quarter of training (paper: epoch 50 of 200)", minimum=1)
    )
    lr_decay_factor: float = field(default=0.1, metadata=_meta("lr multiplier at lr_decay_step", positive=True))
    schedule: Literal["step", "constant", "cosine"] = field(default="step", metadata=_meta(
        "lr schedule: step (the paper's: lr_decay_factor after lr_decay_step), constant, or cosine (to 0 at the last "
        "step); constant and cosine suit short runs"))
    warmup_steps: int = field(default=0, metadata=_meta(
        "constant and cosine schedules: the lr rises linearly from lr/warmup_steps to lr over these first steps",
        minimum=0))
    device: str = field(default="auto", metadata=_meta("auto (CUDA if available), cpu, cuda or cuda:N"))
    amp: Literal["off", "bf16", "fp16"] = field(default="off", metadata=_meta("mixed precision on CUDA: off, bf16 or fp16"))
    log_every: int = field(default=1, metadata=_meta("write a training-log row every N steps", minimum=1))
    checkpoint_every: int = field(
        default=0, metadata=_meta("write a resumable checkpoint every N steps (0: none; weights are saved at the end)", minimum=0)
    )
    keep_checkpoints: int = field(default=2, metadata=_meta("keep the newest N checkpoints", minimum=1))
    val_every: int = field(default=0, metadata=_meta(
        "score PSNR/SSIM on the held-out training scenes (train.holdout) every N steps and at the last step, log it "
        "to train_log.csv and keep the best weights as best.pt (0: never)", minimum=0))
    holdout: Optional[int] = field(default=None, metadata=_meta(
        "training scenes held out of training for val_every (never trained on; never the reported splits); "
        "null: 10% of the training scenes (at least 1) when val_every is set, else none", minimum=0))
    best_metric: Literal["psnr", "ssim"] = field(default="psnr", metadata=_meta(
        "held-out metric that picks best.pt (higher is better)"))


@dataclass
class LossConfig:
    """The paper's loss, eq. 4: charbonnier * L_cha + ssim * L_ssim + perceptual * L_per."""

    charbonnier: float = field(default=1.0, metadata=_meta("lambda_1, Charbonnier weight", nonnegative=True))
    ssim: float = field(default=1.1, metadata=_meta("lambda_2, SSIM-loss weight", nonnegative=True))
    perceptual: float = field(default=0.1, metadata=_meta("lambda_3, VGG19 conv3_3 perceptual weight", nonnegative=True))
    charbonnier_eps: float = field(default=1e-3, metadata=_meta("Charbonnier epsilon", positive=True))
    ssim_form: Literal["neg", "one_minus"] = field(default="neg", metadata=_meta("SSIM loss as -SSIM (paper) or 1-SSIM"))
    adapter_terms: bool = field(default=False, metadata=_meta(
        "also add the loss terms an adapter declares (IAN's deep supervision, DFuseNet's lighting focal losses), "
        "weight 1 each; off keeps one loss for every network (the report marks rows trained with them)"))


@dataclass
class WeightsConfig:
    """Pretrained ImageNet weights: auto (use if found locally), true (required), false, or a file path."""

    backbone: Union[bool, str] = field(default="auto", metadata=_meta("model backbones (ResNet-50, VGG)"))
    perceptual: Union[bool, str] = field(default="auto", metadata=_meta("VGG19 of the perceptual loss; missing: the term is dropped"))
    lpips: Union[bool, str] = field(default="auto", metadata=_meta("AlexNet trunk of LPIPS; missing: LPIPS/MPS reported n/a"))


@dataclass
class EvalConfig:
    """Evaluation and timing."""

    splits: list[Literal["val", "test"]] = field(default_factory=lambda: ["val", "test"], metadata=_meta("splits to score"))
    batch_size: int = field(default=4, metadata=_meta("images per evaluation batch", minimum=1))
    save_predictions: bool = field(default=True, metadata=_meta("write predicted PNGs"))
    timing_rounds: int = field(default=60, metadata=_meta(
        "rounds of the timing phase after training: each round runs every model once, in an order that rotates", minimum=1))
    timing_runs: Optional[int] = field(default=None, metadata=_meta(
        "deprecated name of timing_rounds (a value here is used as timing_rounds, with a warning)", minimum=1))
    timing_warmup: int = field(default=2, metadata=_meta("untimed warm-up passes per model before the rounds", minimum=0))
    timing_size: Optional[int] = field(default=None, metadata=_meta(
        "side length of the timing input (GFLOPs are counted at it too); null: data.size (the paper's tables: 1024)",
        minimum=11))
    timing_threads: Optional[int] = field(default=None, metadata=_meta(
        "CPU threads pinned for the timing phase; null: torch's current count (recorded either way)", minimum=1))
    quantize: bool = field(default=True, metadata=_meta(
        "score the prediction rounded to 8 bits, exactly as the PNG written to predictions/ (as NTIRE 2021 scored "
        "the submitted PNGs); false: score the clamped float prediction"))
    ssim: Literal["gaussian", "uniform7"] = field(default="gaussian", metadata=_meta(
        "SSIM convention: gaussian (pytorch-msssim: 11-tap Gaussian, sigma 1.5) or uniform7 (scikit-image's default: "
        "7x7 uniform window, sample covariance, on the 8-bit image); MPS uses the one chosen"))
    autocast: Literal["off", "bf16", "fp16"] = field(
        default="off", metadata=_meta("evaluate and time in CUDA mixed precision: off, bf16 or fp16 (ignored on CPU)")
    )
    compile: bool = field(default=False, metadata=_meta("torch.compile the inference model (slow first call)"))
    weights: Literal["last", "best"] = field(default="last", metadata=_meta(
        "weights the tables, `predict` and `export` use: last (model.pt, the end of training) or best (best.pt, "
        "the best held-out score of train.val_every)"))


@dataclass
class ReportConfig:
    """How the report compares rows: which rows the paired differences are taken against, and the bootstrap."""

    table1_reference: Optional[str] = field(default="baseline", metadata=_meta(
        "experiment the Table 1 (ablation) rows are compared with (paired differences per image); null: none"))
    table2_reference: Optional[str] = field(default="mbnet", metadata=_meta(
        "experiment the rows of Tables 2, 3 and 4 are compared with; null: none"))
    floor_reference: Optional[str] = field(default="identity", metadata=_meta(
        "the do-nothing row every trained row is also compared with; null: none"))
    confidence: float = field(default=0.95, metadata=_meta("confidence level of every interval", positive=True))
    bootstrap_resamples: int = field(default=2000, metadata=_meta("bootstrap resamples per interval", minimum=100))
    bootstrap_seed: int = field(default=0, metadata=_meta(
        "random_state of the bootstrap, so the same results give the same report", minimum=0))


@dataclass
class SlurmConfig:
    """``launcher.type: slurm``: each experiment x seed one element of a Slurm job array, through submitit."""

    partition: Optional[str] = field(default=None, metadata=_meta("Slurm partition (null: the cluster's default)"))
    time_min: int = field(default=240, metadata=_meta(
        "time limit of each unit's job in minutes; a unit that reaches it checkpoints and is requeued", minimum=1))
    gpus_per_job: Optional[int] = field(default=None, metadata=_meta(
        "GPUs per unit; more than 1 trains with DDP, one task per GPU; null: 1 if the partition's nodes have GPUs "
        "(sinfo's GRES), else 0", minimum=0))
    tasks_per_job: Optional[int] = field(default=None, metadata=_meta(
        "processes (DDP ranks) per unit; null: gpus_per_job, at least 1 (more than 1 without GPUs: DDP over gloo)",
        minimum=1))
    cpus_per_task: Optional[int] = field(default=None, metadata=_meta("CPUs per task (null: the cluster's default)",
                                                                      minimum=1))
    mem_gb: Optional[int] = field(default=None, metadata=_meta("memory per unit in GB (null: the cluster's default)",
                                                              minimum=1))
    array_parallelism: int = field(default=16, metadata=_meta("units of the array allowed to run at once", minimum=1))
    signal_delay_s: int = field(default=90, metadata=_meta(
        "seconds before the time limit at which Slurm signals a unit to checkpoint and requeue (below time_min)",
        minimum=1))
    max_requeues: int = field(default=3, metadata=_meta("how often a unit may be requeued after its time limit",
                                                        minimum=0))
    setup: list[str] = field(default_factory=list, metadata=_meta(
        "shell lines each job runs first, e.g. [module load cuda, source /shared/venv/bin/activate]"))
    additional: dict[str, Any] = field(default_factory=dict, metadata=_meta(
        "more sbatch options, passed as submitit's slurm_additional_parameters, e.g. {account: abc, qos: high}"))


@dataclass
class LauncherConfig:
    """Where the experiment x seed units run: this process, parallel local processes, or a Slurm job array."""

    type: Literal["inline", "local", "slurm"] = field(default="inline", metadata=_meta(
        "inline (one after another in this process), local (--jobs parallel processes) or slurm (a job array)"))
    jobs: int = field(default=1, metadata=_meta("local: units running at once", minimum=1))
    devices: list[str] = field(default_factory=list, metadata=_meta(
        "local: CUDA_VISIBLE_DEVICES of each parallel slot, e.g. ['0', '1'] or ['0,1', '2,3']; empty: one GPU per "
        "slot in turn, or on a CPU machine the cores split evenly"))
    threads: Optional[int] = field(default=None, metadata=_meta(
        "local: CPU threads per unit (null: the machine's cores divided by jobs)", minimum=1))
    poll_s: float = field(default=5.0, metadata=_meta("seconds between two looks at the units' states while waiting",
                                                      positive=True))
    slurm: SlurmConfig = field(default_factory=SlurmConfig, metadata=_meta("Slurm job settings (type: slurm)"))


@dataclass
class ExperimentConfig:
    """One row of the comparison: a model trained on a data strategy."""

    name: str = field(metadata=_meta("unique experiment name (letters, digits, '-', '_', '.')"))
    model: str = field(metadata=_meta("registered model name (see `python -m bench models`)"))
    extra_data: Union[bool, list[str]] = field(
        default=False, metadata=_meta("false, true (both paper strategies) or a list of: extra_input, mirror")
    )
    residual: bool = field(default=False, metadata=_meta("learn a residual: output = relu(rgb + model(rgb, depth))"))
    model_args: dict[str, Any] = field(default_factory=dict, metadata=_meta("keyword arguments for the model factory"))


@dataclass
class BenchConfig:
    """A whole benchmark: data, training schedule, experiments and seeds."""

    name: str = field(default="benchmark", metadata=_meta("run name; results go to <out>/<name>/"))
    data: DataConfig = field(default_factory=DataConfig, metadata=_meta("dataset"))
    train: TrainConfig = field(default_factory=TrainConfig, metadata=_meta("training"))
    loss: LossConfig = field(default_factory=LossConfig, metadata=_meta("loss weights"))
    weights: WeightsConfig = field(default_factory=WeightsConfig, metadata=_meta("pretrained weights"))
    eval: EvalConfig = field(default_factory=EvalConfig, metadata=_meta("evaluation and timing"))
    report: ReportConfig = field(default_factory=ReportConfig, metadata=_meta("comparisons and intervals in the report"))
    launcher: LauncherConfig = field(default_factory=LauncherConfig, metadata=_meta(
        "where the experiment x seed units run (bench run --launcher)"))
    experiments: list[ExperimentConfig] = field(default_factory=list, metadata=_meta("experiments to run"))
    seeds: list[int] = field(default_factory=lambda: [0], metadata=_meta("seeds; every experiment runs once per seed"))
    plugins: list[str] = field(default_factory=list, metadata=_meta("Python modules to import so their adapters register"))

    def experiment(self, name: str) -> ExperimentConfig:
        """Return the experiment called ``name``."""
        for exp in self.experiments:
            if exp.name == name:
                return exp
        raise ConfigError(_unknown("experiment", name, [e.name for e in self.experiments]))


STRATEGY_NAMES = ("extra_input", "mirror")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# --------------------------------------------------------------------------- public API


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), only: str | None = None) -> BenchConfig:
    """Read, override and validate a benchmark config.

    Args:
        path: YAML file.
        overrides: ``"dotted.key=value"`` strings (values parsed as YAML, typed by the schema).
        only: comma-separated experiment names to keep.
    Raises:
        ConfigError: naming the file, line, key and expectation of every problem found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return parse_config(text, source=str(path), overrides=overrides, only=only)


def parse_config(text: str, source: str = "<config>", overrides=(), only: str | None = None) -> BenchConfig:
    """Like :func:`load_config` for YAML text; ``source`` names it in messages."""
    raw, lines = _read_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (name, data, train, experiments, ...), found {_kind(raw)}")
    for item in overrides:
        _apply_override(raw, item)
    problems = _Problems(source, lines)
    cfg = _convert(raw, BenchConfig, (), problems)
    if not problems.found:
        _check_semantics(cfg, problems)
    if problems.found:
        count = len(problems.found)
        raise ConfigError(f"{source} has {count} problem{'s' if count > 1 else ''}:\n  " + "\n  ".join(problems.found))
    if only:
        cfg = select_experiments(cfg, only)
    return cfg


def select_experiments(cfg: BenchConfig, only: str) -> BenchConfig:
    """Keep the comma-separated experiments named in ``only`` (``--only``)."""
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    names = [e.name for e in cfg.experiments]
    for name in wanted:
        if name not in names:
            raise ConfigError("--only: " + _unknown("experiment", name, names))
    return dataclasses.replace(cfg, experiments=[e for e in cfg.experiments if e.name in wanted])


def to_dict(cfg: Any) -> Any:
    """Plain-data (YAML/JSON-ready) form of a config object."""
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML, keys in schema order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def config_hash(cfg: Any) -> str:
    """A short stable hash of a config object (or any part of one)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def schema_help(cls: type = BenchConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, default, help)`` for every key of the schema, for docs and ``--help``."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            rows.extend(schema_help(hint, key + "."))
            continue
        if typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            rows.extend(schema_help(typing.get_args(hint)[0], key + "[]."))
            continue
        default = _default_of(f)
        rows.append((key, "required" if default is dataclasses.MISSING else repr(default), f.metadata.get("help", "")))
    return rows


# --------------------------------------------------------------------------- YAML reading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a common, silent YAML mistake)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, returning the data and a map from key path to 1-based line number."""
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError(f"{where}: YAML syntax error: {problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML syntax error: {exc}") from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = path + (key_node.value,)
            lines[sub] = key_node.start_mark.line + 1
            _index_lines(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines)


# --------------------------------------------------------------------------- conversion


@dataclass
class _Problems:
    """The problems found in one config, each naming the file, the line, the dotted key and what is wrong."""

    source: str  # the file name (or "<config>") messages start with
    lines: dict[tuple, int]  # key path -> 1-based line in the YAML text
    found: list[str] = field(default_factory=list)

    def add(self, path: tuple, text: str) -> None:
        """Record ``text`` (which names the key itself) at the line of ``path``."""
        self.found.append(f"{_where(self.source, self.lines, path)}{text}")

    def expected(self, path: tuple, expected: str, value: Any) -> None:
        """Record that the value at ``path`` is not ``expected``."""
        self.add(path, f"{_dotted(path)}: expected {expected}, got {_show(value)}")

    def fresh(self) -> _Problems:
        """An empty list for the same text: a trial conversion whose problems may be dropped."""
        return _Problems(self.source, self.lines)


def _convert(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict | None = None) -> Any:
    """Convert ``value`` to ``hint``; on failure record the problem and return None.

    ``meta`` is the schema field's metadata (the checks of :func:`_meta`).
    """
    if dataclasses.is_dataclass(hint):
        return _convert_dataclass(value, hint, path, problems)
    converter = _CONVERTERS.get(typing.get_origin(hint) or hint)
    if converter is None:
        raise TypeError(f"unsupported schema type {hint!r} at {_dotted(path)}")  # a bug in the schema, not user input
    return converter(value, hint, path, problems, meta or {})


def _convert_union(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    """The first option of ``Union[...]``/``Optional[...]`` that ``value`` converts to without a problem."""
    options = typing.get_args(hint)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        trial = problems.fresh()
        result = _convert(value, option, path, trial, meta)
        if not trial.found:
            return result
    problems.expected(path, " or ".join(_describe(o) for o in options), value)
    return None


def _convert_literal(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    choices = typing.get_args(hint)
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    hint_text = f"; did you mean {close[0]!r}?" if close else ""
    problems.add(path, f"{_dotted(path)}: expected one of {', '.join(map(repr, choices))}, got {_show(value)}{hint_text}")
    return None


def _convert_list(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    (item_type,) = typing.get_args(hint)
    if not isinstance(value, list):
        problems.expected(path, _describe(hint), value)
        return None
    return [_convert(v, item_type, path + (i,), problems) for i, v in enumerate(value)]


def _convert_dict(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    if not isinstance(value, dict):
        problems.expected(path, "a mapping", value)
        return None
    return dict(value)


def _convert_any(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    return value


def _convert_bool(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    if isinstance(value, bool):
        return value
    problems.expected(path, "true or false", value)
    return None


def _convert_int(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    """An integer (not a boolean), at least ``meta["minimum"]`` when the schema sets one."""
    at_least = f" >= {meta['minimum']}" if "minimum" in meta else ""
    if not isinstance(value, int) or isinstance(value, bool):
        problems.expected(path, "an integer" + at_least, value)
        return None
    if "minimum" in meta and value < meta["minimum"]:
        problems.expected(path, "an integer" + at_least, value)
        return None
    return value


def _convert_float(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    """A number as float, checked against ``meta["positive"]``/``meta["nonnegative"]`` when the schema sets them."""
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string; accept what float() reads
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        problems.expected(path, "a number", value)
        return None
    if meta.get("positive") and not value > 0:
        problems.expected(path, "a number > 0", value)
        return None
    if meta.get("nonnegative") and value < 0:
        problems.expected(path, "a number >= 0", value)
        return None
    return float(value)


def _convert_str(value: Any, hint: Any, path: tuple, problems: _Problems, meta: dict) -> Any:
    if isinstance(value, str):
        return value
    problems.expected(path, "a string", value)
    return None


# typing origin (or the plain type) -> its converter; dataclasses are converted field by field
_CONVERTERS: dict[Any, Callable[[Any, Any, tuple, _Problems, dict], Any]] = {
    Union: _convert_union,
    types.UnionType: _convert_union,
    Literal: _convert_literal,
    list: _convert_list,
    dict: _convert_dict,
    Any: _convert_any,
    bool: _convert_bool,
    int: _convert_int,
    float: _convert_float,
    str: _convert_str,
}


def _convert_dataclass(value: Any, cls: type, path: tuple, problems: _Problems) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.add(path, f"{_dotted(path) or 'top level'}: expected a mapping of keys, got {_show(value)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    before = len(problems.found)
    for key in value:
        if key not in fields:
            problems.add(path + (key,), _unknown_key(path, key, list(fields)))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _convert(value[name], hints[name], path + (name,), problems, dict(f.metadata))
        elif _default_of(f) is dataclasses.MISSING:
            problems.add(path, f"{_dotted(path + (name,))}: required key is missing ({f.metadata.get('help', '')})")
    if len(problems.found) > before:
        return None
    return cls(**kwargs)


def _check_semantics(cfg: BenchConfig, problems: _Problems) -> None:
    """Checks that span several keys or need more than a type."""
    from datasets.conditions import Condition  # local import: datasets depends on relight_base.errors only

    for key in ("input", "target", "extra_input"):
        try:
            Condition.parse(getattr(cfg.data, key))
        except Exception as exc:  # DataError from the parser
            problems.add(("data", key), f"data.{key}: {exc}")
    if not _IDENTIFIER.match(cfg.name):
        problems.add(("name",), f"name: {cfg.name!r} is not a valid run name (letters, digits, '-', '_', '.')")
    betas = cfg.train.betas
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        problems.add(("train", "betas"), f"train.betas: expected two numbers in [0, 1), got {betas!r}")
    if not cfg.eval.splits:
        problems.add(("eval", "splits"), "eval.splits: at least one of val, test is needed")
    if not cfg.experiments:
        problems.add(("experiments",), "experiments: at least one experiment is needed")
    if not cfg.seeds:
        problems.add(("seeds",), "seeds: at least one seed is needed")
    repeated = sorted({seed for seed in cfg.seeds if cfg.seeds.count(seed) > 1})
    if repeated:
        problems.add(("seeds",), f"seeds: {', '.join(map(str, repeated))} repeated; each seed must appear once "
                                 "(a repeated seed would count the same run twice in every interval)")
    if not 0.5 <= cfg.report.confidence < 1.0:
        problems.add(("report", "confidence"), f"report.confidence: expected a level in [0.5, 1), got {cfg.report.confidence!r}")
    if cfg.eval.weights == "best" and not cfg.train.val_every:
        problems.add(("eval", "weights"), "eval.weights: best needs train.val_every > 0 (best.pt is chosen by the "
                                          "held-out score that val_every computes); set it or use eval.weights: last")
    _migrate_timing_runs(cfg)
    _check_experiments(cfg.experiments, problems)
    _check_launcher(cfg.launcher, problems)


def _check_launcher(launcher: LauncherConfig, problems: _Problems) -> None:
    """Slurm's signal comes before its time limit; one DDP task per GPU."""
    slurm = launcher.slurm
    if slurm.signal_delay_s >= slurm.time_min * 60:
        problems.add(("launcher", "slurm", "signal_delay_s"),
                     f"launcher.slurm.signal_delay_s: {slurm.signal_delay_s} s is not below the time limit "
                     f"(time_min {slurm.time_min} = {slurm.time_min * 60} s); the checkpoint signal must come first")
    if slurm.gpus_per_job and slurm.tasks_per_job not in (None, slurm.gpus_per_job):
        problems.add(("launcher", "slurm", "tasks_per_job"),
                     f"launcher.slurm.tasks_per_job: {slurm.tasks_per_job} with gpus_per_job {slurm.gpus_per_job}; "
                     "DDP runs one task per GPU, so leave it null or make them equal")


def _migrate_timing_runs(cfg: BenchConfig) -> None:
    """``eval.timing_runs`` (the old name) becomes ``eval.timing_rounds``, with a warning."""
    if cfg.eval.timing_runs is not None:
        log.warning("eval.timing_runs is deprecated: it now means eval.timing_rounds (rounds of the interleaved "
                    "timing phase); using eval.timing_rounds=%d. Rename the key to silence this.", cfg.eval.timing_runs)
        cfg.eval.timing_rounds = cfg.eval.timing_runs
        cfg.eval.timing_runs = None


def _check_experiments(experiments: list[ExperimentConfig], problems: _Problems) -> None:
    """Experiment names valid and unique; ``extra_data`` lists name known strategies."""
    seen: set[str] = set()
    for i, exp in enumerate(experiments):
        where = ("experiments", i)
        if not _IDENTIFIER.match(exp.name):
            problems.add(where, f"experiments[{i}].name: {exp.name!r} is not a valid name (letters, digits, '-', '_', '.')")
        if exp.name in seen:
            problems.add(where, f"experiments[{i}].name: {exp.name!r} is used twice; experiment names must be unique")
        seen.add(exp.name)
        for item in exp.extra_data if isinstance(exp.extra_data, list) else []:
            if item not in STRATEGY_NAMES:
                close = difflib.get_close_matches(item, STRATEGY_NAMES, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.add(where, f"experiments[{i}].extra_data: unknown strategy {item!r}; "
                                    f"expected {', '.join(STRATEGY_NAMES)}{hint}")


# --------------------------------------------------------------------------- overrides


def _apply_override(raw: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` to the raw YAML data, checking the key against the schema."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example --set train.steps=10")
    key, _, text = item.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set {item!r}: {key!r} is not a dotted key such as data.size")
    node: Any = raw
    hint: Any = BenchConfig
    walked: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        hint = _strip_optional(hint)
        if dataclasses.is_dataclass(hint):
            names = [f.name for f in dataclasses.fields(hint)]
            if part not in names:
                raise ConfigError(f"--set {item!r}: " + _unknown_key(tuple(walked), part, names))
            child_hint = typing.get_type_hints(hint)[part]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(walked)} is not a mapping in the config")
            if last:
                node[part] = _parse_value(text, child_hint)
                return
            if node.get(part) is None:
                node[part] = [] if typing.get_origin(_strip_optional(child_hint)) is list else {}
            node, hint = node[part], child_hint
        elif typing.get_origin(hint) is list:
            if not isinstance(node, list):
                raise ConfigError(f"--set {item!r}: {'.'.join(walked)} is not a list in the config")
            index = _list_index(node, part, item, ".".join(walked))
            item_hint = typing.get_args(hint)[0]
            if last:
                node[index] = _parse_value(text, item_hint)
                return
            node, hint = node[index], item_hint
        elif typing.get_origin(hint) is dict:
            if last:
                node[part] = yaml.safe_load(text) if text.strip() else None
                return
            node = node.setdefault(part, {})
            hint = dict[str, Any]
        else:
            raise ConfigError(f"--set {item!r}: {'.'.join(walked)} has no sub-keys")
        walked.append(part)


def _list_index(node: list, part: str, item: str, where: str) -> int:
    if part.isdigit():
        index = int(part)
        if index >= len(node):
            raise ConfigError(f"--set {item!r}: {where} has {len(node)} entries, no index {index}")
        return index
    names = [e.get("name") for e in node if isinstance(e, dict)]
    if part in names:
        return names.index(part)
    raise ConfigError(f"--set {item!r}: " + _unknown(f"entry of {where}", part, [n for n in names if n]))


def _parse_value(text: str, hint: Any) -> Any:
    """A ``--set`` value: raw text for string keys, YAML for everything else."""
    if _strip_optional(hint) is str:
        return None if text.strip() in ("null", "~") and _allows_none(hint) else text
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set value {text!r} is not valid YAML: {exc}") from None


# --------------------------------------------------------------------------- message helpers


def _unknown(what: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(known) or 'none'})"


def _unknown_key(path: tuple, key: Any, known: list[str]) -> str:
    dotted = _dotted(path + (key,))
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"; did you mean {_dotted(path + (close[0],))!r}?" if close else ""
    return f"{dotted}: unknown key{hint} (allowed here: {', '.join(known)})"


def _where(source: str, lines: dict, path: tuple) -> str:
    probe = tuple(path)
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe)
    return f"{source}:{line}: " if line else f"{source}: "


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    return f"{value!r} ({_kind(value)})"


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _describe(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    origin = typing.get_origin(hint)
    if origin is list:
        item = _describe(typing.get_args(hint)[0])
        return "a list of mappings" if item == "a mapping" else f"a list of {item}"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, "a mapping" if origin is dict else str(hint))


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _allows_none(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING
