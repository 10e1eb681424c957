"""Training pairs, including the MBNet paper's two extra-data strategies (section 3.3).

Paper: Yang et al., "Multi-modal Bifurcated Network for Depth Guided Image Relighting", CVPR Workshops
2021; official code: https://github.com/weitingchen83/NTIRE2021-Depth-Guided-Image-Relighting-MBNet.

* ``baseline``: the scene lit by the input condition (6500-N) and its depth -> the scene lit by the
  target condition (4500-E).
* ``extra_input``: the same scene lit by ``extra_input_cond`` (6500-NE) -> the same target, same depth.
* ``mirror``: mirroring a scene horizontally mirrors its lighting (E<->W, NE<->NW, SE<->SW, N and S
  kept), i.e. ``mirror(Image(s, c)) = Image(mirror(s), c.mirrored())``.  So the mirrored image lit by
  ``input.mirrored()`` (for N: the 6500-N image itself) with the mirrored depth maps to the mirrored
  image lit by ``target.mirrored()`` (4500-W for 4500-E).  The flip happens when a sample is loaded
  (``PairSpec.mirror``).

Images for conditions that the Track 1 scene does not have come from the full-naming folder
(``extra``), matched by scene id: VIDIT's Track 1 and Track 2 training sets hold the same scenes under
the same ids [inferred from participants' code].  The Track 1 depth map is used for every pair.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NoReturn, Sequence

from datasets.errors import DataError
from relight_base.errors import ConfigError
from datasets.conditions import Condition
from datasets.layout import Scene

log = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("extra_input", "mirror")
ORIGINS: tuple[str, ...] = ("baseline", *STRATEGIES)


@dataclass(frozen=True)
class PairSpec:
    """One sample: which files to read and whether to mirror them.

    ``origin`` says where the sample came from ("baseline", "extra_input" or "mirror");
    ``input_condition``/``target_condition`` are the conditions of the files as stored on disk
    (e.g. "6500_N" and "4500_W" for a mirror pair).  ``target_path`` is None without ground truth.
    """

    scene_id: str
    origin: str
    input_path: Path
    depth_path: Path
    target_path: Path | None
    mirror: bool
    input_condition: str
    target_condition: str


def resolve_strategies(extra_data: bool | str | Sequence[str] | None) -> tuple[str, ...]:
    """Normalise the ``extra_data`` setting of an experiment.

    ``False``/``None`` -> ``()``; ``True`` -> both strategies; a name or a list of names -> those names,
    validated, without duplicates, in canonical order (``STRATEGIES``).  An unknown name raises
    :class:`ConfigError` with a did-you-mean hint.
    """
    if extra_data is None or extra_data is False:
        return ()
    if extra_data is True:
        return STRATEGIES
    chosen = [extra_data] if isinstance(extra_data, str) else list(extra_data)
    for name in chosen:
        if name not in STRATEGIES:
            close = difflib.get_close_matches(str(name), STRATEGIES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"extra_data: unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}{hint}")
    return tuple(s for s in STRATEGIES if s in chosen)


def _image(scene: Scene, cond: Condition, extra: Mapping[str, Scene] | None, strategy: str, folder: str) -> Path:
    """The PNG of ``scene`` lit by ``cond``: from the Track 1 scene, else from the full-naming folder."""
    if cond in scene.images:
        return scene.images[cond]
    other = extra.get(scene.scene_id) if extra is not None else None
    if other is not None and cond in other.images:
        return other.images[cond]
    _missing(scene.scene_id, cond, strategy, folder, extra)


def _missing(scene_id: str, cond: Condition, strategy: str, folder: str, extra: Mapping[str, Scene] | None) -> NoReturn:
    if extra is None:
        raise DataError(
            f"the {strategy} strategy needs {scene_id}_{cond}.png from the full VIDIT naming folder, "
            "and no such folder was given (data.folders.full)"
        )
    why = "" if scene_id in extra else f" (the folder has no images of {scene_id} at all)"
    raise DataError(f"the {strategy} strategy needs {scene_id}_{cond}.png in {folder}, and it is missing{why}")


def build_pairs(
    base: Sequence[Scene],
    input_cond: Condition,
    target_cond: Condition,
    strategies: Sequence[str] = (),
    *,
    extra: Mapping[str, Scene] | None = None,
    extra_input_cond: Condition = Condition(6500, "NE"),
    extra_folder: str | Path | None = None,
) -> list[PairSpec]:
    """All baseline pairs, then the extra-input pairs, then the mirrored pairs (scene order within each).

    ``base`` are Track 1 scenes (from :func:`datasets.layout.scan_track1`); ``extra`` the scenes of the
    full-naming folder (from :func:`datasets.layout.scan_full`), searched for conditions ``base`` lacks;
    ``extra_folder`` is only used in error messages.  A missing image raises :class:`DataError` naming
    the scene, the condition and the folder searched.  Baseline pairs of a split without ground truth get
    ``target_path=None``; the strategies need targets.
    """
    strategies = resolve_strategies(list(strategies))
    folder = str(extra_folder) if extra_folder is not None else "the full VIDIT naming folder"
    pairs: list[PairSpec] = []
    for s in base:
        if input_cond not in s.images:
            raise DataError(f"{s.scene_id}: no {input_cond} input image (scene depth {s.depth})")
        pairs.append(PairSpec(s.scene_id, "baseline", s.images[input_cond], s.depth, s.images.get(target_cond), False,
                              str(input_cond), str(target_cond)))
    if strategies:
        lacking = [s.scene_id for s in base if target_cond not in s.images]
        if lacking:
            raise DataError(
                f"the {' and '.join(strategies)} strategy needs {target_cond} training targets, and "
                f"{len(lacking)} scene(s) have none (first: {lacking[0]})"
            )
    if "extra_input" in strategies:
        if extra_input_cond == input_cond:
            log.warning("extra_input condition %s equals the input condition: the extra pairs duplicate the baseline", input_cond)
        for s in base:
            pairs.append(PairSpec(s.scene_id, "extra_input", _image(s, extra_input_cond, extra, "extra_input", folder),
                                  s.depth, s.images[target_cond], False, str(extra_input_cond), str(target_cond)))
    if "mirror" in strategies:
        m_in, m_out = input_cond.mirrored(), target_cond.mirrored()
        for s in base:
            pairs.append(PairSpec(s.scene_id, "mirror", _image(s, m_in, extra, "mirror", folder), s.depth,
                                  _image(s, m_out, extra, "mirror", folder), True, str(m_in), str(m_out)))
    return pairs
