"""A built-in procedural relighting dataset written in exactly VIDIT's file formats.

VIDIT (El Helou et al., "VIDIT: Virtual Image Dataset for Illumination Transfer", arXiv:2005.05460;
https://github.com/majedelhelou/VIDIT) renders each scene under 8 light azimuths and 5 colour
temperatures.  This package makes a small stand-in: every scene is a textured ground plane plus 3-7
primitives (spheres, vertical cylinders, boxes rotated about the vertical axis) seen by a fixed pinhole
camera, lit by a directional light at the VIDIT azimuths and temperatures.

Modules, bottom to top:

* :mod:`~datasets.synthetic.textures`: procedural albedo patterns (and the float32 helpers);
* :mod:`~datasets.synthetic.geometry`: the shapes, their ray intersections and normals, :class:`Scene3D`;
* :mod:`~datasets.synthetic.camera`: the fixed camera, its pixel rays and :func:`project`;
* :mod:`~datasets.synthetic.scenes`: random scene descriptions (:func:`scene_for_index`);
* :mod:`~datasets.synthetic.render`: the ray-cast renderer (:func:`render`, :func:`render_conditions`);
* :mod:`~datasets.synthetic.spec`: :class:`SyntheticSpec`, what a dataset is made of;
* :mod:`~datasets.synthetic.tree`: the folder tree, its manifest and the check of an existing tree;
* :mod:`~datasets.synthetic.writer`: :func:`generate`, rendering in worker processes and publishing the tree.

World frame: ``x`` to the East (right in the image), ``y`` up, ``z`` to the North (away from the camera).
The camera is left-right symmetric, so rendering :meth:`Scene3D.mirrored` under the mirrored condition
gives the column-flipped image.

The output of :func:`generate` is a deterministic function of :class:`SyntheticSpec` (byte-identical files
for any worker count); the reader for real VIDIT data reads it unchanged.  Across numpy versions or CPUs,
float32 ``sin``/``pow`` may round differently, so a few pixels can differ by one level; the scene geometry
itself (drawn with ``numpy.random.Generator``) does not change.
"""

from datasets.synthetic.camera import project
from datasets.synthetic.geometry import Box, Cylinder, Scene3D, Sphere
from datasets.synthetic.render import light_color, light_direction, render, render_conditions
from datasets.synthetic.scenes import random_scene, scene_for_index
from datasets.synthetic.spec import PAPER_CONDITIONS, RENDERER_VERSION, SyntheticSpec
from datasets.synthetic.textures import Texture
from datasets.synthetic.writer import generate

__all__ = [
    "PAPER_CONDITIONS", "RENDERER_VERSION", "SyntheticSpec", "Scene3D", "Sphere", "Cylinder", "Box", "Texture",
    "random_scene", "scene_for_index", "render", "render_conditions", "light_color", "light_direction", "project",
    "generate",
]
