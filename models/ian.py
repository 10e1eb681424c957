"""IAN: the illumination-aware network for one-to-one relighting, as a relighting adapter.

Zhu, Zhang, Cheng et al., "Designing an Illumination-Aware Network for Deep Image Relighting", IEEE TIP 2022
(the MCG-NKU group; team MCG-NKU of NTIRE 2021 Track 1).  Re-implemented from the paper and from reading the
authors' repository ``NK-CS-ZZL/IAN``: ``network/arch/full_model_one2one_arch.py`` (class ``One2One`` with
``aux_channels=4, short_connection=True``, the configuration of ``options/test_opt.yml``) and
``base_utils/gen_surface_normals.py`` (the normals).  That repository is licensed CC BY-NC 4.0; no code is
copied here, only the architecture (facts) is reproduced.

Structure (every width 48; ``H x W`` a multiple of 16, after padding)::

    aux = [normals (3), depth (1)] in [-1, 1]  ->  condition encoder (adds a 2-channel x/y code in [-1, 1]):
        c0 @H, c1 @H/2, c2 @H/4, c3 @H/8, c4 @H/16       (init: 2 x 3x3; each level: ReLU, 4x4 s2, ReLU, 3x3)
    rgb in [-1, 1] at three scales, coarse to fine:
        1/4:  E1(rgb/4, c2, c3, c4)             -> D1            -> p4 = out1 + rgb/4
        1/2:  E2([rgb/2, up(p4)], c1, c2, c3)   -> D2(+ D1's features)  -> p2 = out2 + rgb/2
        1/1:  E3([rgb,   up(p2)], c0, c1, c2)   -> D3(+ D2's features)  -> p1 = out3 + rgb
    encoder E: init (2 x 3x3), then 2 levels (ReLU, 4x4 s2, ReLU, 3x3), the condition feature of each level
        added in, then 4 dilated residual blocks at 1/4 of its scale
    dilated residual block: [3x3 d1, 3x3 d2, 3x3 d3] concatenated (144 ch) -> attention on channel mean and
        standard deviation -> ReLU -> 3x3 back to 48, added to the input
    attention: (sigmoid(MLP_mean(mean)) + sigmoid(MLP_std(std))) / 2 times the features (MLPs 144 -> 9 -> 144)
    decoder D: (+ up(previous x2)) -> [ReLU, 3x3, ReLU, bilinear x2 + 3x3, ReLU, 3x3] (+ up(previous x3))
        -> the same on (x1 + that) (+ up(previous x4)) -> [ReLU, 3x3, ReLU, 3x3 -> 3] on (that + x0)

2,670,897 parameters, as the official ``One2One(aux_channels=4)``.

Adaptations to the harness (the architecture is unchanged)
---------------------------------------------------------
* **Inputs in [0, 1] in, [0, 1] out.** IAN works in [-1, 1] (images and depth ``normalized_depth * 2 - 1``);
  the adapter maps ``rgb`` and ``depth`` there and maps the outputs back with ``(p + 1) / 2``.
* **Normals and the positional code are computed inside**, in torch, so they are differentiable and work at any
  size: as the official script, on ``depth * 65536`` with ``numpy.gradient``'s rule at spacing 2 (central
  differences inside, one-sided at the borders): ``n = (-dz/dx, -dz/dy, 1) / |.|``.
* **Any input size**: padded (replicate) on the bottom/right to a multiple of 16 and cropped back.
* **The global residual is IAN's own** (``short_connection``): an IAN experiment with the harness's
  ``residual: true`` is a config error (it would add the input twice).
* **Deep supervision**: the two coarse outputs (1/2 and 1/4 scale, mapped to [0, 1]) of the last training
  forward are kept; :meth:`IAN.auxiliary_terms` gives their L1 distance to the target downsampled bicubically
  (their own training uses L1 + grayscale SSIM on all three outputs, weight 1 each; SSIM is left out of the
  auxiliary terms because a 1/4-scale map of a 64-px training image is smaller than SSIM's 11-px window).
  The harness adds them only with ``loss.adapter_terms: true``; by default IAN trains on the harness's loss
  like every other network.
* The channel standard deviation is ``sqrt(max(var, 1e-12))`` instead of ``sqrt(var)``: the same value, but no
  infinite gradient on a constant feature map.
* Initialisation as the official code: every convolution that is a direct element of a ``Sequential``
  gets Xavier-normal weights and biases 0.01; the others keep PyTorch's default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.padding import pad_to_multiple
from models.capabilities import GLOBAL_RESIDUAL, RELIGHTING, Capabilities
from models.registry import register_model

WIDTH = 48
MULTIPLE = 16  # the condition encoder halves four times
DEPTH_SCALE = 65536.0  # the official normals are computed on normalized_depth * 65536
GRADIENT_SPACING = 2.0  # numpy.gradient(depth, 2)


def _xavier_sequential_convs(module: nn.Module) -> None:
    """The official initialisation: convs that are direct elements of a ``Sequential``."""
    for seq in module.modules():
        if isinstance(seq, nn.Sequential):
            for layer in seq:
                if isinstance(layer, nn.Conv2d):
                    nn.init.xavier_normal_(layer.weight)
                    nn.init.constant_(layer.bias, 0.01)


def _up(x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=True)


def surface_normals(depth: torch.Tensor) -> torch.Tensor:
    """Unit normals from ``depth: (B,1,H,W)`` in [0,1] (``normalized_depth``), as IAN computes them.

    ``z = depth * 65536``; ``dz/dy, dz/dx`` by numpy.gradient's rule with spacing 2 (central differences inside,
    one-sided at the borders); returns ``(B,3,H,W)``: ``(-dz/dx, -dz/dy, 1) / norm``, each vector of length 1.
    """
    z = depth[:, 0] * DEPTH_SCALE
    dz_dy, dz_dx = torch.gradient(z, spacing=GRADIENT_SPACING, dim=(1, 2), edge_order=1)
    normal = torch.stack([-dz_dx, -dz_dy, torch.ones_like(z)], dim=1)
    return normal / normal.norm(dim=1, keepdim=True)


def position_code(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(B,2,H,W)``: x then y coordinates running from -1 to 1 across the image (IAN's positional input)."""
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y]).unsqueeze(0).expand(batch, 2, height, width)


class ChannelStatAttention(nn.Module):
    """Scales each channel by the mean of two gates: one from its spatial mean, one from its standard deviation."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = channels // reduction
        self.mean_gate = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(True), nn.Conv2d(hidden, channels, 1),
                                       nn.Sigmoid())
        self.std_gate = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(True), nn.Conv2d(hidden, channels, 1),
                                      nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).clamp_min(1e-12).sqrt()
        return x * (self.mean_gate(mean) + self.std_gate(std)) / 2


class DilatedResidualBlock(nn.Module):
    """``x + conv3x3(relu(attention([conv_d1(x), conv_d2(x), conv_d3(x)])))`` (3x3 convs at dilations 1, 2, 3)."""

    def __init__(self, channels: int):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=d, dilation=d)) for d in (1, 2, 3))
        self.attention = ChannelStatAttention(3 * channels)
        self.fuse = nn.Sequential(nn.ReLU(True), nn.Conv2d(3 * channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(self.attention(torch.cat([b(x) for b in self.branches], dim=1)))


def _stem(in_channels: int, channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(True),
                         nn.Conv2d(channels, channels, 3, padding=1))


def _down(channels: int) -> nn.Sequential:
    """ReLU, 4x4 stride-2 conv, ReLU, 3x3 conv: one level down."""
    return nn.Sequential(nn.ReLU(True), nn.Conv2d(channels, channels, 4, stride=2, padding=1), nn.ReLU(True),
                         nn.Conv2d(channels, channels, 3, padding=1))


class ConditionEncoder(nn.Module):
    """Normals + depth (+ the x/y code) -> features at 1, 1/2, 1/4, 1/8 and 1/16 scale (48 channels each)."""

    def __init__(self, aux_channels: int = 4, channels: int = WIDTH):
        super().__init__()
        self.stem = _stem(aux_channels + 2, channels)
        self.levels = nn.ModuleList(_down(channels) for _ in range(4))

    def forward(self, aux: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = aux.shape
        feats = [self.stem(torch.cat([position_code(b, h, w, aux), aux], dim=1))]
        for level in self.levels:
            feats.append(level(feats[-1]))
        return feats


class ScaleEncoder(nn.Module):
    """One scale's RGB encoder: stem, two levels down, condition features added at each, 4 dilated blocks."""

    def __init__(self, in_channels: int, channels: int = WIDTH):
        super().__init__()
        self.stem = _stem(in_channels, channels)
        self.down1, self.down2 = _down(channels), _down(channels)
        self.bottleneck = nn.Sequential(*[DilatedResidualBlock(channels) for _ in range(4)])

    def forward(self, x: torch.Tensor, cond: list[torch.Tensor]) -> list[torch.Tensor]:
        x0 = self.stem(x) + cond[0]
        x1 = self.down1(x0) + cond[1]
        x2 = self.bottleneck(self.down2(x1) + cond[2])
        return [x0, x1, x2]


class UpConv(nn.Module):
    """Bilinear x2 (align_corners=True), then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_up(x))


def _up_stage(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(True), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(True), UpConv(channels),
                         nn.ReLU(True), nn.Conv2d(channels, channels, 3, padding=1))


class ScaleDecoder(nn.Module):
    """One scale's decoder: two levels up with additive skips (and the coarser decoder's features), a 3-ch head."""

    def __init__(self, channels: int = WIDTH):
        super().__init__()
        self.up2, self.up1 = _up_stage(channels), _up_stage(channels)
        self.head = nn.Sequential(nn.ReLU(True), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(True),
                                  nn.Conv2d(channels, 3, 3, padding=1))

    def forward(self, enc: list[torch.Tensor], coarser: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """``enc``: [x0, x1, x2] of this scale; ``coarser``: the coarser decoder's [x2, x3, x4], added upsampled.

        Returns [x2, x3, x4, prediction] (the first three for the next, finer decoder).
        """
        x0, x1, x2 = enc
        if coarser is not None:
            x2 = x2 + _up(coarser[0])
        x3 = self.up2(x2)
        if coarser is not None:
            x3 = x3 + _up(coarser[1])
        x4 = self.up1(x1 + x3)
        if coarser is not None:
            x4 = x4 + _up(coarser[2])
        return [x2, x3, x4, self.head(x4 + x0)]


class IAN(nn.Module):
    """IAN's ``One2One(aux_channels=4, short_connection=True)`` behind the harness's ``(rgb, depth)`` signature.

    ``forward(rgb, depth)``: rgb ``(B,3,H,W)`` in [0,1], depth ``(B,1,H,W)`` (``normalized_depth`` in [0,1]);
    returns the full-scale relit image ``(B,3,H,W)``, IAN's [-1,1] output mapped to [0,1] (not clamped).
    """

    def __init__(self, in_channels: int = 3, aux_channels: int = 4, pad_mode: str = "replicate"):
        super().__init__()
        self.pad_mode = pad_mode
        self.condition = ConditionEncoder(aux_channels)
        self.encoders = nn.ModuleList([ScaleEncoder(in_channels), ScaleEncoder(2 * in_channels),
                                       ScaleEncoder(2 * in_channels)])
        self.decoders = nn.ModuleList(ScaleDecoder() for _ in range(3))
        _xavier_sequential_convs(self)
        self.pyramid: list[torch.Tensor] = []  # the last training forward's 1/2- and 1/4-scale outputs in [0,1]

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the last training forward's tensors (part of an autograd graph)."""
        return {**self.__dict__, "pyramid": []}

    def train(self, mode: bool = True):
        """Switching to eval drops the last training forward's kept tensors (a model holding them cannot be copied)."""
        if not mode:
            self.pyramid = []
        return super().train(mode)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        outputs = self.forward_pyramid(rgb, depth)
        self.pyramid = outputs[1:] if self.training else []
        return outputs[0]

    def forward_pyramid(self, rgb: torch.Tensor, depth: torch.Tensor) -> list[torch.Tensor]:
        """The three outputs, full, 1/2 and 1/4 scale, each ``(B,3,h,w)`` mapped to [0,1]."""
        h, w = rgb.shape[-2:]
        rgb_p = pad_to_multiple(rgb, MULTIPLE, self.pad_mode) * 2 - 1
        depth_p = pad_to_multiple(depth, MULTIPLE, self.pad_mode)
        cond = self.condition(torch.cat([surface_normals(depth_p), depth_p * 2 - 1], dim=1))
        full, p2, p4 = self._relight(rgb_p, cond)
        crops = [(h, w), (h // 2, w // 2), (h // 4, w // 4)]
        return [(p[..., :ch, :cw] + 1) / 2 for p, (ch, cw) in zip((full, p2, p4), crops)]

    def _relight(self, rgb: torch.Tensor, cond: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """IAN's coarse-to-fine pass in [-1,1]: predictions at full, 1/2 and 1/4 scale (each with its input added)."""
        rgb4 = _up(rgb, 0.25)
        dec4 = self.decoders[0](self.encoders[0](rgb4, cond[2:5]))
        p4 = dec4[3] + rgb4
        rgb2 = _up(rgb, 0.5)
        dec2 = self.decoders[1](self.encoders[1](torch.cat([rgb2, _up(p4)], 1), cond[1:4]), dec4[:3])
        p2 = dec2[3] + rgb2
        dec1 = self.decoders[2](self.encoders[2](torch.cat([rgb, _up(p2)], 1), cond[0:3]), dec2[:3])
        return dec1[3] + rgb, p2, p4

    def auxiliary_terms(self, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Deep supervision of the last training forward: L1 of the 1/2 and 1/4 outputs to the bicubic target.

        ``target: (B,3,H,W)`` in [0,1].  Empty outside training (no coarse outputs kept).
        """
        terms = {}
        for name, pred in zip(("ian_half_l1", "ian_quarter_l1"), self.pyramid):
            small = F.interpolate(target, size=pred.shape[-2:], mode="bicubic", align_corners=False)
            terms[name] = F.l1_loss(pred, small)
        return terms


@register_model("ian", capabilities=Capabilities(tags=(RELIGHTING, GLOBAL_RESIDUAL), auxiliary_terms=True))
def ian(pad_mode: str = "replicate") -> nn.Module:
    """IAN (TIP 2022, MCG-NKU): condition-encoded normals + depth into a 3-scale RGB pyramid, dilated attention."""
    return IAN(pad_mode=pad_mode)
