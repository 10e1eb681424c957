"""A built-in procedural relighting dataset written in exactly VIDIT's file formats.

Every scene is a textured ground plane plus 3-7 primitives (spheres, vertical
cylinders, boxes rotated about the vertical axis) seen by a fixed pinhole camera.
A small vectorised numpy ray tracer renders it under a directional light at the
8 VIDIT azimuths (fixed elevation :data:`LIGHT_ELEVATION_DEG`) and the 5 VIDIT
colour temperatures, with Lambertian shading, cast shadows and an ambient term.

World frame: ``x`` to the East (right in the image), ``y`` up, ``z`` to the
North (away from the camera).  The camera sits on the plane ``x = 0`` and looks
North, tilted down; the principal point is the image centre and pixel ``(i, j)``
is sampled at its centre ``(j + 0.5, i + 0.5)``.  The camera is therefore
left-right symmetric: rendering :meth:`Scene3D.mirrored` (world ``x`` negated,
including rotations and textures) under the mirrored condition (E<->W, NE<->NW,
SE<->SW) gives the column-flipped image (bit-identical in practice; guaranteed
to within 1 level of 8 bits).

Outputs of :func:`render`:

* ``rgb``: ``(size, size, 3) uint8``, gamma-encoded (1/2.2) linear radiance.
* ``depth``: ``(size, size) float32`` in ``[0, 1]``, like VIDIT's
  ``normalized_depth``: ray length from the camera divided by
  :data:`MAX_DISTANCE`, clipped, and quantised through float16.  Larger is
  farther.  The ground fills the whole view, so every pixel has a depth
  (between about 0.18 at the bottom row and 0.95 at the top row).

:func:`generate` writes a folder laid out like the NTIRE 2021 Track 1 archives
plus a full-VIDIT-style folder (see its docstring); the reader for real VIDIT
data reads it unchanged.  The output is a deterministic function of
:class:`SyntheticSpec` (byte-identical files for any worker count).  Across
numpy versions or CPUs, float32 ``sin``/``pow`` may round differently, so a
few pixels can differ by one level; the scene geometry itself (drawn with
``numpy.random.Generator``) does not change.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

from relight_base.atomic import atomic_write_text
from datasets.errors import DataError
from relight_base.errors import ConfigError
from datasets.conditions import AZIMUTH_DEG, Condition
from datasets.io import encode_depth_npy, encode_rgba_png

log = logging.getLogger(__name__)

#: Bump whenever the rendered pixels or the file layout change (it is part of :meth:`SyntheticSpec.key`).
RENDERER_VERSION = 1

#: The conditions the paper's three training strategies use (input, extra input, target, mirrored target).
PAPER_CONDITIONS: tuple[str, ...] = ("6500_N", "6500_NE", "4500_E", "4500_W")

# --- camera and lighting (world units are arbitrary; objects are about 1 unit tall) -----------------------------
CAM_HEIGHT = 3.4
CAM_Z = -4.6
CAM_PITCH_DEG = 30.0  # downward tilt of the optical axis
CAM_VFOV_DEG = 42.0  # vertical (= horizontal) field of view; pitch > vfov/2, so every ray hits the ground
LIGHT_ELEVATION_DEG = 40.0
MAX_DISTANCE = 24.0  # ray length mapped to normalized_depth 1.0
AMBIENT = 0.2  # ambient light relative to the direct light (same colour)
DIRECT = 1.0
SHADOW_OFFSET = 2e-3  # shadow rays start this far off the surface, along its normal
GAMMA = 1.0 / 2.2

_F32 = np.float32
_BIG = _F32(1e30)

PathLike = Union[str, "os.PathLike[str]"]
Vec3 = tuple[float, float, float]


# ====================================================================================================================
# Scene description
# ====================================================================================================================


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
        return dataclasses.replace(self, flip=-self.flip)

    def albedo(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Albedo ``(N, 3) float32`` in [0, 1] at world points; ``footprint`` (N,) is a pixel's size in world units.

        Pattern contrast fades out where the period gets close to the pixel footprint (cheap anti-aliasing).
        """
        a = np.asarray(self.color_a, _F32)
        if self.kind == "solid":
            return np.broadcast_to(a, (px.shape[0], 3)).copy()
        x = px * _F32(self.flip)
        if self.kind == "checker":
            s = np.ones_like(px)
            for axis, phase in zip(self.axes, self.phases):
                u = _dot(x, py, pz, axis)
                s *= np.sin(u * _F32(math.pi / self.period) + _F32(phase))
            smallest = self.period
            sharp = 6.0
        elif self.kind == "stripes":
            u = _dot(x, py, pz, self.axes[0])
            s = np.sin(u * _F32(2 * math.pi / self.period) + _F32(self.phases[0]))
            smallest = self.period
            sharp = 3.0
        elif self.kind == "noise":
            s = np.zeros_like(px)
            for axis, phase, freq in zip(self.axes, self.phases, self.freqs):
                u = _dot(x, py, pz, axis)
                s += np.sin(u * _F32(2 * math.pi * freq / self.period) + _F32(phase))
            s *= _F32(1.6 / len(self.axes))
            smallest = self.period / max(self.freqs)
            sharp = 1.0
        else:  # pragma: no cover - guarded by construction
            raise ValueError(f"unknown texture kind {self.kind!r}")
        # contrast 1 when the pattern period spans >= 8 pixels, 0 below 3 pixels
        contrast = np.clip((_F32(smallest) / footprint - _F32(3.0)) * _F32(0.2), 0.0, 1.0).astype(_F32)
        m = _F32(0.5) + _F32(0.5) * contrast * np.clip(s * _F32(sharp), -1.0, 1.0)
        b = np.asarray(self.color_b, _F32)
        return a[None, :] + m[:, None] * (b - a)[None, :]


def _dot(x: np.ndarray, y: np.ndarray, z: np.ndarray, axis: Vec3) -> np.ndarray:
    return x * _F32(axis[0]) + y * _F32(axis[1]) + z * _F32(axis[2])


@dataclass(frozen=True)
class Sphere:
    """A sphere of ``radius`` centred at ``center`` (world units)."""

    center: Vec3
    radius: float
    texture: Texture

    def mirrored(self) -> "Sphere":
        cx, cy, cz = self.center
        return Sphere((-cx, cy, cz), self.radius, self.texture.mirrored())

    def interval(self, ox, oy, oz, dx, dy, dz) -> tuple[np.ndarray, np.ndarray]:
        """Entry and exit ray parameters; entry is +inf where the ray misses (directions are unit length)."""
        cx, cy, cz = (_F32(v) for v in self.center)
        ocx, ocy, ocz = ox - cx, oy - cy, oz - cz
        b = ocx * dx + ocy * dy + ocz * dz
        c = ocx * ocx + ocy * ocy + ocz * ocz - _F32(self.radius * self.radius)
        disc = b * b - c
        sq = np.sqrt(np.maximum(disc, _F32(0)))
        return np.where(disc >= 0, -b - sq, np.inf).astype(_F32), -b + sq

    def normal(self, px, py, pz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cx, cy, cz = (_F32(v) for v in self.center)
        inv = _F32(1.0 / self.radius)
        return (px - cx) * inv, (py - cy) * inv, (pz - cz) * inv

    def bound(self) -> tuple[Vec3, float]:
        return self.center, self.radius


@dataclass(frozen=True)
class Cylinder:
    """A vertical cylinder standing on the ground: axis through ``(cx, ·, cz)``, ``y`` from 0 to ``height``."""

    cx: float
    cz: float
    radius: float
    height: float
    texture: Texture

    def mirrored(self) -> "Cylinder":
        return Cylinder(-self.cx, self.cz, self.radius, self.height, self.texture.mirrored())

    def interval(self, ox, oy, oz, dx, dy, dz) -> tuple[np.ndarray, np.ndarray]:
        ocx, ocz = ox - _F32(self.cx), oz - _F32(self.cz)
        a = dx * dx + dz * dz
        b = ocx * dx + ocz * dz
        c = ocx * ocx + ocz * ocz - _F32(self.radius * self.radius)
        disc = b * b - a * c
        sq = np.sqrt(np.maximum(disc, _F32(0)))
        inv_a = _F32(1) / a
        t0 = (-b - sq) * inv_a
        t1 = (-b + sq) * inv_a
        inv_dy = _F32(1) / dy  # never 0: camera rays point down, shadow rays up
        ya = (_F32(0) - oy) * inv_dy
        yb = (_F32(self.height) - oy) * inv_dy
        tn = np.maximum(t0, np.minimum(ya, yb))
        tf = np.minimum(t1, np.maximum(ya, yb))
        return np.where(disc >= 0, tn, np.inf).astype(_F32), tf

    def normal(self, px, py, pz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rx, rz = px - _F32(self.cx), pz - _F32(self.cz)
        inv = _F32(1.0 / self.radius)
        top = py >= _F32(self.height * (1 - 1e-4))
        zero = np.zeros_like(px)
        return np.where(top, zero, rx * inv), np.where(top, _F32(1), zero), np.where(top, zero, rz * inv)

    def bound(self) -> tuple[Vec3, float]:
        h = self.height / 2
        return (self.cx, h, self.cz), math.hypot(self.radius, h)


@dataclass(frozen=True)
class Box:
    """A box with half extents ``half`` centred at ``center``, rotated by ``angle`` radians about the vertical axis.

    Local coordinates: ``lx = cos(a) (x - cx) + sin(a) (z - cz)``, ``lz = -sin(a) (x - cx) + cos(a) (z - cz)``.
    """

    center: Vec3
    half: Vec3
    angle: float
    texture: Texture

    def mirrored(self) -> "Box":
        cx, cy, cz = self.center
        return Box((-cx, cy, cz), self.half, -self.angle, self.texture.mirrored())

    def _cs(self) -> tuple[np.float32, np.float32]:
        # math.cos/sin are exactly even/odd, so the mirrored box uses exactly (c, -s)
        return _F32(math.cos(self.angle)), _F32(math.sin(self.angle))

    def interval(self, ox, oy, oz, dx, dy, dz) -> tuple[np.ndarray, np.ndarray]:
        c, s = self._cs()
        cx, cy, cz = (_F32(v) for v in self.center)
        rx, ry, rz = ox - cx, oy - cy, oz - cz
        lo = (c * rx + s * rz, ry, c * rz - s * rx)
        ld = (c * dx + s * dz, dy, c * dz - s * dx)
        tn = tf = None
        for o, d, h in zip(lo, ld, self.half):
            d = np.asarray(d, _F32)
            inv = np.where(d == 0, np.copysign(_BIG, d), _F32(1) / np.where(d == 0, _F32(1), d)).astype(_F32)
            ta = (_F32(-h) - o) * inv
            tb = (_F32(h) - o) * inv
            lo_t, hi_t = np.minimum(ta, tb), np.maximum(ta, tb)
            tn = lo_t if tn is None else np.maximum(tn, lo_t)
            tf = hi_t if tf is None else np.minimum(tf, hi_t)
        return tn, tf

    def normal(self, px, py, pz) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c, s = self._cs()
        cx, cy, cz = (_F32(v) for v in self.center)
        rx, ry, rz = px - cx, py - cy, pz - cz
        hx, hy, hz = (_F32(v) for v in self.half)
        lx, ly, lz = (c * rx + s * rz) / hx, ry / hy, (c * rz - s * rx) / hz
        ax, ay, az = np.abs(lx), np.abs(ly), np.abs(lz)
        use_x = (ax >= ay) & (ax >= az)
        use_y = ~use_x & (ay >= az)
        use_z = ~use_x & ~use_y
        one = _F32(1)
        nlx = np.where(use_x, np.copysign(one, lx), _F32(0))
        nly = np.where(use_y, np.copysign(one, ly), _F32(0))
        nlz = np.where(use_z, np.copysign(one, lz), _F32(0))
        # back to world: inverse rotation
        return c * nlx - s * nlz, nly, s * nlx + c * nlz

    def bound(self) -> tuple[Vec3, float]:
        return self.center, math.sqrt(sum(h * h for h in self.half))


Primitive = Union[Sphere, Cylinder, Box]


@dataclass(frozen=True)
class Scene3D:
    """A procedural scene: the ground plane ``y = 0`` with its texture, and a few primitives on it."""

    ground: Texture
    objects: tuple[Primitive, ...]

    def mirrored(self) -> "Scene3D":
        """The scene with world ``x`` negated (geometry, rotations and textures): it renders column-flipped."""
        return Scene3D(self.ground.mirrored(), tuple(o.mirrored() for o in self.objects))


# ====================================================================================================================
# Random scenes
# ====================================================================================================================


def _random_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> Vec3:
    h = float(rng.uniform(0, 1))
    return tuple(float(v) for v in colorsys.hsv_to_rgb(h, float(rng.uniform(*sat)), float(rng.uniform(*val))))


def _normalize(v: Sequence[float]) -> Vec3:
    norm = math.sqrt(sum(c * c for c in v)) + 1e-12
    return (v[0] / norm, v[1] / norm, v[2] / norm)


def _random_unit(rng: np.random.Generator) -> Vec3:
    return _normalize([float(c) for c in rng.normal(size=3)])


def _random_frame(rng: np.random.Generator) -> tuple[Vec3, Vec3, Vec3]:
    """A random orthonormal frame (Gram-Schmidt on three gaussian vectors; plain Python, no LAPACK in workers)."""
    frame: list[Vec3] = []
    for v in rng.normal(size=(3, 3)).tolist():
        for u in frame:
            d = sum(a * b for a, b in zip(v, u))
            v = [a - d * b for a, b in zip(v, u)]
        frame.append(_normalize(v))
    return frame[0], frame[1], frame[2]


def _random_texture(rng: np.random.Generator, *, ground: bool) -> Texture:
    kinds = ("checker", "stripes", "noise") if ground else ("solid", "checker", "stripes", "noise")
    kind = str(rng.choice(kinds))
    a = _random_color(rng, (0.05, 0.5) if ground else (0.2, 0.85), (0.45, 0.85))
    if rng.uniform() < 0.5:  # a darker or lighter shade of the same hue
        h, s, v = colorsys.rgb_to_hsv(*a)
        b = colorsys.hsv_to_rgb((h + rng.uniform(-0.06, 0.06)) % 1.0, s, v * float(rng.uniform(0.35, 0.65)))
    else:
        b = _random_color(rng, (0.1, 0.7), (0.25, 0.8))
    b = tuple(float(c) for c in b)
    if kind == "solid":
        return Texture("solid", a, a)
    if kind == "checker":
        if ground:  # checker aligned with a random direction in the ground plane
            phi = float(rng.uniform(0, math.pi / 2))
            axes = ((math.cos(phi), 0.0, math.sin(phi)), (-math.sin(phi), 0.0, math.cos(phi)), (0.0, 1.0, 0.0))
            phases = (float(rng.uniform(0, math.pi)), float(rng.uniform(0, math.pi)), math.pi / 2)
        else:
            axes = _random_frame(rng)
            phases = tuple(float(rng.uniform(0, 2 * math.pi)) for _ in range(3))
        period = float(rng.uniform(0.5, 1.2) if ground else rng.uniform(0.2, 0.45))
        return Texture("checker", a, b, period, axes, phases)
    if kind == "stripes":
        if ground:
            phi = float(rng.uniform(0, math.pi))
            axis = (math.cos(phi), 0.0, math.sin(phi))
        else:
            axis = _random_unit(rng)
        period = float(rng.uniform(0.5, 1.4) if ground else rng.uniform(0.2, 0.5))
        return Texture("stripes", a, b, period, (axis,), (float(rng.uniform(0, 2 * math.pi)),))
    n = 4
    axes = tuple(_random_unit(rng) for _ in range(n))
    if ground:  # keep the ground's noise varying along the ground
        axes = tuple((x, 0.25 * y, z) for x, y, z in axes)
    return Texture(
        "noise", a, b, float(rng.uniform(1.5, 3.0) if ground else rng.uniform(0.6, 1.2)), axes,
        tuple(float(rng.uniform(0, 2 * math.pi)) for _ in range(n)),
        tuple(float(f) for f in rng.uniform(0.5, 3.0, size=n)),
    )


def _view_half_width(z: float) -> float:
    """Half width of the view (world units) on the ground at depth ``z``."""
    pitch = math.radians(CAM_PITCH_DEG)
    forward = CAM_HEIGHT * math.sin(pitch) + math.cos(pitch) * (z - CAM_Z)
    return forward * math.tan(math.radians(CAM_VFOV_DEG / 2))


def random_scene(rng: np.random.Generator) -> Scene3D:
    """Draw a scene: a textured ground and 3-7 non-overlapping textured primitives inside the view."""
    ground = _random_texture(rng, ground=True)
    wanted = int(rng.integers(3, 8))
    objects: list[Primitive] = []
    placed: list[tuple[float, float, float]] = []  # footprint circles (x, z, r)
    for _ in range(200):
        if len(objects) == wanted:
            break
        kind = str(rng.choice(("box", "sphere", "cylinder")))
        if kind == "sphere":
            r = float(rng.uniform(0.35, 0.85))
            foot = r
        elif kind == "cylinder":
            r, h = float(rng.uniform(0.22, 0.55)), float(rng.uniform(0.6, 2.0))
            foot = r
        else:
            half = (float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.25, 0.75)))
            angle = float(rng.uniform(0, math.pi / 2))
            foot = math.hypot(half[0], half[2])
        z = float(rng.uniform(-0.4, 5.0))
        reach = 0.85 * _view_half_width(z) - foot
        if reach <= 0:
            continue
        x = float(rng.uniform(-reach, reach))
        if any(math.hypot(x - px, z - pz) < foot + pr + 0.1 for px, pz, pr in placed):
            continue
        texture = _random_texture(rng, ground=False)
        if kind == "sphere":
            lift = float(rng.uniform(0.2, 0.8)) if rng.uniform() < 0.3 else 0.0
            obj: Primitive = Sphere((x, r + lift, z), r, texture)
        elif kind == "cylinder":
            obj = Cylinder(x, z, r, h, texture)
        else:
            obj = Box((x, half[1], z), half, angle, texture)
        objects.append(obj)
        placed.append((x, z, foot))
    return Scene3D(ground, tuple(objects))


def scene_for_index(seed: int, index: int) -> Scene3D:
    """The scene with this id in the dataset drawn with ``seed`` (independent of worker count and order)."""
    return random_scene(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5EED])))


# ====================================================================================================================
# Rendering
# ====================================================================================================================


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
    return (rgb / rgb.max()).astype(_F32)


def light_direction(direction: str) -> np.ndarray:
    """Unit vector ``(3,) float32`` toward the light for a VIDIT direction (N = +z, E = +x), mirror-exact."""
    az = math.radians(AZIMUTH_DEG[direction])
    # snap sin/cos so that mirrored azimuths give exactly mirrored vectors (sin 270 vs -sin 90 etc.)
    hx, hz = round(math.sin(az), 9), round(math.cos(az), 9)
    el = math.radians(LIGHT_ELEVATION_DEG)
    norm = math.hypot(hx, hz)
    return np.array([hx / norm * math.cos(el), math.sin(el), hz / norm * math.cos(el)], dtype=_F32)


@functools.lru_cache(maxsize=4)
def _camera_rays(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit ray directions ``(size*size,) float32`` each (read-only, cached), row-major, for pixel centres."""
    focal = (size / 2) / math.tan(math.radians(CAM_VFOV_DEG / 2))
    coords = (np.arange(size, dtype=np.float64) + 0.5 - size / 2) / focal  # exactly antisymmetric
    xc = np.broadcast_to(coords[None, :], (size, size))
    yc = np.broadcast_to(-coords[:, None], (size, size))
    pitch = math.radians(CAM_PITCH_DEG)
    sp, cp = math.sin(pitch), math.cos(pitch)
    # camera basis: right = +x, up = (0, cos, sin), forward = (0, -sin, cos)
    dx = xc
    dy = yc * cp - sp
    dz = yc * sp + cp
    inv = 1.0 / np.sqrt(dx * dx + dy * dy + dz * dz)
    rays = tuple(np.ascontiguousarray((v * inv).ravel(), dtype=_F32) for v in (dx, dy, dz))
    for ray in rays:
        ray.flags.writeable = False
    return rays  # type: ignore[return-value]


def project(point: Vec3, size: int) -> tuple[float, float]:
    """Image position ``(row, col)`` (continuous; pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``) of a world point."""
    focal = (size / 2) / math.tan(math.radians(CAM_VFOV_DEG / 2))
    pitch = math.radians(CAM_PITCH_DEG)
    sp, cp = math.sin(pitch), math.cos(pitch)
    rx, ry, rz = point[0], point[1] - CAM_HEIGHT, point[2] - CAM_Z
    forward = -sp * ry + cp * rz
    up = cp * ry + sp * rz
    if forward <= 0:
        raise ValueError(f"point {point} is behind the camera")
    return size / 2 - focal * up / forward, size / 2 + focal * rx / forward


@dataclass
class _Frame:
    """Per-pixel primary-ray results (all ``(N,) float32`` unless noted; ``N = size * size``)."""

    size: int
    t: np.ndarray
    p: tuple[np.ndarray, np.ndarray, np.ndarray]
    n: tuple[np.ndarray, np.ndarray, np.ndarray]
    albedo: np.ndarray  # (N, 3)


def _primary(scene: Scene3D, size: int) -> _Frame:
    dx, dy, dz = _camera_rays(size)
    ox, oy, oz = _F32(0), _F32(CAM_HEIGHT), _F32(CAM_Z)
    t = (_F32(0) - oy) / dy  # ground plane y = 0; dy < 0 for every pixel
    ids = np.zeros(t.shape, np.int16)
    for k, obj in enumerate(scene.objects, start=1):
        tn, tf = obj.interval(ox, oy, oz, dx, dy, dz)
        hit = (tn <= tf) & (tn > 0) & (tn < t)
        t = np.where(hit, tn, t)
        ids[hit] = k
    px, py, pz = ox + t * dx, oy + t * dy, oz + t * dz
    nx, ny, nz = np.zeros_like(t), np.ones_like(t), np.zeros_like(t)
    py = np.where(ids == 0, _F32(0), py)  # exactly on the ground
    albedo = np.empty((t.shape[0], 3), _F32)
    pix_angle = _F32(math.radians(CAM_VFOV_DEG) / size)
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
        footprint = t[sel] * pix_angle / np.maximum(cos, _F32(0.2))
        albedo[sel] = texture.albedo(sx, sy, sz, footprint)
    return _Frame(size, t, (px, py, pz), (nx, ny, nz), albedo)


def _direct(scene: Scene3D, frame: _Frame, direction: str) -> np.ndarray:
    """Direct-light factor ``(N,) float32`` in [0, 1]: ``max(n.L, 0)`` times visibility of the light."""
    lx, ly, lz = (_F32(v) for v in light_direction(direction))
    nx, ny, nz = frame.n
    cos = nx * lx + ny * ly + nz * lz
    lit = np.flatnonzero(cos > 0)
    off = _F32(SHADOW_OFFSET)
    ox = frame.p[0][lit] + nx[lit] * off
    oy = frame.p[1][lit] + ny[lit] * off
    oz = frame.p[2][lit] + nz[lit] * off
    blocked = np.zeros(lit.shape, bool)
    for obj in scene.objects:
        # cull: only points whose ray toward the light passes within the bounding sphere
        (bx, by, bz), br = obj.bound()
        rx, ry, rz = _F32(bx) - ox, _F32(by) - oy, _F32(bz) - oz
        along = rx * lx + ry * ly + rz * lz
        dist2 = rx * rx + ry * ry + rz * rz - along * along
        cand = np.flatnonzero((dist2 <= _F32(br * br * 1.0001 + 1e-4)) & (along > _F32(-br - 1e-3)) & ~blocked)
        if cand.size == 0:
            continue
        tn, tf = obj.interval(ox[cand], oy[cand], oz[cand], lx, ly, lz)
        blocked[cand] |= (tn <= tf) & (tf > _F32(1e-4))
    out = np.zeros_like(cos)
    out[lit] = np.where(blocked, _F32(0), cos[lit])
    return out


def _shade(frame: _Frame, direct: np.ndarray, temperature: int) -> np.ndarray:
    """Tone-mapped ``(size, size, 3) uint8`` image from albedo, direct-light factor and light colour."""
    radiance = frame.albedo * (light_color(temperature)[None, :] * (_F32(AMBIENT) + _F32(DIRECT) * direct)[:, None])
    encoded = np.power(np.clip(radiance, 0.0, 1.0), _F32(GAMMA)) * _F32(255)
    return np.rint(encoded).astype(np.uint8).reshape(frame.size, frame.size, 3)


def _depth(frame: _Frame) -> np.ndarray:
    d = np.clip(frame.t / _F32(MAX_DISTANCE), 0.0, 1.0).astype(np.float16).astype(np.float32)
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


# ====================================================================================================================
# The dataset on disk
# ====================================================================================================================


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated files (scene counts, seed, image size and conditions).

    ``input``/``target`` go to the Track 1 folders; ``conditions`` are written for the training scenes in
    the full-VIDIT naming (``vidit_full/Image007_6500_NE.png``).  Condition strings are normalised
    (``"6500-n"`` -> ``"6500_N"``).
    """

    train: int = 24
    val: int = 6
    test: int = 6
    seed: int = 0
    size: int = 256
    input: str = "6500_N"
    target: str = "4500_E"
    conditions: tuple[str, ...] = PAPER_CONDITIONS

    def __post_init__(self) -> None:
        for name in ("train", "val", "test", "seed", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"synthetic data: {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("train", "val", "test", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"synthetic data: {name} must be >= 0, got {getattr(self, name)}")
        if self.train + self.val + self.test < 1:
            raise ConfigError("synthetic data: needs at least one scene (train + val + test >= 1)")
        if self.size < 8:
            raise ConfigError(f"synthetic data: size must be at least 8 pixels, got {self.size}")
        if isinstance(self.conditions, str):
            raise ConfigError(f"synthetic data: conditions must be a list of conditions, got {self.conditions!r}")
        object.__setattr__(self, "input", str(Condition.parse(self.input)))
        object.__setattr__(self, "target", str(Condition.parse(self.target)))
        object.__setattr__(self, "conditions", tuple(dict.fromkeys(str(Condition.parse(c)) for c in self.conditions)))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["conditions"] = list(self.conditions)
        return d

    def key(self) -> str:
        """A short stable hash of every field and :data:`RENDERER_VERSION` (for cache folder names)."""
        blob = json.dumps({"spec": self.to_dict(), "renderer": RENDERER_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: Track 1 folders, relative to the dataset root.
TRAIN_INPUT = "track1_train/input"
TRAIN_TARGET = "track1_train/target"
VAL_INPUT = "track1_validation"
VAL_TARGET = "track1_validation_gt"
TEST_INPUT = "track1_test"
TEST_TARGET = "track1_test_gt"
FULL = "vidit_full"
FOLDERS: tuple[str, ...] = (TRAIN_INPUT, TRAIN_TARGET, VAL_INPUT, VAL_TARGET, TEST_INPUT, TEST_TARGET, FULL)
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "relight-bench synthetic VIDIT"

_SPLIT_FOLDERS = {"train": (TRAIN_INPUT, TRAIN_TARGET), "val": (VAL_INPUT, VAL_TARGET), "test": (TEST_INPUT, TEST_TARGET)}


def _layout(spec: SyntheticSpec) -> tuple[list[tuple[int, str]], int]:
    """``[(scene id, split), ...]`` numbered train, then val, then test; and the id width (>= 3 digits)."""
    items = [(i, "train") for i in range(spec.train)]
    items += [(spec.train + i, "val") for i in range(spec.val)]
    items += [(spec.train + spec.val + i, "test") for i in range(spec.test)]
    return items, max(3, len(str(len(items) - 1)))


def _write(path: Path, data: bytes) -> None:
    """Write a file of the partial tree and flush it to disk (the tree becomes visible only by the final rename)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _make_scene(task: tuple[str, SyntheticSpec, int, str, int]) -> int:
    """Render one scene's conditions and write its files under the partial tree (runs in a worker)."""
    folder, spec, index, split, width = task
    root = Path(folder)
    name = f"Image{index:0{width}d}"
    conds = [spec.input, spec.target]
    if split == "train":
        conds += list(spec.conditions)
    conds = list(dict.fromkeys(conds))
    images, depth = render_conditions(scene_for_index(spec.seed, index), conds, spec.size)
    pngs = {c: encode_rgba_png(images[c]) for c in conds}
    npy = encode_depth_npy(depth, ref_center_dis=MAX_DISTANCE)
    in_dir, gt_dir = _SPLIT_FOLDERS[split]
    _write(root / in_dir / f"{name}.png", pngs[spec.input])
    _write(root / in_dir / f"{name}.npy", npy)
    _write(root / gt_dir / f"{name}.png", pngs[spec.target])
    if split == "train":
        for c in spec.conditions:
            _write(root / FULL / f"{name}_{c}.png", pngs[c])
        _write(root / FULL / f"{name}.npy", npy)
    return index


def _manifest(spec: SyntheticSpec) -> dict:
    items, width = _layout(spec)
    ids = {s: [i for i, split in items if split == s] for s in ("train", "val", "test")}
    return {
        "format": MANIFEST_FORMAT,
        "renderer_version": RENDERER_VERSION,
        "key": spec.key(),
        "spec": spec.to_dict(),
        "counts": {s: len(v) for s, v in ids.items()},
        "scene_ids": {s: [v[0], v[-1]] if v else [] for s, v in ids.items()},
        "id_width": width,
        "folders": list(FOLDERS),
        "depth": {"key": "normalized_depth", "dtype": "float32", "range": [0.0, 1.0], "larger_is_farther": True,
                  "ref_center_dis": f"MAX_DISTANCE = {MAX_DISTANCE} scene units (depth 1.0)"},
    }


def _check_existing(root: Path, spec: SyntheticSpec) -> bool:
    """True if ``root`` holds this spec's complete tree; False if it is absent or an empty folder; else DataError."""
    if not root.exists():
        return False
    hint = "choose another data.root (or --root), or delete that folder to regenerate"
    if not root.is_dir():
        raise DataError(f"synthetic data folder {root} exists but is a file, not a folder; {hint}")
    entries = sorted(p.name for p in root.iterdir())
    if not entries:
        return False
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise DataError(
            f"synthetic data folder {root} already exists and is not a synthetic dataset generated by relight-bench "
            f"(no {MANIFEST}; it contains: {shown}); {hint}"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"synthetic data folder {root}: unreadable {MANIFEST} ({exc}); {hint}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DataError(f"synthetic data folder {root}: {MANIFEST} is not a relight-bench synthetic manifest; {hint}")
    wanted = spec.to_dict()
    found = manifest.get("spec") if isinstance(manifest.get("spec"), dict) else {}
    diffs = [f"{k}={found.get(k)!r} (wanted {v!r})" for k, v in wanted.items() if found.get(k) != v]
    if manifest.get("renderer_version") != RENDERER_VERSION:
        diffs.append(f"renderer_version={manifest.get('renderer_version')!r} (wanted {RENDERER_VERSION})")
    if diffs:
        raise DataError(
            f"synthetic data folder {root} holds a different synthetic dataset: {'; '.join(diffs)}; {hint}"
        )
    missing = [f for f in FOLDERS if not (root / f).is_dir()]
    if missing:
        raise DataError(f"synthetic data folder {root} is incomplete (missing {', '.join(missing)}); {hint}")
    short = [
        f"{folder} has {found} of {wanted} files"
        for folder, wanted in _expected_counts(spec).items()
        if (found := sum(1 for _ in os.scandir(root / folder))) != wanted
    ]
    if short:
        raise DataError(f"synthetic data folder {root} was modified after generation ({'; '.join(short)}); {hint}")
    return True


def _expected_counts(spec: SyntheticSpec) -> dict[str, int]:
    """Number of files in each folder of a complete tree."""
    return {
        TRAIN_INPUT: 2 * spec.train, TRAIN_TARGET: spec.train, VAL_INPUT: 2 * spec.val, VAL_TARGET: spec.val,
        TEST_INPUT: 2 * spec.test, TEST_TARGET: spec.test, FULL: spec.train * (len(spec.conditions) + 1),
    }


def _available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, e.g. in containers)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork avoids re-importing torch (pulled in by the bench package) in every worker; the workers only use
    # numpy and PIL.  Elsewhere (macOS, Windows) use spawn.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def generate(root: PathLike, spec: SyntheticSpec, *, workers: int | None = None, progress: bool = True) -> Path:
    """Write the synthetic dataset of ``spec`` into ``root`` (or reuse it) and return ``root``.

    Layout (scene ids continue across splits: train, then val, then test; 3+ digit zero padding)::

        track1_train/input/ImageNNN.png + ImageNNN.npy   input condition, depth (pickled dict)
        track1_train/target/ImageNNN.png                 target condition
        track1_validation/ImageNNN.png + .npy            validation inputs
        track1_validation_gt/ImageNNN.png                validation targets
        track1_test/ImageNNN.png + .npy                  test inputs
        track1_test_gt/ImageNNN.png                      test targets (VIDIT never published these)
        vidit_full/ImageNNN_TTTT_D.png + ImageNNN.npy    training scenes under every spec.conditions
        manifest.json                                    spec, renderer version, counts, folders (written last)

    The tree is built in ``.<name>.partial-<pid>`` beside ``root`` and renamed into place at the end, so an
    interrupted run never leaves a tree that looks complete.  An existing ``root`` holding the same spec is
    returned as is; an existing empty folder is filled; anything else raises :class:`DataError`.
    ``workers``: processes to use (``None``: all usable cores; 0 or 1: this process).  Files are byte-identical for
    any worker count.
    """
    root = Path(root).expanduser()
    if _check_existing(root, spec):
        log.info("synthetic data: reusing %s", root)
        return root
    items, width = _layout(spec)
    if workers is None:
        workers = _available_cpus()
    workers = max(0, min(int(workers), len(items)))
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    stale = sorted(p.name for p in root.parent.glob(f".{root.name}.partial-*") if p != partial)
    if stale:
        log.warning(
            "synthetic data: found %s in %s, left by an interrupted (or still running) generation; "
            "delete once no other generation is running", ", ".join(stale), root.parent,
        )
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():
            shutil.rmtree(partial)
        for folder in FOLDERS:
            (partial / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the synthetic data folder next to {root} ({exc.strerror or exc}); choose a writable data.root"
        ) from None
    log.info("synthetic data: rendering %d scenes at %d px into %s (%d workers)", len(items), spec.size, root, workers)
    start = time.perf_counter()
    tasks = [(str(partial), spec, index, split, width) for index, split in items]
    try:
        if workers <= 1:
            with _progress(len(tasks), progress) as bar:
                for task in tasks:
                    _make_scene(task)
                    bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
                # submit (and so fork) before the progress bar starts its monitor thread
                done = pool.map(_make_scene, tasks, chunksize=max(1, min(8, len(tasks) // (4 * workers))))
                with _progress(len(tasks), progress) as bar:
                    for _ in done:
                        bar.update(1)
        for folder in FOLDERS:
            _fsync_dir(partial / folder)
        atomic_write_text(partial / MANIFEST, json.dumps(_manifest(spec), indent=2) + "\n")
        try:
            if root.is_dir() and not any(root.iterdir()):
                root.rmdir()  # an empty folder the user made beforehand
            os.rename(partial, root)
        except OSError:
            # another process may have finished the same dataset first
            if _check_existing(root, spec):
                shutil.rmtree(partial, ignore_errors=True)
                return root
            raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _fsync_dir(root.parent)
    elapsed = time.perf_counter() - start
    log.info("synthetic data: %d scenes in %.1f s (%.1f scenes/s) -> %s", len(items), elapsed, len(items) / elapsed, root)
    return root


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="synthetic scenes", unit="scene", disable=not enabled, leave=False)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "PAPER_CONDITIONS", "RENDERER_VERSION", "SyntheticSpec", "Scene3D", "Sphere", "Cylinder", "Box", "Texture",
    "random_scene", "scene_for_index", "render", "render_conditions", "light_color", "light_direction", "project",
    "generate",
]
