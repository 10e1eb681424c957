"""The fixed pinhole camera of every synthetic scene: its pose, its pixel rays and the projection.

The camera sits on the plane ``x = 0`` at height :data:`CAM_HEIGHT` and looks North (``+z``), tilted
down by :data:`CAM_PITCH_DEG`.  The principal point is the image centre and pixel ``(i, j)`` is sampled at
its centre ``(j + 0.5, i + 0.5)``, so the camera is exactly left-right symmetric.  World units are
arbitrary; objects are about 1 unit tall.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from datasets.synthetic.textures import F32, Vec3

CAM_HEIGHT = 3.4
CAM_Z = -4.6
CAM_PITCH_DEG = 30.0  # downward tilt of the optical axis
CAM_VFOV_DEG = 42.0  # vertical (= horizontal) field of view; pitch > vfov/2, so every ray hits the ground


def _focal(size: int) -> float:
    """Focal length in pixels of a ``size x size`` image."""
    return (size / 2) / math.tan(math.radians(CAM_VFOV_DEG / 2))


@functools.lru_cache(maxsize=4)
def camera_rays(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit ray directions ``(size*size,) float32`` each (read-only, cached), row-major, for pixel centres."""
    coords = (np.arange(size, dtype=np.float64) + 0.5 - size / 2) / _focal(size)  # exactly antisymmetric
    xc = np.broadcast_to(coords[None, :], (size, size))
    yc = np.broadcast_to(-coords[:, None], (size, size))
    pitch = math.radians(CAM_PITCH_DEG)
    sp, cp = math.sin(pitch), math.cos(pitch)
    # camera basis: right = +x, up = (0, cos, sin), forward = (0, -sin, cos)
    dx = xc
    dy = yc * cp - sp
    dz = yc * sp + cp
    inv = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
    rays = tuple(np.ascontiguousarray((v * inv).ravel(), dtype=F32) for v in (dx, dy, dz))
    for ray in rays:
        ray.flags.writeable = False
    return rays  # type: ignore[return-value]


def project(point: Vec3, size: int) -> tuple[float, float]:
    """Image position ``(row, col)`` (continuous; pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``) of a world point."""
    focal = _focal(size)
    pitch = math.radians(CAM_PITCH_DEG)
    sp, cp = math.sin(pitch), math.cos(pitch)
    rx, ry, rz = point[0], point[1] - CAM_HEIGHT, point[2] - CAM_Z
    forward = -sp * ry + cp * rz
    up = cp * ry + sp * rz
    if forward <= 0:
        raise ValueError(f"point {point} is behind the camera")
    return size / 2 - focal * up / forward, size / 2 + focal * rx / forward


def view_half_width(z: float) -> float:
    """Half width of the view (world units) on the ground at depth ``z``."""
    pitch = math.radians(CAM_PITCH_DEG)
    forward = CAM_HEIGHT * math.sin(pitch) + math.cos(pitch) * (z - CAM_Z)
    return forward * math.tan(math.radians(CAM_VFOV_DEG / 2))
