"""What identifies a finished unit's work, so a rerun knows what it may reuse.

* :func:`experiment_fingerprint`: everything that decides one experiment's trained weights.  It is built from
  an explicit list of the settings that change training (:data:`TRAINING_KEYS`), not from "the whole config
  minus some sections", so a section or key added later (tuning, input caps, logging) never invalidates a
  finished unit.  A key that changes training is added to the list together with the value that reproduces
  the earlier behaviour (:data:`LATER_KEYS`): at that value it stays out of the hash, so units finished before
  the key existed are still reused.
* :func:`scoring_fingerprint`: the settings that decide a trained model's scores (:data:`SCORING_KEYS`); a
  finished unit whose scoring changed is rescored from its weights without training.

``tests/test_fingerprints.py`` pins both against literal hashes: a change that moves them must be deliberate.
"""

from __future__ import annotations

from typing import Any

from bench.harness.config import BenchConfig, ExperimentConfig, config_hash, to_dict

# Section -> its keys that decide the trained weights (left out: name, experiments, seeds, eval, report, launcher,
# train.checkpoint_every / keep_checkpoints / tensorboard, data.workers, weights.lpips: where and how results are
# written or scored, not what is trained).
TRAINING_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("source", "root", "size", "input", "target", "extra_input", "cache", "folders", "synthetic"),
    "train": ("steps", "epochs", "batch_size", "lr", "betas", "lr_decay_step", "lr_decay_factor", "schedule",
              "warmup_steps", "device", "amp", "log_every", "val_every", "holdout", "best_metric", "accumulate",
              "ema_decay"),
    "loss": ("charbonnier", "ssim", "perceptual", "charbonnier_eps", "ssim_form", "adapter_terms"),
    "weights": ("backbone", "perceptual"),
}
TOP_LEVEL_TRAINING_KEYS = ("plugins",)
EXPERIMENT_KEYS = ("name", "model", "extra_data", "residual", "model_args")
# Keys added after runs were made, with the value that reproduces the earlier behaviour: left out of the
# fingerprint at that value, so finished experiments of earlier versions are still reused.
LATER_KEYS: dict[tuple[str, str], Any] = {
    ("train", "schedule"): "step", ("train", "warmup_steps"): 0, ("train", "val_every"): 0,
    ("train", "holdout"): None, ("train", "best_metric"): "psnr", ("loss", "adapter_terms"): False,
    ("train", "accumulate"): 1, ("train", "ema_decay"): None,
}
SCORING_KEYS = ("splits", "save_predictions", "quantize", "ssim", "autocast", "compile", "weights")  # of eval
LATER_SCORING_KEYS = {"weights": "last"}  # like LATER_KEYS, for the scoring fingerprint


def training_settings(cfg: BenchConfig) -> dict[str, Any]:
    """The settings of :data:`TRAINING_KEYS` as plain data, without later keys at their earlier value."""
    plain = to_dict(cfg)
    settings: dict[str, Any] = {section: {key: plain[section][key] for key in keys
                                          if LATER_KEYS.get((section, key), _ABSENT) != plain[section][key]}
                                for section, keys in TRAINING_KEYS.items()}
    settings.update({key: plain[key] for key in TOP_LEVEL_TRAINING_KEYS})
    return settings


def experiment_fingerprint(cfg: BenchConfig, exp: ExperimentConfig, seed: int) -> str:
    """A hash of everything that decides one experiment's trained weights: the training settings, the
    experiment's own keys and the seed (not the other experiments, nor how the model is scored or timed)."""
    experiment = {key: getattr(exp, key) for key in EXPERIMENT_KEYS}
    return config_hash({"settings": training_settings(cfg), "experiment": experiment, "seed": seed})


def scoring_fingerprint(cfg: BenchConfig) -> str:
    """A hash of the settings that decide a trained model's scores: :data:`SCORING_KEYS` of ``eval``, ``weights.lpips``."""
    scoring = {key: getattr(cfg.eval, key) for key in SCORING_KEYS
               if LATER_SCORING_KEYS.get(key, _ABSENT) != getattr(cfg.eval, key)}
    return config_hash({"eval": scoring, "lpips": cfg.weights.lpips})


_ABSENT = object()
