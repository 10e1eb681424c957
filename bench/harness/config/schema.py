"""The benchmark's config schema: one dataclass per section, each field with its default, help line and checks.

``python -m bench config --keys`` prints every key from here.  Reading YAML into these classes is
:mod:`relight_base.typed_config`'s (generic); the checks spanning several keys are :mod:`.checks`'; the
``report:`` section's schema is the reporter's own (:class:`reports.settings.ReportConfig`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from relight_base.errors import ConfigError
from relight_base.results import Weights
from relight_base.typed_config import meta, unknown
from reports.settings import ReportConfig

WeightsChoice = Literal[Weights.values()]  # eval.weights: "last", "best", "ema_last", "ema_best" (relight_base.results.Weights)


@dataclass
class FoldersConfig:
    """Sub-folders of ``data.root`` (relative to it, or absolute)."""

    train_input: str = field(default="track1_train/input", metadata=meta("Track 1 training inputs: ImageNNN.png + ImageNNN.npy"))
    train_target: str = field(default="track1_train/target", metadata=meta("Track 1 training targets: ImageNNN.png"))
    val_input: str = field(default="track1_validation", metadata=meta("validation inputs: ImageNNN.png + ImageNNN.npy"))
    val_target: str = field(default="track1_validation_gt", metadata=meta("validation ground truth: ImageNNN.png"))
    test_input: str = field(default="track1_test", metadata=meta("test inputs: ImageNNN.png + ImageNNN.npy"))
    test_target: Optional[str] = field(
        default="track1_test_gt", metadata=meta("test ground truth, if any (VIDIT never published it; a missing folder means none)")
    )
    full: Optional[str] = field(
        default="vidit_full",
        metadata=meta("full VIDIT naming Image{NNN}_{TTTT}_{D}.png + Image{NNN}.npy: the source of the paper's extra data"),
    )


@dataclass
class SyntheticConfig:
    """The built-in procedural dataset written in VIDIT's formats (used when ``data.source: synthetic``)."""

    train: int = field(default=24, metadata=meta("training scenes", minimum=1))
    val: int = field(default=24, metadata=meta("validation scenes (intervals over images need more than a handful)", minimum=1))
    test: int = field(default=24, metadata=meta("test scenes", minimum=1))
    seed: int = field(default=0, metadata=meta("random seed of the scene generator", minimum=0))
    size: int = field(default=256, metadata=meta("rendered image side length in pixels", minimum=8))


@dataclass
class DataConfig:
    """Where the data comes from and how it is fed to the models."""

    source: Literal["synthetic", "vidit"] = field(default="synthetic", metadata=meta("synthetic (built in) or vidit (on disk)"))
    root: Optional[str] = field(
        default=None,
        metadata=meta("data folder; for synthetic data null means a cache folder ($RELIGHT_BENCH_CACHE or ~/.cache/relight-bench)"),
    )
    size: int = field(default=128, metadata=meta("training/evaluation side length (resize shorter side, centre crop; SSIM needs >= 11)", minimum=11))
    input: str = field(default="6500_N", metadata=meta("input lighting condition, TEMPERATURE_DIRECTION"))
    target: str = field(default="4500_E", metadata=meta("target lighting condition"))
    extra_input: str = field(default="6500_NE", metadata=meta("extra-input strategy's additional input condition"))
    cache: bool = field(default=True, metadata=meta("decode every image once and keep it in memory"))
    workers: int = field(default=0, metadata=meta("DataLoader worker processes", minimum=0))
    max_pixels: int = field(default=4096 * 4096, metadata=meta(
        "largest image (width x height) read from the data folder; a larger one is refused from its header, before "
        "it is decoded (decompression bombs); VIDIT's are 1024 x 1024", minimum=1))
    folders: FoldersConfig = field(default_factory=FoldersConfig, metadata=meta("dataset sub-folders"))
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig, metadata=meta("built-in synthetic dataset"))


Schedule = Literal["step", "constant", "cosine"]


@dataclass
class TrainConfig:
    """Training schedule shared by every experiment (paper, section 4.1)."""

    steps: int = field(default=100, metadata=meta("optimisation steps per experiment (ignored when epochs is set)", minimum=0))
    epochs: Optional[int] = field(default=None, metadata=meta("train for this many passes over the training pairs instead of steps", minimum=1))
    batch_size: int = field(default=3, metadata=meta("images per step over all processes (paper: 3)", minimum=1))
    lr: float = field(default=1e-4, metadata=meta("Adam learning rate (paper: 1e-4)", positive=True))
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999], metadata=meta("Adam betas (paper: 0.5, 0.999)"))
    lr_decay_step: Optional[int] = field(
        default=None, metadata=meta("step after which the lr is divided by 10; null: a quarter of training (paper: epoch 50 of 200)", minimum=1)
    )
    lr_decay_factor: float = field(default=0.1, metadata=meta("lr multiplier at lr_decay_step", positive=True))
    schedule: Schedule = field(default="step", metadata=meta(
        "lr schedule: step (the paper's: lr_decay_factor after lr_decay_step), constant, or cosine (to 0 at the last "
        "step); constant and cosine suit short runs"))
    warmup_steps: int = field(default=0, metadata=meta(
        "constant and cosine schedules: the lr rises linearly from lr/warmup_steps to lr over these first steps",
        minimum=0))
    device: str = field(default="auto", metadata=meta("auto (CUDA if available), cpu, cuda or cuda:N"))
    amp: Literal["off", "bf16", "fp16"] = field(default="off", metadata=meta("mixed precision on CUDA: off, bf16 or fp16"))
    log_every: int = field(default=1, metadata=meta("write a training-log row every N steps", minimum=1))
    checkpoint_every: int = field(
        default=0, metadata=meta("write a resumable checkpoint every N steps (0: none; weights are saved at the end)", minimum=0)
    )
    keep_checkpoints: int = field(default=2, metadata=meta("keep the newest N checkpoints", minimum=1))
    val_every: int = field(default=0, metadata=meta(
        "score PSNR/SSIM on the held-out training scenes (train.holdout) every N steps and at the last step, log it "
        "to train_log.csv and keep the best weights as best.pt (0: never)", minimum=0))
    holdout: Optional[int] = field(default=None, metadata=meta(
        "training scenes held out of training for val_every (never trained on; never the reported splits); "
        "null: 10% of the training scenes (at least 1) when val_every is set, else none", minimum=0))
    best_metric: Literal["psnr", "ssim"] = field(default="psnr", metadata=meta(
        "held-out metric that picks best.pt (higher is better)"))
    accumulate: int = field(default=1, metadata=meta(
        "micro-batches per optimizer step (gradient accumulation): batch_size stays the batch of one optimizer "
        "step, each micro-batch holds batch_size / (accumulate x processes) images; the lr schedule, steps and "
        "checkpoints count optimizer steps", minimum=1))
    ema_decay: Optional[float] = field(default=None, metadata=meta(
        "keep an exponential moving average of the weights with this decay in (0, 1), e.g. 0.999 (timm's "
        "ModelEmaV3, parameters and BatchNorm buffers alike), saved as ema.pt (and ema_best.pt with val_every) "
        "and scored with eval.weights ema_last or ema_best; null: off", positive=True))
    tensorboard: bool = field(default=False, metadata=meta(
        "write TensorBoard event files per unit (<experiment>/seed<k>/tensorboard/: loss terms, lr, step time, "
        "held-out scores and predictions, hyperparameters with the final scores); needs "
        "pip install -e '.[tensorboard]'; changes no trained weight"))


@dataclass
class LossConfig:
    """The paper's loss, eq. 4: charbonnier * L_cha + ssim * L_ssim + perceptual * L_per."""

    charbonnier: float = field(default=1.0, metadata=meta("lambda_1, Charbonnier weight", nonnegative=True))
    ssim: float = field(default=1.1, metadata=meta("lambda_2, SSIM-loss weight", nonnegative=True))
    perceptual: float = field(default=0.1, metadata=meta("lambda_3, VGG19 conv3_3 perceptual weight", nonnegative=True))
    charbonnier_eps: float = field(default=1e-3, metadata=meta("Charbonnier epsilon", positive=True))
    ssim_form: Literal["neg", "one_minus"] = field(default="neg", metadata=meta("SSIM loss as -SSIM (paper) or 1-SSIM"))
    adapter_terms: bool = field(default=False, metadata=meta(
        "also add the loss terms an adapter declares (IAN's deep supervision, DFuseNet's lighting focal losses), "
        "weight 1 each; off keeps one loss for every network (the report marks rows trained with them)"))


@dataclass
class WeightsConfig:
    """Pretrained ImageNet weights: auto (use if found locally), true (required), false, or a file path."""

    backbone: Union[bool, str] = field(default="auto", metadata=meta("model backbones (ResNet-50, VGG)"))
    perceptual: Union[bool, str] = field(default="auto", metadata=meta("VGG19 of the perceptual loss; missing: the term is dropped"))
    lpips: Union[bool, str] = field(default="auto", metadata=meta("AlexNet trunk of LPIPS; missing: LPIPS/MPS reported n/a"))


@dataclass
class EvalConfig:
    """Evaluation and timing."""

    splits: list[Literal["val", "test"]] = field(default_factory=lambda: ["val", "test"], metadata=meta("splits to score"))
    batch_size: int = field(default=4, metadata=meta("images per evaluation batch", minimum=1))
    save_predictions: bool = field(default=True, metadata=meta("write predicted PNGs"))
    timing_rounds: int = field(default=60, metadata=meta(
        "rounds of the timing phase after training: each round runs every model once, in an order that rotates", minimum=1))
    timing_runs: Optional[int] = field(default=None, metadata=meta(
        "deprecated name of timing_rounds (a value here is used as timing_rounds, with a warning)", minimum=1))
    timing_warmup: int = field(default=2, metadata=meta("untimed warm-up passes per model before the rounds", minimum=0))
    timing_size: Optional[int] = field(default=None, metadata=meta(
        "side length of the timing input (GFLOPs are counted at it too); null: data.size (the paper's tables: 1024)",
        minimum=11))
    timing_threads: Optional[int] = field(default=None, metadata=meta(
        "CPU threads pinned for the timing phase; null: torch's current count (recorded either way)", minimum=1))
    quantize: bool = field(default=True, metadata=meta(
        "score the prediction rounded to 8 bits, exactly as the PNG written to predictions/ (as NTIRE 2021 scored "
        "the submitted PNGs); false: score the clamped float prediction"))
    ssim: Literal["gaussian", "uniform7"] = field(default="gaussian", metadata=meta(
        "SSIM convention: gaussian (pytorch-msssim: 11-tap Gaussian, sigma 1.5) or uniform7 (scikit-image's default: "
        "7x7 uniform window, sample covariance, on the 8-bit image); MPS uses the one chosen"))
    autocast: Literal["off", "bf16", "fp16"] = field(
        default="off", metadata=meta("evaluate and time in CUDA mixed precision: off, bf16 or fp16 (ignored on CPU)")
    )
    compile: bool = field(default=False, metadata=meta("torch.compile the inference model (slow first call)"))
    weights: WeightsChoice = field(default=Weights.LAST.value, metadata=meta(
        "weights the tables, `predict` and `export` use: last (model.pt, the end of training), best (best.pt, "
        "the best held-out score of train.val_every), ema_last (ema.pt, the moving average of train.ema_decay at "
        "the end) or ema_best (ema_best.pt, the moving average at its best held-out score)"))


@dataclass
class SlurmConfig:
    """``launcher.type: slurm``: each experiment x seed one element of a Slurm job array, through submitit."""

    partition: Optional[str] = field(default=None, metadata=meta("Slurm partition (null: the cluster's default)"))
    time_min: int = field(default=240, metadata=meta(
        "time limit of each unit's job in minutes; a unit that reaches it checkpoints and is requeued", minimum=1))
    gpus_per_job: Optional[int] = field(default=None, metadata=meta(
        "GPUs per unit; more than 1 trains with DDP, one task per GPU; null: 1 if the partition's nodes have GPUs "
        "(sinfo's GRES), else 0", minimum=0))
    tasks_per_job: Optional[int] = field(default=None, metadata=meta(
        "processes (DDP ranks) per unit; null: gpus_per_job, at least 1 (more than 1 without GPUs: DDP over gloo)",
        minimum=1))
    cpus_per_task: Optional[int] = field(default=None, metadata=meta("CPUs per task (null: the cluster's default)",
                                                                      minimum=1))
    mem_gb: Optional[int] = field(default=None, metadata=meta("memory per unit in GB (null: the cluster's default)",
                                                              minimum=1))
    array_parallelism: int = field(default=16, metadata=meta("units of the array allowed to run at once", minimum=1))
    signal_delay_s: int = field(default=90, metadata=meta(
        "seconds before the time limit at which Slurm signals a unit to checkpoint and requeue (below time_min)",
        minimum=1))
    max_requeues: int = field(default=3, metadata=meta("how often a unit may be requeued after its time limit",
                                                        minimum=0))
    setup: list[str] = field(default_factory=list, metadata=meta(
        "shell lines each job runs first, e.g. [module load cuda, source /shared/venv/bin/activate]"))
    additional: dict[str, Any] = field(default_factory=dict, metadata=meta(
        "more sbatch options, passed as submitit's slurm_additional_parameters, e.g. {account: abc, qos: high}"))


@dataclass
class LauncherConfig:
    """Where the experiment x seed units run: this process, parallel local processes, or a Slurm job array."""

    type: Literal["inline", "local", "slurm"] = field(default="inline", metadata=meta(
        "inline (one after another in this process), local (--jobs parallel processes) or slurm (a job array)"))
    jobs: int = field(default=1, metadata=meta("local: units running at once", minimum=1))
    devices: list[str] = field(default_factory=list, metadata=meta(
        "local: CUDA_VISIBLE_DEVICES of each parallel slot, e.g. ['0', '1'] or ['0,1', '2,3']; empty: one GPU per "
        "slot in turn, or on a CPU machine the cores split evenly"))
    threads: Optional[int] = field(default=None, metadata=meta(
        "local: CPU threads per unit (null: the machine's cores divided by jobs)", minimum=1))
    poll_s: float = field(default=5.0, metadata=meta("seconds between two looks at the units' states while waiting",
                                                      positive=True))
    slurm: SlurmConfig = field(default_factory=SlurmConfig, metadata=meta("Slurm job settings (type: slurm)"))


@dataclass
class ExperimentTrainConfig:
    """One experiment's own training settings (null: the shared ``train:`` value), e.g. the lr ``bench tune``
    chose for it.  A value set here enters the experiment's fingerprint like any hand-set ``train:`` value."""

    lr: Optional[float] = field(default=None, metadata=meta("this experiment's Adam learning rate", positive=True))
    schedule: Optional[Schedule] = field(default=None, metadata=meta("this experiment's lr schedule"))
    warmup_steps: Optional[int] = field(default=None, metadata=meta("this experiment's warm-up steps", minimum=0))

    def overrides(self) -> dict[str, Any]:
        """The settings given here (not null), by ``train:`` key."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


@dataclass
class ExperimentConfig:
    """One row of the comparison: a model trained on a data strategy."""

    name: str = field(metadata=meta("unique experiment name (letters, digits, '-', '_', '.')"))
    model: str = field(metadata=meta("registered model name (see `python -m bench models`)"))
    extra_data: Union[bool, list[str]] = field(
        default=False, metadata=meta("false, true (both paper strategies) or a list of: extra_input, mirror")
    )
    residual: bool = field(default=False, metadata=meta("learn a residual: output = relu(rgb + model(rgb, depth))"))
    model_args: dict[str, Any] = field(default_factory=dict, metadata=meta("keyword arguments for the model factory"))
    train: ExperimentTrainConfig = field(default_factory=ExperimentTrainConfig, metadata=meta(
        "this experiment's own lr, schedule, warmup_steps (null: the shared train: value; bench run --tuned fills them)"))


@dataclass
class LogRange:
    """A log-uniform range ``[low, high]`` of a positive number."""

    low: float = field(metadata=meta("lowest value", positive=True))
    high: float = field(metadata=meta("highest value", positive=True))


@dataclass
class IntRange:
    """A range ``[low, high]`` of whole numbers."""

    low: int = field(metadata=meta("lowest value", minimum=0))
    high: int = field(metadata=meta("highest value", minimum=0))


@dataclass
class SpaceConfig:
    """What ``bench tune`` searches, one space for every experiment (null: that setting is not tuned)."""

    lr: Optional[LogRange] = field(default_factory=lambda: LogRange(3e-5, 3e-3), metadata=meta(
        "learning rate, searched log-uniformly over [low, high]"))
    schedule: Optional[list[Schedule]] = field(default=None, metadata=meta(
        "lr schedules to choose from (e.g. [constant, cosine]); null: train.schedule"))
    warmup_steps: Optional[IntRange] = field(default=None, metadata=meta(
        "warm-up steps, searched uniformly over [low, high]; null: train.warmup_steps"))


@dataclass
class TuneConfig:
    """``bench tune``: an equal tuning budget for every trainable experiment, scored on held-out training scenes."""

    space: SpaceConfig = field(default_factory=SpaceConfig, metadata=meta("the search space"))
    trials: int = field(default=6, metadata=meta("trials per experiment (failed trials count)", minimum=1))
    steps: Optional[int] = field(default=None, metadata=meta(
        "training steps per trial; null: train.steps", minimum=1))
    sampler: Literal["qmc", "tpe", "random"] = field(default="qmc", metadata=meta(
        "Optuna sampler: qmc (scrambled Sobol, quasi-random), tpe or random; seeded by sampler_seed"))
    sampler_seed: int = field(default=0, metadata=meta("seed of the sampler: the same seed proposes the same trials",
                                                       minimum=0))
    objective: Literal["psnr", "ssim"] = field(default="psnr", metadata=meta(
        "held-out metric a trial is judged by (higher is better)"))
    objective_step: Literal["best", "last"] = field(default="best", metadata=meta(
        "the trial's best held-out value over its validations, or its value at the last step"))
    holdout: int = field(default=6, metadata=meta(
        "training scenes held out to score the trials (never the val or test split); 6 or more: fewer make a noisy "
        "objective", minimum=1))
    val_every: Optional[int] = field(default=None, metadata=meta(
        "validate a trial every N steps (and at its last); null: train.val_every, or only at the last step",
        minimum=1))
    seeds: list[int] = field(default_factory=lambda: [1000], metadata=meta(
        "training seeds of each trial (its objective is their mean); must differ from the evaluation seeds"))
    parallel: int = field(default=1, metadata=meta(
        "trials proposed together per round, each round from the completed ones only (independent of --jobs)",
        minimum=1))


@dataclass
class BenchConfig:
    """A whole benchmark: data, training schedule, experiments and seeds."""

    name: str = field(default="benchmark", metadata=meta("run name; results go to <out>/<name>/"))
    data: DataConfig = field(default_factory=DataConfig, metadata=meta("dataset"))
    train: TrainConfig = field(default_factory=TrainConfig, metadata=meta("training"))
    loss: LossConfig = field(default_factory=LossConfig, metadata=meta("loss weights"))
    weights: WeightsConfig = field(default_factory=WeightsConfig, metadata=meta("pretrained weights"))
    eval: EvalConfig = field(default_factory=EvalConfig, metadata=meta("evaluation and timing"))
    report: ReportConfig = field(default_factory=ReportConfig, metadata=meta("comparisons and intervals in the report"))
    launcher: LauncherConfig = field(default_factory=LauncherConfig, metadata=meta(
        "where the experiment x seed units run (bench run --launcher)"))
    tune: TuneConfig = field(default_factory=TuneConfig, metadata=meta(
        "bench tune: the search space and budget (not part of any experiment's fingerprint)"))
    experiments: list[ExperimentConfig] = field(default_factory=list, metadata=meta("experiments to run"))
    seeds: list[int] = field(default_factory=lambda: [0], metadata=meta("seeds; every experiment runs once per seed"))
    plugins: list[str] = field(default_factory=list, metadata=meta("Python modules to import so their adapters register"))

    def experiment(self, name: str) -> ExperimentConfig:
        """Return the experiment called ``name``."""
        for exp in self.experiments:
            if exp.name == name:
                return exp
        raise ConfigError(unknown("experiment", name, [e.name for e in self.experiments]))


