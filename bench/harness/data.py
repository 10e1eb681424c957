"""Connects the config to the dataset layer: where the data lives, and building its splits.

With ``data.source: synthetic`` the built-in dataset is generated on first use
(into ``data.root`` or a cache folder keyed by its parameters) and reused
afterwards.  With ``data.source: vidit`` the folder must already exist.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bench.harness.config import DataConfig
from datasets.errors import DataError

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$RELIGHT_BENCH_CACHE``, else ``$XDG_CACHE_HOME/relight-bench``, else ``~/.cache/relight-bench``."""
    if os.environ.get("RELIGHT_BENCH_CACHE"):
        return Path(os.environ["RELIGHT_BENCH_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "relight-bench"


def synthetic_spec(data: DataConfig):
    """The :class:`datasets.synthetic.SyntheticSpec` a data config asks for."""
    from datasets.synthetic import SyntheticSpec

    s = data.synthetic
    return SyntheticSpec(train=s.train, val=s.val, test=s.test, seed=s.seed, size=s.size, input=data.input, target=data.target)


def prepare_data_root(data: DataConfig, *, progress: bool = True) -> Path:
    """Return the data folder, generating the synthetic dataset first if needed."""
    if data.source == "synthetic":
        from datasets.synthetic import generate

        spec = synthetic_spec(data)
        root = Path(data.root).expanduser() if data.root else default_cache_dir() / "synthetic" / spec.key()
        return generate(root, spec, progress=progress)
    if not data.root:
        raise DataError(
            "data.root is not set: with data.source: vidit it must name the folder holding the VIDIT / NTIRE 2021 "
            "Track 1 data (see README, 'Using the real VIDIT data')"
        )
    root = Path(data.root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data.root: folder {root} does not exist; expected the VIDIT / NTIRE 2021 Track 1 data there "
            f"(sub-folders {data.folders.train_input}, {data.folders.val_input}, ...)"
        )
    return root


def build_split(data: DataConfig, root: Path, split: str, extra_data: bool | list[str] = False):
    """The validated :class:`datasets.dataset.RelightingDataset` of one split ("train", "val", "test")."""
    from datasets.pairs import resolve_strategies
    from datasets.splits import build_split as _build

    strategies = resolve_strategies(extra_data) if split == "train" else ()
    return _build(data, root, split, strategies)


def validation_scenes(config: dict, root: Path):
    """The validation split of a stored run config (``config.yaml`` as a dict) whose data lives in ``root``.

    Passed to :func:`reports.render.render_report` for its visual comparison.
    """
    import yaml

    from bench.harness.config import parse_config

    cfg = parse_config(yaml.safe_dump(config), source="config.yaml of the run")
    return build_split(cfg.data, Path(root), "val")
