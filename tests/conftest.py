"""Shared fixtures: every test runs with empty, private weight caches (no real weights, no downloads)."""

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
