"""The benchmark config: YAML in, typed and validated dataclasses out.

The schema is :mod:`bench.harness.config.schema` (one dataclass per section); the checks spanning several keys
are :mod:`bench.harness.config.checks`; reading YAML into the schema is the generic
:mod:`relight_base.typed_config`.  :func:`load_config` reads a file, applies ``--set key=value`` overrides and
converts the result, collecting every problem into one :class:`~relight_base.errors.ConfigError` whose lines
name the file, the line, the dotted key, the value found and what was expected.  Unknown keys get a
did-you-mean.  Reading a config runs no code of its own; two keys make a run do so later, on purpose:
``plugins:`` (Python modules the run imports, see :mod:`models.registry`) and ``launcher.slurm.setup`` (shell
lines each Slurm job runs first).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from relight_base.errors import ConfigError
from relight_base.typed_config import (check_size, config_hash, load, schema_help as _schema_help, to_dict, to_yaml,
                                       unknown)
from bench.harness.config.checks import STRATEGY_NAMES, check_config
from bench.harness.config.schema import (BenchConfig, DataConfig, EvalConfig, ExperimentConfig,
                                         ExperimentTrainConfig, FoldersConfig, LauncherConfig, LossConfig,
                                         ReportConfig, SlurmConfig, SyntheticConfig, TrainConfig, WeightsConfig)

__all__ = ["BenchConfig", "DataConfig", "EvalConfig", "ExperimentConfig", "ExperimentTrainConfig", "FoldersConfig",
           "LauncherConfig", "experiment_config",
           "LossConfig", "ReportConfig", "STRATEGY_NAMES", "SlurmConfig", "SyntheticConfig", "TrainConfig",
           "WeightsConfig", "config_hash", "load_config", "parse_config", "schema_help", "select_experiments",
           "to_dict", "to_yaml"]


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
        check_size(path.stat().st_size, str(path))  # before reading it
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return parse_config(text, source=str(path), overrides=overrides, only=only)


def parse_config(text: str, source: str = "<config>", overrides=(), only: str | None = None) -> BenchConfig:
    """Like :func:`load_config` for YAML text; ``source`` names it in messages."""
    cfg = load(text, BenchConfig, source, overrides, check=check_config)
    return select_experiments(cfg, only) if only else cfg


def select_experiments(cfg: BenchConfig, only: str) -> BenchConfig:
    """Keep the comma-separated experiments named in ``only`` (``--only``)."""
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    names = [e.name for e in cfg.experiments]
    for name in wanted:
        if name not in names:
            raise ConfigError("--only: " + unknown("experiment", name, names))
    return dataclasses.replace(cfg, experiments=[e for e in cfg.experiments if e.name in wanted])


def schema_help(cls: type = BenchConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, default, help)`` for every key of the benchmark schema (or of ``cls``), for docs and ``--help``."""
    return _schema_help(cls, prefix)


def experiment_config(cfg: BenchConfig, exp: ExperimentConfig) -> BenchConfig:
    """``cfg`` as experiment ``exp`` trains with it: ``exp.train``'s settings (lr, schedule, warmup_steps) in
    place of the shared ``train:`` ones; ``cfg`` itself when the experiment sets none."""
    overrides = exp.train.overrides()
    if not overrides:
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **overrides))

