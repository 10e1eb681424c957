"""Shared fixtures: every test runs with empty, private weight caches (no real weights, no downloads); per-model test
files get their network from ``model`` (seeded) and ``meta_model`` (on the meta device, for counts), built from the
class the file names as ``ADAPTER``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_weight_caches(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RELIGHT_BENCH_CACHE", str(home / "bench"))
    from models import weights

    weights._WARNED.clear()  # each test sees the first "weights missing" warning
    yield home


@pytest.fixture(scope="module")
def model(request):
    """The test file's ``ADAPTER`` with its default arguments, weights from seed 0."""
    import torch

    torch.manual_seed(0)
    return request.module.ADAPTER()


@pytest.fixture(scope="module")
def meta_model(request):
    """The test file's ``ADAPTER`` on the meta device: shapes and counts without memory or compute."""
    import torch

    with torch.device("meta"):
        return request.module.ADAPTER()
