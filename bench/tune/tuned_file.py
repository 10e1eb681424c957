"""``tuned.yaml``: what ``bench tune`` chose per experiment, and how ``bench run --tuned`` applies it.

The file records, per tuned experiment: the chosen values (its ``train:`` settings), the trial that earned them
and its held-out score, the budget spent (trials x steps x seeds, failed trials included) and the study's name,
plus the tuning protocol and the hashes of what it tuned (:func:`tuning_hash`: the shared settings that decide
training and the tuning protocol, not the seeds, evaluation or report; per experiment :func:`experiment_hash`).
``bench run --tuned`` (with or without ``--only``) reads it as data, as carefully as any input: a file of another
config, an unknown experiment, a value outside ``tune.space`` or of the wrong type is a clear error naming the file and the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from relight_base.atomic import atomic_write_text
from relight_base import run_folder
from relight_base.errors import ConfigError
from relight_base.typed_config import read_yaml_file
from bench.harness.config import BenchConfig, ExperimentConfig, config_hash, to_yaml
from bench.harness.fingerprints import EXPERIMENT_KEYS, training_settings
from bench.tune.space import outside
from bench.tune.study import protocol

TUNED_YAML = run_folder.TUNED_YAML
FORMAT = 1
HEADER = ("# tuned.yaml: written by `python -m bench tune`; apply it with `python -m bench run CONFIG --tuned "
          "tuned.yaml`.\n# Each experiment's values were chosen on held-out training scenes only, with the budget "
          "recorded beside them.\n")


def tuning_hash(cfg: BenchConfig) -> str:
    """What a tuned file is valid for: the shared training settings and the tuning protocol (not the seeds,
    evaluation or report; each experiment is checked on its own by :func:`experiment_hash`)."""
    return config_hash({"settings": training_settings(cfg), "tune": protocol(cfg)})


def experiment_hash(exp: ExperimentConfig) -> str:
    """What one experiment's entry is valid for: its model, arguments, training pairs and residual switch."""
    return config_hash({key: getattr(exp, key) for key in EXPERIMENT_KEYS if key != "name"})


def write_tuned(run_dir: Path, cfg: BenchConfig, records: dict[str, dict], not_tuned: list[str], written: str) -> Path:
    """Write ``run_dir/tuned.yaml`` atomically; ``records``: experiment -> its entry (see the module docstring)."""
    data = {"format": FORMAT, "written": written, "config_hash": tuning_hash(cfg), "protocol": protocol(cfg),
            "experiments": records, "not_tuned": list(not_tuned)}
    path = Path(run_dir) / TUNED_YAML
    atomic_write_text(path, HEADER + to_yaml(data))
    return path


def read_tuned(path: Path, cfg: BenchConfig) -> dict[str, dict[str, Any]]:
    """``{experiment: {train key: value}}`` from ``path``, checked against ``cfg``; a clear error otherwise."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: tuned file does not exist; `python -m bench tune CONFIG` writes one")
    data = read_yaml_file(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("experiments"), dict):
        raise ConfigError(f"{path}: expected a tuned.yaml of format {FORMAT} as `python -m bench tune` writes it "
                          f"(format, config_hash, experiments)")
    if data.get("config_hash") != tuning_hash(cfg):
        raise ConfigError(f"{path}: made for another config (its config_hash {data.get('config_hash')!r} is not "
                          f"this config's {tuning_hash(cfg)!r}: the training settings, experiments or tuning "
                          f"protocol differ); tune this config with `python -m bench tune`")
    experiments = {exp.name: exp for exp in cfg.experiments}
    values = {}
    for name, entry in data["experiments"].items():
        if name not in experiments:
            raise ConfigError(f"{path}: experiments.{name}: no such experiment in the config "
                              f"({', '.join(sorted(experiments))})")
        if not isinstance(entry, dict) or entry.get("experiment_hash") != experiment_hash(experiments[name]):
            raise ConfigError(f"{path}: experiments.{name}: tuned for another experiment of that name (its model, "
                              f"model_args, extra_data or residual differ); tune it again")
        train = entry.get("train")
        if not isinstance(train, dict) or not train:
            raise ConfigError(f"{path}: experiments.{name}.train: expected the chosen values, e.g. {{lr: 0.0003}}")
        problem = outside(train, cfg.tune.space)
        if problem is not None:
            raise ConfigError(f"{path}: experiments.{name}.train: {problem}")
        values[name] = train
    return values


def apply_tuned(cfg: BenchConfig, values: dict[str, dict[str, Any]], source: str) -> tuple[BenchConfig, list[str]]:
    """``cfg`` with each experiment's tuned values as its own ``train:`` settings, and one line per experiment
    saying where its values came from (``source``: the tuned file)."""
    experiments, lines = [], []
    for exp in cfg.experiments:
        chosen = values.get(exp.name)
        if chosen is None:
            lines.append(f"{exp.name}: not tuned (the shared train: settings)")
            experiments.append(exp)
            continue
        own = dataclasses.replace(exp.train, **{k: (int(v) if k == "warmup_steps" else v) for k, v in chosen.items()})
        experiments.append(dataclasses.replace(exp, train=own))
        lines.append(f"{exp.name}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                                 for k, v in chosen.items()) + f" from {source}")
    return dataclasses.replace(cfg, experiments=experiments), lines
