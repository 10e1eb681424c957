"""The ray-cast renderer: one directional light, Lambertian shading, cast shadows and an ambient term.

A scene is lit at one of the 8 VIDIT azimuths (fixed elevation :data:`LIGHT_ELEVATION_DEG`) with the
colour of one of the 5 VIDIT temperatures (El Helou et al., "VIDIT: Virtual Image Dataset for Illumination
Transfer", arXiv:2005.05460).  Primary rays are traced once per scene and shadow rays once per light
direction, so several conditions of one scene cost little more than one.

Outputs:

* ``rgb``: ``(size, size, 3) uint8``, gamma-encoded (1/2.2) linear radiance.
* ``depth``: ``(size, size) float32`` in ``[0, 1]``, like VIDIT's ``normalized_depth``: ray length from the
  camera divided by :data:`MAX_DISTANCE`, clipped, and quantised through float16.  Larger is farther.  The
  ground fills the whole view, so every pixel has a depth (between about 0.18 at the bottom row and 0.95 at
  the top row).

Rendering :meth:`Scene3D.mirrored` under the mirrored condition (E<->W, NE<->NW, SE<->SW) gives the
column-flipped image (bit-identical in practice; guaranteed to within 1 level of 8 bits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from datasets.conditions import AZIMUTH_DEG, Condition
from datasets.synthetic.camera import CAM_HEIGHT, CAM_VFOV_DEG, CAM_Z, camera_rays
from datasets.synthetic.geometry import Axes, Scene3D
from datasets.synthetic.textures import F32

LIGHT_ELEVATION_DEG = 40.0
MAX_DISTANCE = 24.0  # ray length mapped to normalized_depth 1.0
AMBIENT = 0.2  # ambient light relative to the direct light (same colour)
DIRECT = 1.0
SHADOW_OFFSET = 2e-3  # shadow rays start this far off the surface, along its normal
GAMMA = 1.0 / 2.2


def light_color(temperature: float) -> np.ndarray:
    """Black-body colour ``(3,) float32`` of a temperature in kelvin, white-balanced to 6500 K, max channel 1.

    Planck's law sampled at representative wavelengths of the R, G and B primaries (610, 550, 465 nm); so
    lower temperatures are warmer (4500 K ~ (1, .85, .64), 2500 K ~ (1, .55, .17)).
    """
    c2 = 1.4388e-2  # second radiation constant, m K
    lam = np.array([610e-9, 550e-9, 465e-9])

    def planck(t: float) -> np.ndarray:
        return 1.0 / (lam**5 * np.expm1(c2 / (lam * t)))

    rgb = planck(float(temperature)) / planck(6500.0)
    return (rgb / rgb.max()).astype(F32)


def light_direction(direction: str) -> np.ndarray:
    """Unit vector ``(3,) float32`` toward the light for a VIDIT direction (N = +z, E = +x), mirror-exact."""
    az = math.radians(AZIMUTH_DEG[direction])
    # snap sin/cos so that mirrored azimuths give exactly mirrored vectors (sin 270 vs -sin 90 etc.)
    hx, hz = round(math.sin(az), 9), round(math.cos(az), 9)
    el = math.radians(LIGHT_ELEVATION_DEG)
    norm = math.hypot(hx, hz)
    return np.array([hx / norm * math.cos(el), math.sin(el), hz / norm * math.cos(el)], dtype=F32)


@dataclass
class _Frame:
    """Per-pixel primary-ray results (all ``(N,) float32`` unless noted; ``N = size * size``)."""

    size: int
    t: np.ndarray
    p: Axes
    n: Axes
    albedo: np.ndarray  # (N, 3)


def _nearest_hits(scene: Scene3D, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray length ``t`` ``(N,) float32`` to the first surface and its id ``(N,) int16`` (0 ground, k object k-1)."""
    dx, dy, dz = camera_rays(size)
    ox, oy, oz = F32(0), F32(CAM_HEIGHT), F32(CAM_Z)
    t = (F32(0) - oy) / dy  # ground plane y = 0; dy < 0 for every pixel
    ids = np.zeros(t.shape, np.int16)
    for k, obj in enumerate(scene.objects, start=1):
        tn, tf = obj.interval(ox, oy, oz, dx, dy, dz)
        hit = (tn <= tf) & (tn > 0) & (tn < t)
        t = np.where(hit, tn, t)
        ids[hit] = k
    return t, ids


def _primary(scene: Scene3D, size: int) -> _Frame:
    """Trace the camera rays: hit points, normals and albedo (textures anti-aliased by the pixel footprint)."""
    dx, dy, dz = camera_rays(size)
    t, ids = _nearest_hits(scene, size)
    px, py, pz = F32(0) + t * dx, F32(CAM_HEIGHT) + t * dy, F32(CAM_Z) + t * dz
    nx, ny, nz = np.zeros_like(t), np.ones_like(t), np.zeros_like(t)
    py = np.where(ids == 0, F32(0), py)  # exactly on the ground
    albedo = np.empty((t.shape[0], 3), F32)
    pix_angle = F32(math.radians(CAM_VFOV_DEG) / size)
    for k in range(len(scene.objects) + 1):
        sel = np.flatnonzero(ids == k)
        if sel.size == 0:
            continue
        sx, sy, sz = px[sel], py[sel], pz[sel]
        if k == 0:
            texture = scene.ground
            cos = np.abs(dy[sel])
        else:
            obj = scene.objects[k - 1]
            texture = obj.texture
            snx, sny, snz = obj.normal(sx, sy, sz)
            nx[sel], ny[sel], nz[sel] = snx, sny, snz
            cos = np.abs(snx * dx[sel] + sny * dy[sel] + snz * dz[sel])
        footprint = t[sel] * pix_angle / np.maximum(cos, F32(0.2))
        albedo[sel] = texture.albedo(sx, sy, sz, footprint)
    return _Frame(size, t, (px, py, pz), (nx, ny, nz), albedo)


def _direct(scene: Scene3D, frame: _Frame, direction: str) -> np.ndarray:
    """Direct-light factor ``(N,) float32`` in [0, 1]: ``max(n.L, 0)`` times visibility of the light."""
    lx, ly, lz = (F32(v) for v in light_direction(direction))
    nx, ny, nz = frame.n
    cos = nx * lx + ny * ly + nz * lz
    lit = np.flatnonzero(cos > 0)
    off = F32(SHADOW_OFFSET)
    ox = frame.p[0][lit] + nx[lit] * off
    oy = frame.p[1][lit] + ny[lit] * off
    oz = frame.p[2][lit] + nz[lit] * off
    blocked = np.zeros(lit.shape, bool)
    for obj in scene.objects:
        # cull: only points whose ray toward the light passes within the bounding sphere
        (bx, by, bz), br = obj.bound()
        rx, ry, rz = F32(bx) - ox, F32(by) - oy, F32(bz) - oz
        along = rx * lx + ry * ly + rz * lz
        dist2 = rx * rx + ry * ry + rz * rz - along * along
        cand = np.flatnonzero((dist2 <= F32(br * br * 1.0001 + 1e-4)) & (along > F32(-br - 1e-3)) & ~blocked)
        if cand.size == 0:
            continue
        tn, tf = obj.interval(ox[cand], oy[cand], oz[cand], lx, ly, lz)
        blocked[cand] |= (tn <= tf) & (tf > F32(1e-4))
    out = np.zeros_like(cos)
    out[lit] = np.where(blocked, F32(0), cos[lit])
    return out


def _shade(frame: _Frame, direct: np.ndarray, temperature: int) -> np.ndarray:
    """Tone-mapped ``(size, size, 3) uint8`` image from albedo, direct-light factor and light colour."""
    radiance = frame.albedo * (light_color(temperature)[None, :] * (F32(AMBIENT) + F32(DIRECT) * direct)[:, None])
    encoded = np.power(np.clip(radiance, 0.0, 1.0), F32(GAMMA)) * F32(255)
    return np.rint(encoded).astype(np.uint8).reshape(frame.size, frame.size, 3)


def _depth(frame: _Frame) -> np.ndarray:
    """VIDIT-style ``normalized_depth`` ``(size, size) float32`` in [0, 1], float16-quantised."""
    d = np.clip(frame.t / F32(MAX_DISTANCE), 0.0, 1.0).astype(np.float16).astype(np.float32)
    return d.reshape(frame.size, frame.size)


def render_conditions(
    scene: Scene3D, conditions: Iterable[Condition | str], size: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Render several conditions of one scene, tracing primary rays once and shadows once per direction.

    Returns ``({"6500_N": rgb, ...}, depth)`` with ``rgb`` ``(size, size, 3) uint8`` and ``depth``
    ``(size, size) float32`` in [0, 1].
    """
    if int(size) < 2:
        raise ValueError(f"size must be at least 2 pixels, got {size}")
    conds = [Condition.parse(c) for c in conditions]
    frame = _primary(scene, int(size))
    direct: dict[str, np.ndarray] = {}
    images: dict[str, np.ndarray] = {}
    for cond in conds:
        if cond.direction not in direct:
            direct[cond.direction] = _direct(scene, frame, cond.direction)
        images[str(cond)] = _shade(frame, direct[cond.direction], cond.temperature)
    return images, _depth(frame)


def render(scene: Scene3D, condition: Condition | str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one condition: ``rgb`` ``(size, size, 3) uint8`` and ``depth`` ``(size, size) float32`` in [0, 1]."""
    cond = Condition.parse(condition)
    images, depth = render_conditions(scene, [cond], size)
    return images[str(cond)], depth
