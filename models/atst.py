"""ATSA (called "ATST" in the MBNet paper): the asymmetric two-stream RGB-D network, with a 3-channel head.

Zhang, Sun, Liu, Xu, Piao and Lu, "Asymmetric Two-Stream Architecture for Accurate
RGB-D Saliency Detection", ECCV 2020.  One of the four RGB-D salient-object networks
that the MBNet paper (section 4.3, Table 2, row "ATST") retrained for relighting
after "replacing the final convolutional layers so their output is three-channel
tensors".  Re-implemented from the paper's abstract and a reading of the official
repository, ``sxfduter/ATSA`` (HEAD 519d90a): ``model_baseline.py`` (the VGG19-bn
RGB network), ``model_depth.py`` (the depth stream), ``model_ladder.py`` (the flow
ladder and the heads) and ``depth_attention_module.py`` (the DAM), wired together
in ``demo.py`` and ``train.py``.  That repository has no licence, so none of its
code is reused here.

Structure (shapes for an ``H x W`` input, ``H`` and ``W`` multiples of 32)::

    rgb (B,3,H,W) --RGB stream (VGG19-bn, 16 convs, 5 ceil-mode pools)-->
        h2 128@H/4   h3 256@H/8   h4 512@H/16   h5 512@H/32     (taken after pools 2..5)
    depth (B,1,H,W) -> 3 channels --lightweight depth stream-->
        d2 32@H/4    d3 32@H/4    d4 128@H/4                    (all at 1/4)

    flow ladder module (FLM):
        transitions  f0 = 3x3(h2 -> 32)  f1 = 3x3(h3 -> 64)  f2 = 3x3(h4 -> 128)  f3 = 3x3(h5 -> 256)
        layer1  [f0, f1]               -> sum-fusion  -> [32@1/4, 64@1/8];             DAM1(., d2) on 1/4
        layer2  [y0, y1, f2]           -> sum-fusion  -> [32@1/4, 64@1/8, 128@1/16];   DAM2(., d3) on 1/4
        layer3  [y0, y1, y2, f3]       -> concat-fusion -> 128@1/4;                    DAM3(., d4)
    head:   x2 bilinear -> 1x1 128->128->128->64 (BN+ReLU) -> x2 bilinear
            -> 1x1 64->64->64 (BN+ReLU) -> 1x1 64->3  ==> map (B,3,H,W)

Each ladder layer runs 4 residual BasicBlocks on every branch but the newest
(lowest-resolution) one, which enters the fusion as it came from its transition,
then fuses HRNet-style: an output at resolution ``i`` sums all branches, lower
resolutions through ``1x1 conv + BN + nearest upsample``, higher ones through a
chain of stride-2 ``3x3 conv + BN`` links (ReLU between links), and a ReLU after
the sum.  Layer3 has a single (1/4) output that *concatenates* branch 0 with the
other three brought to 32 channels by ``1x1 conv + BN + nearest upsample``.

Where depth enters
------------------
Only through the three depth attention modules (DAM), each on the 1/4-resolution
RGB branch: after layer1 (with d2, 32 ch), after layer2 (with d3, 32 ch) and on the
layer3 output (with d4, 128 ch).  A DAM pools the depth feature into a channel vector
with a softmax spatial attention (a ``1x1 conv C->1``, softmax over all positions),
turns it into channel weights ``w`` (``1x1 conv C->C``, LayerNorm over ``[C,1,1]``,
ReLU, ``1x1 conv C->C``, sigmoid), and returns ``sigmoid(X * sigmoid(D * w))``: the
RGB branch is *replaced* by a squashed, depth-gated version (no residual), as in
the official code.  Nothing else of the depth stream reaches the output.

Adapter contract (see :mod:`models.registry`)
--------------------------------------------
* ``forward(rgb, depth) -> map``: ``rgb`` (B,3,H,W) float in [0,1]; ``depth`` (B,1,H,W)
  (VIDIT normalised depth, about [0,1]).
* RGB normalisation: ``(rgb - mean) / std`` with the official data loader's statistics,
  mean (0.447, 0.407, 0.386), std (0.244, 0.250, 0.253) (they are not torchvision's
  ImageNet statistics, although the RGB stream starts from ImageNet VGG19-bn weights;
  the official model was trained and tested with these).  Depth is used as it comes
  (the official loader scales depth PNGs to [0,1] and does not normalise them) and is
  copied to 3 channels, as the official code does before its depth stream.
* Any input size: when ``H`` or ``W`` is not a multiple of 32 (the official network
  needs multiples of 32: the cross-resolution sums fail otherwise), both inputs are
  padded on the bottom/right with ``replicate`` to the next multiple of 32 and the
  output is cropped back to ``H x W``.  The DAM's softmax pooling is global, so the
  padded rows/columns take part in it.
* The output is the plain 3-channel conv output (no activation), so it can be used
  as the image or, with the harness's ``residual: true``, as the map in ``relu(rgb + map)``.

Choices for the three-channel head
----------------------------------
* Replaced: the last ``1x1 conv 64->2`` of the official final head (``final_layer2``)
  by a ``1x1 conv 64->3`` (with bias).  Everything before it is kept unchanged.
* Dropped: the sigmoid the official forward applies to its outputs and the 2-class
  softmax of its test code (a relit image is not a class probability).
* Dropped: the two side mask heads (on layer1's 64-ch and layer2's 96-ch
  concatenated features, 1x1 convs ``->64->64 ... 64->2``) and the concatenated side
  features they read.  They are not on the path to the main output and the official
  training does not supervise them (their losses are commented out, "supervised only
  on the stage4"), so they would be parameters without gradients.  28,036 parameters.
  There is therefore no side-output switch.
* Dropped: the 4-BasicBlock stacks the official code builds for the newest branch
  of each ladder layer but never runs (widths 64, 128, 256: 6,200,320 parameters).
* Initialisation as in the official training entry point: ladder, DAMs, head and depth
  stream convs ``normal(0, 0.001)`` with zero biases, BN weight 1 / bias 0 (the
  official ``init_weights`` also overrides the DAM's own zero-init of its last conv,
  so that conv starts at ``normal(0, 0.001)`` too).  The new 64->3 conv gets the same
  init, so the initial map is near zero.  Random-init RGB stream: ``normal(0, 0.01)``
  convs, as in the official RGB network.

Measured figures (this implementation)
--------------------------------------
* parameters: **25,928,451** against the official network's 25,956,422 parameters
  used in forward (-0.11 %; 32,156,742 built).  RGB stream 20,035,392 (torchvision
  ``vgg19_bn.features``), depth stream 1,665,152, FLM (transitions, ladder layers,
  DAMs) 4,177,216, head 50,691.  Difference from the official used set: -28,036
  for the side heads, +65 for the 64->3 conv instead of 64->2.
* FLOPs per image at 256x256, counted with ``torch.utils.flop_counter.FlopCounterMode``
  (convolutions and matrix products): **82.04 G** (82,040,659,968).  The same counter
  on the official modules gives 83.75 G (41.9 G MACs); the 1.71 G difference is the
  two side heads (1x1 convs at 1/2 and full resolution) and a fusion conv the
  official layer1/layer2 evaluate twice (once for the sum, once for the side feature).
* Equivalence: with the official modules' weights copied in (renamed; the official
  64->2 conv into the first two rows of the 64->3 conv), the first two output channels
  matched the official pre-sigmoid logits to 7e-7 (random weights and BN statistics,
  eval mode, batch 2 at 256x256 and 128x192), checked during development.

Deviations from the official code (besides the head)
----------------------------------------------------
* Padding to a multiple of 32 (above); the official code has none.
* ImageNet weights are loaded with their BN running statistics (the official copy
  takes only conv weights/biases and BN weights/biases, leaving the statistics at
  0/1; training re-estimates them either way).
* Each fusion link is evaluated once (the official layer1/layer2 evaluate one link
  twice to build the side features; same result).

Details taken from the official code
------------------------------------
* The pools use ``ceil_mode=True`` (same result as torchvision's at multiples of 32).
* Upsampling in the head is bilinear with ``align_corners=True``; in the ladder fusion
  it is nearest.
* The head's 1x1 convs have biases (followed by BN), the ladder's and depth stream's
  residual blocks do not; the VGG-like stem of the depth stream does.

Module names follow the paper: ``rgb_stream`` (:class:`RGBStream`), ``depth_stream``
(:class:`DepthStream`), ``flm`` (:class:`FlowLadderModule` with ``layer1`` ..
``layer3`` (:class:`LadderLayer`) and ``dam1`` .. ``dam3``
(:class:`DepthAttentionModule`)), ``head`` (:class:`ATSAHead`).  The official code's
``stage2/3/4`` are the paper's layer1/2/3.  ``rgb_stream.features`` has torchvision's
``vgg19_bn.features`` keys, so ImageNet weights load into it directly.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.normalization import normalize
from models.padding import pad_to_multiple
from models.capabilities import Capabilities
from models.registry import register_model
from models.weights import Pretrained, load_into, load_state_dict, resolve_weights

__all__ = [
    "BasicBlock",
    "RGBStream",
    "DepthStream",
    "LadderLayer",
    "DepthAttentionModule",
    "FlowLadderModule",
    "ATSAHead",
    "ATSA",
    "atst",
]

# the official data loader's RGB statistics
RGB_MEAN = (0.447, 0.407, 0.386)
RGB_STD = (0.244, 0.250, 0.253)
# VGG19 channel plan ("M" = 2x2 max-pool), the layout of torchvision's vgg19_bn.features
VGG19_PLAN: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                     512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int = 3, bias: bool = False) -> nn.Sequential:
    """Conv (stride 1, same padding) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """Residual block: ``relu(x + BN(conv3x3(relu(BN(conv3x3(x))))))``, convs without bias.

    Shapes: (B,C,h,w) -> (B,C,h,w).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,C,h,w) -> (B,C,h,w)."""
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + x)


def _block_stack(channels: int, n: int = 4) -> nn.Sequential:
    return nn.Sequential(*(BasicBlock(channels) for _ in range(n)))


# ---------------------------------------------------------------------------
# the two streams
# ---------------------------------------------------------------------------


class RGBStream(nn.Module):
    """The RGB stream: the VGG19-bn conv stack (16 conv+BN+ReLU, 5 ceil-mode max-pools).

    ``features`` is laid out exactly like torchvision's ``vgg19_bn().features`` (same
    indices, same keys).  forward: (B,3,H,W) normalised RGB -> [h2 128@H/4, h3 256@H/8,
    h4 512@H/16, h5 512@H/32], each taken after pools 2, 3, 4 and 5.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        self.taps: list[int] = []  # indices of the pools whose outputs are returned
        for item in VGG19_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                self.taps.append(len(layers) - 1)
            else:
                layers += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.BatchNorm2d(int(item)), nn.ReLU(inplace=True)]
                in_ch = int(item)
        self.taps = self.taps[1:]  # pool1's output (1/2) is not used
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B,3,H,W) -> [h2, h3, h4, h5] (see the class docstring)."""
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
        return outs


class DepthStream(nn.Module):
    """The lightweight depth stream (random init; 1.67 M parameters).

    ``stem``: conv 3->64, conv 64->64, pool, conv 64->128, conv 128->128, pool (3x3 convs
    with bias, BN+ReLU each) -> 128@H/4.  ``transition1``: 3x3 128->32 (+BN+ReLU);
    ``stages[0]``: 4 BasicBlocks @32 -> d2; ``stages[1]``: 4 BasicBlocks @32 -> d3;
    ``transition2``: 3x3 32->128 (+BN+ReLU); ``stages[2]``: 4 BasicBlocks @128 -> d4.

    forward: (B,3,H,W) depth copied to 3 channels -> [d2 32@H/4, d3 32@H/4, d4 128@H/4].
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            _conv_bn_relu(3, 64, bias=True),
            _conv_bn_relu(64, 64, bias=True),
            nn.MaxPool2d(2, stride=2, ceil_mode=True),
            _conv_bn_relu(64, 128, bias=True),
            _conv_bn_relu(128, 128, bias=True),
            nn.MaxPool2d(2, stride=2, ceil_mode=True),
        )
        self.transition1 = _conv_bn_relu(128, 32)
        self.transition2 = _conv_bn_relu(32, 128)
        self.stages = nn.ModuleList([_block_stack(32), _block_stack(32), _block_stack(128)])

    def forward(self, d: torch.Tensor) -> list[torch.Tensor]:
        """d: (B,3,H,W) -> [d2, d3, d4] (see the class docstring)."""
        d2 = self.stages[0](self.transition1(self.stem(d)))
        d3 = self.stages[1](d2)
        d4 = self.stages[2](self.transition2(d3))
        return [d2, d3, d4]


# ---------------------------------------------------------------------------
# flow ladder module and depth attention module
# ---------------------------------------------------------------------------


def _upsampler(in_ch: int, out_ch: int, factor: int) -> nn.Sequential:
    """Lower -> higher resolution link: 1x1 conv (no bias) + BN + nearest upsample by ``factor``."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.Upsample(scale_factor=factor, mode="nearest"),
    )


def _downsampler(in_ch: int, out_ch: int, steps: int) -> nn.Sequential:
    """Higher -> lower resolution link: ``steps`` stride-2 3x3 convs + BN, ReLU between links.

    All links keep ``in_ch`` channels except the last, which maps to ``out_ch`` (no ReLU after it).
    """
    links: list[nn.Module] = []
    for k in range(steps):
        last = k == steps - 1
        link = [nn.Conv2d(in_ch, out_ch if last else in_ch, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_ch if last else in_ch)]
        if not last:
            link.append(nn.ReLU(inplace=True))
        links.append(nn.Sequential(*link))
    return nn.Sequential(*links)


class LadderLayer(nn.Module):
    """One layer of the flow ladder module: branch block stacks, then cross-resolution fusion.

    ``widths[i]`` is the width of branch ``i`` (resolution ``1/4 / 2**i``).  Branches
    ``0 .. n-2`` each run 4 BasicBlocks (``blocks``); the newest branch ``n-1`` passes
    through unchanged (the official code builds a stack for it but never runs it).

    ``concat_output=False`` (layer1, layer2): ``n`` outputs, output ``i`` =
    ``relu(sum_j link[i][j](x_j))`` with ``link[i][i]`` the identity.
    ``concat_output=True`` (layer3): one 1/4 output,
    ``relu(cat(x_0, link[0][1](x_1), .., link[0][n-1](x_{n-1})))`` where every link maps
    to ``widths[0]`` channels, giving ``n * widths[0]`` channels.

    forward: list of ``n`` tensors (B,widths[i],h/2**i,w/2**i) -> list of outputs.
    """

    def __init__(self, widths: Sequence[int], concat_output: bool = False) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.concat_output = concat_output
        n = len(widths)
        self.blocks = nn.ModuleList(_block_stack(c) for c in widths[:-1])
        outputs = 1 if concat_output else n
        self.fuse = nn.ModuleList()
        for i in range(outputs):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(_upsampler(widths[j], widths[i], 2 ** (j - i)))
                elif j < i:
                    row.append(_downsampler(widths[j], widths[i], i - j))
                else:
                    row.append(nn.Identity())
            self.fuse.append(row)

    @property
    def out_channels(self) -> list[int]:
        return [len(self.widths) * self.widths[0]] if self.concat_output else list(self.widths)

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """xs: ``n`` branch features -> fused outputs (see the class docstring)."""
        if len(xs) != len(self.widths):
            raise ValueError(f"LadderLayer: expected {len(self.widths)} branches, got {len(xs)}")
        xs = [stack(x) for stack, x in zip(self.blocks, xs)] + [xs[-1]]
        if self.concat_output:
            row = self.fuse[0]
            return [F.relu(torch.cat([link(x) for link, x in zip(row, xs)], dim=1))]
        outs = []
        for row in self.fuse:
            total = None
            for link, x in zip(row, xs):
                term = link(x)
                total = term if total is None else total + term
            outs.append(F.relu(total))
        return outs


class DepthAttentionModule(nn.Module):
    """DAM: depth features gate an RGB feature of the same shape.

    ``context`` = softmax-over-positions(``mask_conv(D)``)-weighted sum of D (C-vector);
    ``w = sigmoid(transform(context))`` with ``transform`` = 1x1 conv C->C, LayerNorm([C,1,1]),
    ReLU, 1x1 conv C->C (all convs without bias); output ``sigmoid(X * sigmoid(D * w))``.

    Shapes: x, depth (B,C,h,w) -> (B,C,h,w).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mask_conv = nn.Conv2d(channels, 1, 1, bias=False)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.LayerNorm([channels, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """x: RGB feature (B,C,h,w); depth: depth feature (B,C,h,w) -> (B,C,h,w)."""
        if x.shape != depth.shape:
            raise ValueError(f"DepthAttentionModule: rgb {tuple(x.shape)} and depth {tuple(depth.shape)} differ")
        b, c = depth.shape[:2]
        weights = self.mask_conv(depth).flatten(2).softmax(dim=-1)  # (B,1,hw)
        context = torch.bmm(depth.flatten(2), weights.transpose(1, 2)).view(b, c, 1, 1)
        channel_weights = torch.sigmoid(self.transform(context))
        attention = torch.sigmoid(depth * channel_weights)
        return torch.sigmoid(x * attention)


class FlowLadderModule(nn.Module):
    """FLM: four transitions from the RGB stream, three ladder layers, a DAM after each.

    Branch widths 32 / 64 / 128 / 256 at 1/4 / 1/8 / 1/16 / 1/32.
    forward(h2, h3, h4, h5, d2, d3, d4) -> (B,128,H/4,W/4), the DAM3 output.
    """

    widths = (32, 64, 128, 256)

    def __init__(self) -> None:
        super().__init__()
        w = self.widths
        self.trans_h2 = _conv_bn_relu(128, w[0])
        self.trans_h3 = _conv_bn_relu(256, w[1])
        self.trans_h4 = _conv_bn_relu(512, w[2])
        self.trans_h5 = _conv_bn_relu(512, w[3])
        self.layer1 = LadderLayer(w[:2])
        self.layer2 = LadderLayer(w[:3])
        self.layer3 = LadderLayer(w, concat_output=True)
        self.dam1 = DepthAttentionModule(w[0])
        self.dam2 = DepthAttentionModule(w[0])
        self.dam3 = DepthAttentionModule(self.layer3.out_channels[0])

    def forward(
        self,
        h2: torch.Tensor,
        h3: torch.Tensor,
        h4: torch.Tensor,
        h5: torch.Tensor,
        d2: torch.Tensor,
        d3: torch.Tensor,
        d4: torch.Tensor,
    ) -> torch.Tensor:
        """RGB levels h2..h5 and depth features d2..d4 (see :class:`ATSA`) -> (B,128,H/4,W/4)."""
        y = self.layer1([self.trans_h2(h2), self.trans_h3(h3)])
        y[0] = self.dam1(y[0], d2)
        y = self.layer2([*y, self.trans_h4(h4)])
        y[0] = self.dam2(y[0], d3)
        (z,) = self.layer3([*y, self.trans_h5(h5)])
        return self.dam3(z, d4)


class ATSAHead(nn.Module):
    """The final head, ending in a 3-channel conv instead of the official 2-class one.

    x2 bilinear (align_corners) -> ``half_res`` 1x1 convs 128->128->128->64 (BN+ReLU) ->
    x2 bilinear -> ``full_res`` 1x1 convs 64->64->64 (BN+ReLU) -> ``to_image`` 1x1 64->3.

    Shapes: (B,128,H/4,W/4) -> (B,3,H,W).
    """

    def __init__(self, in_ch: int = 128, out_ch: int = 3) -> None:
        super().__init__()
        self.half_res = nn.Sequential(_conv_bn_relu(in_ch, 128, 1, True), _conv_bn_relu(128, 128, 1, True),
                                      _conv_bn_relu(128, 64, 1, True))
        self.full_res = nn.Sequential(_conv_bn_relu(64, 64, 1, True), _conv_bn_relu(64, 64, 1, True))
        self.to_image = nn.Conv2d(64, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,128,h,w) -> (B,3,4h,4w)."""
        x = self.half_res(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))
        x = self.full_res(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))
        return self.to_image(x)


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


class ATSA(nn.Module):
    """Asymmetric two-stream network with a 3-channel full-resolution head.

    forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> map (B,3,H,W); see the module
    docstring for normalisation, where depth enters, the head and the padding.
    """

    multiple = 32

    def __init__(self) -> None:
        super().__init__()
        self.rgb_stream = RGBStream()
        self.depth_stream = DepthStream()
        self.flm = FlowLadderModule()
        self.head = ATSAHead()
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(RGB_STD).view(1, 3, 1, 1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation (RGB stream: random; replaced by ImageNet weights when loaded)."""
        for part, std in ((self.rgb_stream, 0.01), (self.depth_stream, 0.001), (self.flm, 0.001), (self.head, 0.001)):
            for m in part.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=std)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """rgb (B,3,H,W) in [0,1], depth (B,1,H,W) -> map (B,3,H,W) (plain conv output)."""
        h, w = rgb.shape[-2:]
        x = normalize(rgb, self.rgb_mean, self.rgb_std)
        d = depth.to(rgb.dtype)
        x, d = pad_to_multiple(x, self.multiple), pad_to_multiple(d, self.multiple)
        h2, h3, h4, h5 = self.rgb_stream(x)
        d2, d3, d4 = self.depth_stream(d.expand(-1, 3, -1, -1))
        out = self.head(self.flm(h2, h3, h4, h5, d2, d3, d4))
        return out[..., :h, :w]


@register_model("atst", capabilities=Capabilities(
    pretrained=True, fold_pairs={BasicBlock: (("conv1", "bn1"), ("conv2", "bn2"))}))  # each BN follows its conv
def atst(pretrained: Pretrained = False) -> nn.Module:
    """ATSA/ATST (ECCV 2020): VGG19-bn RGB stream + light depth stream, flow ladder, depth attention; 3-ch head.

    ``pretrained`` (auto | true | false | path, see :mod:`models.weights`) loads ImageNet
    VGG19-bn weights (torchvision's ``vgg19_bn-c79401a0.pth`` layout, classifier ignored)
    into the RGB stream, as the official training does; the depth stream, ladder and head
    are always randomly initialised.  What was loaded is in ``model.pretrained_info``.
    """
    model = ATSA()
    choice = resolve_weights("vgg19_bn", pretrained, key="weights.backbone")
    if choice.path is not None:
        state = load_state_dict(choice.path)
        load_into(model.rgb_stream, state, source=str(choice.path))
    model.pretrained_info = [choice.describe()]
    return model
