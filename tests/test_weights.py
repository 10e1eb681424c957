"""Pretrained-weight resolution: local files only, clear errors, the real loading path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from relight_base.errors import ConfigError
from models.weights import find_local_checkpoint, load_into, load_state_dict, resolve_weights, torch_hub_checkpoints


def test_auto_without_weights_falls_back_to_random(caplog):
    choice = resolve_weights("resnet50", "auto")
    assert not choice.pretrained and "not found locally" in choice.reason
    assert "random" in choice.describe()
    assert any("random initialisation" in r.message for r in caplog.records)


def test_true_without_weights_says_where_to_put_them():
    with pytest.raises(ConfigError) as err:
        resolve_weights("vgg19", True, key="weights.perceptual")
    msg = str(err.value)
    assert "weights.perceptual" in msg and "vgg19-dcbb9e9d.pth" in msg and str(torch_hub_checkpoints()) in msg


def test_false_never_searches(tmp_path):
    hub = torch_hub_checkpoints()
    hub.mkdir(parents=True)
    torch.save({}, hub / "alexnet-owt-7be5be79.pth")
    assert resolve_weights("alexnet", False).path is None
    assert resolve_weights("alexnet", "auto").path == hub / "alexnet-owt-7be5be79.pth"


def test_explicit_path_and_missing_path(tmp_path):
    ckpt = tmp_path / "my.pth"
    torch.save({"w": torch.zeros(1)}, ckpt)
    assert resolve_weights("resnet50", str(ckpt)).path == ckpt
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_weights("resnet50", str(tmp_path / "nope.pth"))


def test_hf_cache_is_found_offline(tmp_path, monkeypatch):
    hub = Path(__import__("os").environ["HF_HOME"]) / "hub" / "models--timm--resnet50.tv_in1k"
    (hub / "refs").mkdir(parents=True)
    (hub / "refs" / "main").write_text("abc123")
    snap = hub / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    from safetensors.torch import save_file

    save_file({"conv1.weight": torch.zeros(2, 2)}, str(snap / "model.safetensors"))
    found = find_local_checkpoint("resnet50")
    assert found is not None and found.name == "model.safetensors"
    assert torch.equal(load_state_dict(found)["conv1.weight"], torch.zeros(2, 2))


def test_load_into_checks_keys_and_shapes(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    source = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ckpt = tmp_path / "c.pth"
    torch.save({"state_dict": {**source.state_dict(), "fc.weight": torch.zeros(1)}}, ckpt)
    load_into(net, load_state_dict(ckpt), source=str(ckpt))
    assert torch.equal(net[0].weight, source[0].weight)
    wrong = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5))
    with pytest.raises(ConfigError, match="does not fit"):
        load_into(wrong, load_state_dict(ckpt), source=str(ckpt))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read checkpoint"):
        load_state_dict(bad)
