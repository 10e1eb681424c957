"""The shapes of a synthetic scene and their ray intersections, in float32 numpy.

World frame: ``x`` to the East, ``y`` up, ``z`` to the North; the ground is the plane ``y = 0``.
Every shape answers three questions for vectorised rays (origins ``o`` and unit directions ``d``,
scalars or ``(N,) float32`` arrays):

* ``interval(ox, oy, oz, dx, dy, dz)``: entry and exit ray parameters ``(tn, tf)``, each ``(N,) float32``;
  the ray hits where ``tn <= tf`` (entry is ``+inf`` or past the exit where it misses);
* ``normal(px, py, pz)``: the outward unit normal ``(nx, ny, nz)`` at surface points;
* ``bound()``: a bounding sphere ``(center, radius)`` (used to cull shadow rays);

and ``mirrored()`` gives the shape with world ``x`` negated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

from datasets.synthetic.textures import F32, Texture, Vec3

_BIG = F32(1e30)

Axes = tuple[np.ndarray, np.ndarray, np.ndarray]


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
        cx, cy, cz = (F32(v) for v in self.center)
        ocx, ocy, ocz = ox - cx, oy - cy, oz - cz
        b = ocx * dx + ocy * dy + ocz * dz
        c = ocx * ocx + ocy * ocy + ocz * ocz - F32(self.radius * self.radius)
        disc = b * b - c
        sq = np.sqrt(np.maximum(disc, F32(0)))
        return np.where(disc >= 0, -b - sq, np.inf).astype(F32), -b + sq

    def normal(self, px, py, pz) -> Axes:
        cx, cy, cz = (F32(v) for v in self.center)
        inv = F32(1.0 / self.radius)
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
        """The infinite cylinder's interval clipped to the slab ``0 <= y <= height``; entry +inf on a miss."""
        ocx, ocz = ox - F32(self.cx), oz - F32(self.cz)
        a = dx * dx + dz * dz
        b = ocx * dx + ocz * dz
        c = ocx * ocx + ocz * ocz - F32(self.radius * self.radius)
        disc = b * b - a * c
        sq = np.sqrt(np.maximum(disc, F32(0)))
        inv_a = F32(1) / a
        t0 = (-b - sq) * inv_a
        t1 = (-b + sq) * inv_a
        inv_dy = F32(1) / dy  # never 0: camera rays point down, shadow rays up
        ya = (F32(0) - oy) * inv_dy
        yb = (F32(self.height) - oy) * inv_dy
        tn = np.maximum(t0, np.minimum(ya, yb))
        tf = np.minimum(t1, np.maximum(ya, yb))
        return np.where(disc >= 0, tn, np.inf).astype(F32), tf

    def normal(self, px, py, pz) -> Axes:
        rx, rz = px - F32(self.cx), pz - F32(self.cz)
        inv = F32(1.0 / self.radius)
        top = py >= F32(self.height * (1 - 1e-4))
        zero = np.zeros_like(px)
        return np.where(top, zero, rx * inv), np.where(top, F32(1), zero), np.where(top, zero, rz * inv)

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
        return F32(math.cos(self.angle)), F32(math.sin(self.angle))

    def interval(self, ox, oy, oz, dx, dy, dz) -> tuple[np.ndarray, np.ndarray]:
        """Slab test in the box's local frame (axis-parallel rays get a huge finite inverse, not inf)."""
        c, s = self._cs()
        cx, cy, cz = (F32(v) for v in self.center)
        rx, ry, rz = ox - cx, oy - cy, oz - cz
        lo = (c * rx + s * rz, ry, c * rz - s * rx)
        ld = (c * dx + s * dz, dy, c * dz - s * dx)
        tn = tf = None
        for o, d, h in zip(lo, ld, self.half):
            d = np.asarray(d, F32)
            inv = np.where(d == 0, np.copysign(_BIG, d), F32(1) / np.where(d == 0, F32(1), d)).astype(F32)
            ta = (F32(-h) - o) * inv
            tb = (F32(h) - o) * inv
            lo_t, hi_t = np.minimum(ta, tb), np.maximum(ta, tb)
            tn = lo_t if tn is None else np.maximum(tn, lo_t)
            tf = hi_t if tf is None else np.minimum(tf, hi_t)
        return tn, tf

    def normal(self, px, py, pz) -> Axes:
        """The normal of the face whose local coordinate, relative to its half extent, is largest."""
        c, s = self._cs()
        cx, cy, cz = (F32(v) for v in self.center)
        rx, ry, rz = px - cx, py - cy, pz - cz
        hx, hy, hz = (F32(v) for v in self.half)
        lx, ly, lz = (c * rx + s * rz) / hx, ry / hy, (c * rz - s * rx) / hz
        ax, ay, az = np.abs(lx), np.abs(ly), np.abs(lz)
        use_x = (ax >= ay) & (ax >= az)
        use_y = ~use_x & (ay >= az)
        use_z = ~use_x & ~use_y
        one = F32(1)
        nlx = np.where(use_x, np.copysign(one, lx), F32(0))
        nly = np.where(use_y, np.copysign(one, ly), F32(0))
        nlz = np.where(use_z, np.copysign(one, lz), F32(0))
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
