"""The reference MBNet that ``bench perf`` races ours against: the official code's forward pass.

Two references, both holding exactly the weights of the model they are compared with:

* **built in** (default): our :class:`models.mbnet.MBNet` run the way the authors' code runs it:
  every KTU in the ``F.unfold`` formulation (9 copies of its input), BatchNorm layers kept, NCHW
  tensors, ``torch.no_grad``, output ``relu(rgb + map)``.  Same convolutions, same FLOPs.
* **the official code**, where a user has it: ``--official-code DIR`` imports ``hdfnet.py`` (and the
  ``BaseBlocks``/``MyModules``/``ResNet`` modules it imports) from ``DIR`` or ``DIR/code``, builds
  ``HDFNet_Res50(pretrained=False)`` and copies its weights into ours with
  :func:`models.mbnet.convert_official_state_dict`.  That code is not part of this project.

BatchNorm statistics and affine parameters are randomised (seeded) before the copy, so the
equality check between the two outputs is not trivially satisfied by identity BatchNorms.
"""

from __future__ import annotations

import copy
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from relight_base.errors import BenchError
from bench.harness.modeling import RelightingModel
from models.registry import get_entry

_OFFICIAL_MODULES = ("hdfnet", "BaseBlocks", "MyModules", "ResNet")


@dataclass
class ReferencePair:
    """Our MBNet (plain, trainable form, residual switch on) and the reference, with equal weights."""

    ours: nn.Module
    reference: nn.Module
    description: str


class OfficialFormulation(nn.Module):
    """Our MBNet evaluated as the official code evaluates it: unfold KTUs, BatchNorm kept, residual output.

    forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> relu(rgb + map) (B,3,H,W).
    """

    def __init__(self, mbnet: nn.Module) -> None:
        super().__init__()
        self.mbnet = copy.deepcopy(mbnet).eval()
        self.mbnet.set_ktu_mode("unfold")

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return torch.relu(rgb + self.mbnet(rgb, depth))


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm random running statistics and affine parameters (in place, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                    m.bias.copy_(torch.randn(n, generator=gen) * 0.1)


def builtin_pair(seed: int = 0) -> ReferencePair:
    """Our MBNet and :class:`OfficialFormulation` of the same weights."""
    from models.mbnet import MBNet

    torch.manual_seed(seed)
    mbnet = MBNet()
    randomise_batchnorm(mbnet, seed)
    return ReferencePair(
        ours=RelightingModel(mbnet, residual=True, capabilities=get_entry("mbnet").capabilities).eval(),
        reference=OfficialFormulation(mbnet),
        description="built-in official formulation (unfold KTU, BatchNorm kept, NCHW, no_grad)",
    )


def load_official_class(code_dir: Path) -> type:
    """Import ``HDFNet_Res50`` from the authors' code in ``code_dir`` (or ``code_dir/code``)."""
    code_dir = Path(code_dir).expanduser()
    candidates = [code_dir, code_dir / "code"]
    found = next((d for d in candidates if (d / "hdfnet.py").is_file()), None)
    if found is None:
        raise BenchError(
            f"--official-code: no hdfnet.py in {code_dir} or {code_dir / 'code'}; expected the authors' MBNet "
            "code (github.com/weitingchen83/NTIRE2021-Depth-Guided-Image-Relighting-MBNet, folder code/)"
        )
    saved = {name: sys.modules.pop(name) for name in _OFFICIAL_MODULES if name in sys.modules}
    sys.path.insert(0, str(found))
    try:
        module = importlib.import_module("hdfnet")
    except Exception as exc:  # their code, their import errors: say where it came from
        raise BenchError(f"--official-code: importing {found / 'hdfnet.py'} failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(found))
        for name in _OFFICIAL_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    if not hasattr(module, "HDFNet_Res50"):
        raise BenchError(f"--official-code: {found / 'hdfnet.py'} has no class HDFNet_Res50")
    return module.HDFNet_Res50


def official_pair(code_dir: Path, seed: int = 0) -> ReferencePair:
    """The authors' ``HDFNet_Res50`` and our MBNet holding its weights (strict key match)."""
    from models.mbnet import MBNet, convert_official_state_dict

    cls = load_official_class(code_dir)
    torch.manual_seed(seed)
    official = cls(pretrained=False)
    randomise_batchnorm(official, seed)
    official.eval()
    mbnet = MBNet()
    try:
        mbnet.load_state_dict(convert_official_state_dict(official.state_dict()), strict=True)
    except RuntimeError as exc:
        raise BenchError(f"--official-code: its HDFNet_Res50 weights do not map onto models.mbnet.MBNet: {exc}") from None
    return ReferencePair(
        ours=RelightingModel(mbnet, residual=True, capabilities=get_entry("mbnet").capabilities).eval(),
        reference=official,
        description=f"official HDFNet_Res50 from {code_dir}",
    )


def reference_pair(code_dir: Path | None = None, seed: int = 0) -> ReferencePair:
    """:func:`official_pair` when ``code_dir`` is given, else :func:`builtin_pair`."""
    return official_pair(code_dir, seed) if code_dir is not None else builtin_pair(seed)
