"""Random scene descriptions: a textured ground plus 3-7 non-overlapping textured primitives in view.

Everything is drawn from one ``numpy.random.Generator`` in a fixed order, so a scene is a pure
function of its seed (:func:`scene_for_index`), whatever process draws it.  The geometry uses plain
Python floats (no LAPACK in worker processes).
"""

from __future__ import annotations

import colorsys
import math
from typing import Sequence

import numpy as np

from datasets.synthetic.camera import view_half_width
from datasets.synthetic.geometry import Box, Cylinder, Primitive, Scene3D, Sphere
from datasets.synthetic.textures import Texture, Vec3

_SHAPES = ("box", "sphere", "cylinder")


def _random_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> Vec3:
    """An RGB colour in [0, 1] with a uniform hue and saturation and value drawn from the given ranges."""
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


def _random_colors(rng: np.random.Generator, *, ground: bool) -> tuple[Vec3, Vec3]:
    """A texture's two colours: the second is a darker shade of the first or an unrelated colour (even odds)."""
    a = _random_color(rng, (0.05, 0.5) if ground else (0.2, 0.85), (0.45, 0.85))
    if rng.uniform() < 0.5:
        h, s, v = colorsys.rgb_to_hsv(*a)
        b = colorsys.hsv_to_rgb((h + rng.uniform(-0.06, 0.06)) % 1.0, s, v * float(rng.uniform(0.35, 0.65)))
    else:
        b = _random_color(rng, (0.1, 0.7), (0.25, 0.8))
    return a, tuple(float(c) for c in b)


def _random_checker(rng: np.random.Generator, a: Vec3, b: Vec3, *, ground: bool) -> Texture:
    if ground:  # checker aligned with a random direction in the ground plane
        phi = float(rng.uniform(0, math.pi / 2))
        axes = ((math.cos(phi), 0.0, math.sin(phi)), (-math.sin(phi), 0.0, math.cos(phi)), (0.0, 1.0, 0.0))
        phases = (float(rng.uniform(0, math.pi)), float(rng.uniform(0, math.pi)), math.pi / 2)
    else:
        axes = _random_frame(rng)
        phases = tuple(float(rng.uniform(0, 2 * math.pi)) for _ in range(3))
    period = float(rng.uniform(0.5, 1.2) if ground else rng.uniform(0.2, 0.45))
    return Texture("checker", a, b, period, axes, phases)


def _random_stripes(rng: np.random.Generator, a: Vec3, b: Vec3, *, ground: bool) -> Texture:
    if ground:  # stripes orthogonal to a random direction in the ground plane
        phi = float(rng.uniform(0, math.pi))
        axis = (math.cos(phi), 0.0, math.sin(phi))
    else:
        axis = _random_unit(rng)
    period = float(rng.uniform(0.5, 1.4) if ground else rng.uniform(0.2, 0.5))
    return Texture("stripes", a, b, period, (axis,), (float(rng.uniform(0, 2 * math.pi)),))


def _random_noise(rng: np.random.Generator, a: Vec3, b: Vec3, *, ground: bool) -> Texture:
    n = 4
    axes = tuple(_random_unit(rng) for _ in range(n))
    if ground:  # keep the ground's noise varying along the ground
        axes = tuple((x, 0.25 * y, z) for x, y, z in axes)
    period = float(rng.uniform(1.5, 3.0) if ground else rng.uniform(0.6, 1.2))
    phases = tuple(float(rng.uniform(0, 2 * math.pi)) for _ in range(n))
    freqs = tuple(float(f) for f in rng.uniform(0.5, 3.0, size=n))
    return Texture("noise", a, b, period, axes, phases, freqs)


_PATTERNS = {"checker": _random_checker, "stripes": _random_stripes, "noise": _random_noise}


def _random_texture(rng: np.random.Generator, *, ground: bool) -> Texture:
    """A random texture; the ground is always patterned (it shows the shading), objects may be solid."""
    kind = str(rng.choice(("checker", "stripes", "noise") if ground else ("solid", "checker", "stripes", "noise")))
    a, b = _random_colors(rng, ground=ground)
    if kind == "solid":
        return Texture("solid", a, a)
    return _PATTERNS[kind](rng, a, b, ground=ground)


def _random_shape(rng: np.random.Generator) -> tuple[str, tuple, float]:
    """``(kind, size, footprint)``: a shape kind, its size parameters and the radius it covers on the ground."""
    kind = str(rng.choice(_SHAPES))
    if kind == "sphere":
        r = float(rng.uniform(0.35, 0.85))
        return kind, (r,), r
    if kind == "cylinder":
        r, h = float(rng.uniform(0.22, 0.55)), float(rng.uniform(0.6, 2.0))
        return kind, (r, h), r
    half = (float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.25, 0.75)))
    angle = float(rng.uniform(0, math.pi / 2))
    return kind, (half, angle), math.hypot(half[0], half[2])


def _place(rng: np.random.Generator, kind: str, size: tuple, x: float, z: float, texture: Texture) -> Primitive:
    """The primitive of :func:`_random_shape` standing at ground position ``(x, z)`` (30 % of spheres float)."""
    if kind == "sphere":
        (r,) = size
        lift = float(rng.uniform(0.2, 0.8)) if rng.uniform() < 0.3 else 0.0
        return Sphere((x, r + lift, z), r, texture)
    if kind == "cylinder":
        r, h = size
        return Cylinder(x, z, r, h, texture)
    half, angle = size
    return Box((x, half[1], z), half, angle, texture)


def random_scene(rng: np.random.Generator) -> Scene3D:
    """Draw a scene: a textured ground and 3-7 non-overlapping textured primitives inside the view."""
    ground = _random_texture(rng, ground=True)
    wanted = int(rng.integers(3, 8))
    objects: list[Primitive] = []
    placed: list[tuple[float, float, float]] = []  # footprint circles (x, z, r)
    for _ in range(200):
        if len(objects) == wanted:
            break
        kind, size, foot = _random_shape(rng)
        z = float(rng.uniform(-0.4, 5.0))
        reach = 0.85 * view_half_width(z) - foot
        if reach <= 0:
            continue
        x = float(rng.uniform(-reach, reach))
        if any(math.hypot(x - px, z - pz) < foot + pr + 0.1 for px, pz, pr in placed):
            continue
        texture = _random_texture(rng, ground=False)
        objects.append(_place(rng, kind, size, x, z, texture))
        placed.append((x, z, foot))
    return Scene3D(ground, tuple(objects))


def scene_for_index(seed: int, index: int) -> Scene3D:
    """The scene with this id in the dataset drawn with ``seed`` (independent of worker count and order)."""
    return random_scene(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5EED])))
