"""Per-channel input normalisation, ``(rgb - mean) / std``, and the ImageNet statistics most backbones expect.

The ImageNet values are torchvision's (the statistics its pretrained classifiers
were trained with).  Adapters whose official code uses other statistics keep
them next to the network (ATST's data loader, for example).
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ChannelStats = Union[Sequence[float], torch.Tensor]


def normalize(rgb: torch.Tensor, mean: ChannelStats, std: ChannelStats) -> torch.Tensor:
    """``(rgb - mean) / std`` per channel, computed in ``rgb``'s dtype and on its device.

    rgb: (B,C,H,W) float (images in [0,1]); mean, std: C values, as a sequence or a
    tensor of C elements (e.g. a buffer of shape (1,C,1,1), which is used without a
    copy when its dtype and device already match ``rgb``'s).  Returns (B,C,H,W).
    """
    channels = rgb.shape[1]
    mean_t = torch.as_tensor(mean, dtype=rgb.dtype, device=rgb.device).reshape(1, channels, 1, 1)
    std_t = torch.as_tensor(std, dtype=rgb.dtype, device=rgb.device).reshape(1, channels, 1, 1)
    return (rgb - mean_t) / std_t
