"""Any input size for networks that need multiples of 32: pad bottom/right, run, crop back.

Shared by the adapters so that every one handles odd sizes the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int = 32, mode: str = "replicate") -> torch.Tensor:
    """Pad ``(..., H, W)`` on the bottom and right up to the next multiples of ``multiple``.

    ``mode`` is ``"replicate"`` or ``"reflect"`` (reflection needs the pad to be smaller than the side,
    otherwise replicate is used).  Crop the network's output back with ``out[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    if x.ndim == 4:
        return F.pad(x, (0, pw, 0, ph), mode=mode)
    flat = x.reshape(-1, *x.shape[-3:]) if x.ndim > 4 else x[None]
    padded = F.pad(flat, (0, pw, 0, ph), mode=mode)
    return padded.reshape(*x.shape[:-2], h + ph, w + pw)
