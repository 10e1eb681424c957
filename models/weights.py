"""Pretrained weights: one place that finds ImageNet checkpoints on local disk, never downloads them.

``pretrained`` settings, used for backbones (ResNet-50, VGG), the perceptual
loss (VGG19) and LPIPS (AlexNet):

* ``"auto"`` - use a checkpoint found locally, else random initialisation with one warning;
* ``True``   - a checkpoint is required: fail with a message saying where to put it;
* ``False``  - random initialisation, no search;
* a path     - load exactly that file (``.pth``/``.pt``/``.bin`` state dict or ``.safetensors``).

Where "locally" means, in order: the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
where torchvision puts its downloads) under torchvision's file name, then the
Hugging Face cache that timm uses (``$HF_HOME``), looked up with no network
access.  The result says which file was used (or why none), and is recorded per
experiment so reports can say which numbers came from random weights.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import torch

from relight_base.errors import ConfigError

log = logging.getLogger(__name__)

Pretrained = Union[bool, str]


@dataclass(frozen=True)
class CheckpointSpec:
    """Where a known backbone's ImageNet weights can be found on disk."""

    name: str
    torchvision_files: tuple[str, ...]  # file names torchvision downloads into $TORCH_HOME/hub/checkpoints
    hf_repos: tuple[str, ...] = ()      # timm's Hugging Face repos, looked up in the local HF cache only


KNOWN_CHECKPOINTS: dict[str, CheckpointSpec] = {
    spec.name: spec
    for spec in (
        CheckpointSpec("resnet50", ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50-19c8e357.pth"),
                       ("timm/resnet50.tv_in1k", "timm/resnet50.a1_in1k")),
        CheckpointSpec("vgg19", ("vgg19-dcbb9e9d.pth",), ("timm/vgg19.tv_in1k",)),
        CheckpointSpec("vgg19_bn", ("vgg19_bn-c79401a0.pth",), ("timm/vgg19_bn.tv_in1k",)),
        CheckpointSpec("vgg16", ("vgg16-397923af.pth",), ("timm/vgg16.tv_in1k",)),
        CheckpointSpec("vgg16_bn", ("vgg16_bn-6c64b313.pth",), ("timm/vgg16_bn.tv_in1k",)),
        CheckpointSpec("alexnet", ("alexnet-owt-7be5be79.pth",)),
    )
}


_WARNED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class WeightsChoice:
    """What :func:`resolve_weights` decided: a file to load, or random initialisation and why."""

    backbone: str
    path: Path | None
    reason: str

    @property
    def pretrained(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        """One line for logs, results files and reports."""
        return f"{self.backbone}: {self.path}" if self.path else f"{self.backbone}: random init ({self.reason})"


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/hub/checkpoints`` by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def parse_pretrained(value: Any, key: str = "pretrained") -> Pretrained:
    """Validate a ``pretrained`` setting: auto, true, false or a file path."""
    if isinstance(value, bool) or value == "auto":
        return value
    if isinstance(value, str) and value.strip():
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value
    raise ConfigError(f"{key}: expected auto, true, false or a checkpoint path, got {value!r}")


def find_local_checkpoint(backbone: str) -> Path | None:
    """The first local checkpoint of ``backbone`` (torch hub cache, then HF cache), or None."""
    spec = KNOWN_CHECKPOINTS[backbone]
    hub = torch_hub_checkpoints()
    for name in spec.torchvision_files:
        if (hub / name).is_file():
            return hub / name
    for repo in spec.hf_repos:
        found = _hf_cached_file(repo)
        if found is not None:
            return found
    return None


def _hf_cached_file(repo: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cache = os.environ.get("HF_HUB_CACHE") or str(Path(os.environ.get("HF_HOME") or "~/.cache/huggingface").expanduser() / "hub")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        try:
            hit = try_to_load_from_cache(repo, filename, cache_dir=cache)
        except Exception:  # a malformed cache is the same as no cache
            hit = None
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def resolve_weights(backbone: str, pretrained: Pretrained, key: str = "pretrained",
                    fallback: str = "using random initialisation") -> WeightsChoice:
    """Decide which checkpoint ``backbone`` loads under a ``pretrained`` setting (no download, ever).

    ``fallback`` says, in the one warning logged when ``auto`` finds nothing, what happens instead.
    """
    if backbone not in KNOWN_CHECKPOINTS:
        raise ValueError(f"no checkpoint spec for backbone {backbone!r}")
    pretrained = parse_pretrained(pretrained, key)
    if pretrained is False:
        return WeightsChoice(backbone, None, "pretrained weights switched off")
    if isinstance(pretrained, str) and pretrained != "auto":
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise ConfigError(f"{key}: checkpoint file {path} does not exist")
        return WeightsChoice(backbone, path, "explicit path")
    found = find_local_checkpoint(backbone)
    if found is not None:
        return WeightsChoice(backbone, found, "found locally")
    spec = KNOWN_CHECKPOINTS[backbone]
    where = torch_hub_checkpoints() / spec.torchvision_files[0]
    if pretrained is True:
        raise ConfigError(
            f"{key}: ImageNet weights for {backbone} are required but not on this machine. Put torchvision's "
            f"checkpoint at {where} (set TORCH_HOME to use another cache), or give its path instead of true. "
            "Nothing is downloaded at run time."
        )
    if (backbone, key) not in _WARNED:  # one warning per backbone and setting, not one per experiment
        _WARNED.add((backbone, key))
        log.warning("%s: no ImageNet weights for %s found locally (looked for %s); %s", key, backbone, where, fallback)
    return WeightsChoice(backbone, None, f"not found locally (looked for {where})")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict (``.safetensors`` or a torch file, weights only; ``state_dict``/``model`` wrappers unwrapped)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise ConfigError(f"checkpoint {path} does not hold a state dict (found {type(state).__name__})")
    return dict(state)


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, source: str, skip: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module``, ignoring keys the module lacks (e.g. a classifier) and prefixes in ``skip``.

    Every parameter of ``module`` outside ``skip`` must be present with the right shape: a
    mismatching checkpoint is an error naming the first offending keys, never a partial load.
    """
    own = module.state_dict()
    wanted = {k: v for k, v in own.items() if not k.startswith(skip) and not k.endswith("num_batches_tracked")}
    missing = [k for k in wanted if k not in state]
    wrong = [k for k in wanted if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        detail = (f"missing {missing[:3]}" if missing else "") + (f" wrong shape {wrong[:3]}" if wrong else "")
        raise ConfigError(f"checkpoint {source} does not fit this network: {detail.strip()}")
    module.load_state_dict({k: state[k] for k in wanted}, strict=False)
