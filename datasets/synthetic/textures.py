"""Procedural albedo patterns (solid, checker, stripes, sinusoidal noise) evaluated at world points.

The shared float32 helpers of the renderer live here too, since textures are the first thing
the shapes need: :data:`F32` (the working dtype) and :data:`Vec3` (a world-space vector).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

F32 = np.float32
Vec3 = tuple[float, float, float]


def dot(x: np.ndarray, y: np.ndarray, z: np.ndarray, axis: Vec3) -> np.ndarray:
    """Per-point dot product ``(N,) float32`` of the points ``(x, y, z)`` with a fixed ``axis``."""
    return x * F32(axis[0]) + y * F32(axis[1]) + z * F32(axis[2])


@dataclass(frozen=True)
class Texture:
    """A procedural albedo ``color_a + m * (color_b - color_a)``, ``m`` in [0, 1] a function of world position.

    ``kind``: ``solid`` (``m = 0``), ``checker`` (3-D checker in the frame ``axes``), ``stripes`` (planes
    orthogonal to ``axes[0]``) or ``noise`` (a sum of sinusoids along ``axes`` with relative ``freqs``).
    ``period`` is in world units.  The pattern is evaluated at ``(flip * x, y, z)``, so mirroring the world
    is exactly ``flip -> -flip``.
    """

    kind: str
    color_a: Vec3
    color_b: Vec3
    period: float = 1.0
    axes: tuple[Vec3, ...] = ()
    phases: tuple[float, ...] = ()
    freqs: tuple[float, ...] = ()
    flip: float = 1.0

    def mirrored(self) -> "Texture":
        """The texture of the world mirrored in ``x``."""
        return dataclasses.replace(self, flip=-self.flip)

    def albedo(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Albedo ``(N, 3) float32`` in [0, 1] at world points; ``footprint`` (N,) is a pixel's size in world units.

        Pattern contrast fades out where the period gets close to the pixel footprint (cheap anti-aliasing).
        """
        a = np.asarray(self.color_a, F32)
        if self.kind == "solid":
            return np.broadcast_to(a, (px.shape[0], 3)).copy()
        s, smallest, sharp = self._pattern(px * F32(self.flip), py, pz)
        # contrast 1 when the pattern period spans >= 8 pixels, 0 below 3 pixels
        contrast = np.clip((F32(smallest) / footprint - F32(3.0)) * F32(0.2), 0.0, 1.0).astype(F32)
        m = F32(0.5) + F32(0.5) * contrast * np.clip(s * F32(sharp), -1.0, 1.0)
        b = np.asarray(self.color_b, F32)
        return a[None, :] + m[:, None] * (b - a)[None, :]

    def _pattern(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(s, smallest, sharp)``: the raw pattern ``(N,) float32`` (about [-1, 1]), its finest period in
        world units, and the gain that turns ``s`` into a sharp-edged mix before clipping to [-1, 1]."""
        if self.kind == "checker":
            s = np.ones_like(x)
            for axis, phase in zip(self.axes, self.phases):
                s *= np.sin(dot(x, y, z, axis) * F32(math.pi / self.period) + F32(phase))
            return s, self.period, 6.0
        if self.kind == "stripes":
            s = np.sin(dot(x, y, z, self.axes[0]) * F32(2 * math.pi / self.period) + F32(self.phases[0]))
            return s, self.period, 3.0
        if self.kind == "noise":
            s = np.zeros_like(x)
            for axis, phase, freq in zip(self.axes, self.phases, self.freqs):
                s += np.sin(dot(x, y, z, axis) * F32(2 * math.pi * freq / self.period) + F32(phase))
            s *= F32(1.6 / len(self.axes))
            return s, self.period / max(self.freqs), 1.0
        raise ValueError(f"unknown texture kind {self.kind!r}")
