"""The model registry: registration, lookup errors, plugins, the identity adapter."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

import bench
from models import registry
from models.errors import RegistryError


def test_identity_is_registered_and_returns_input():
    assert "identity" in bench.list_models()
    model = bench.create_model("identity")
    rgb, depth = torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8)
    assert torch.equal(model(rgb, depth), rgb)
    assert bench.count_parameters("identity") == 0


def test_unknown_model_lists_known_and_closest():
    with pytest.raises(RegistryError) as err:
        bench.create_model("identty")
    msg = str(err.value)
    assert "'identty'" in msg and "Did you mean 'identity'" in msg and "Registered models:" in msg


def test_bad_model_arguments_are_reported():
    with pytest.raises(RegistryError, match="does not accept arguments"):
        bench.create_model("identity", width=3)


def test_register_and_create_custom_model(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @bench.register_model("tiny_conv_test")
    def tiny_conv_test(width: int = 4) -> nn.Module:
        """A tiny test model."""
        return nn.Conv2d(3, width, 1)

    assert "tiny_conv_test" in bench.list_models()
    assert registry.get_entry("tiny_conv_test").description == "A tiny test model."
    assert bench.count_parameters("tiny_conv_test", width=5) == 3 * 5 + 5
    assert bench.create_model("tiny_conv_test", width=2).out_channels == 2


def test_duplicate_name_from_other_factory_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(RegistryError, match="already registered"):

        @bench.register_model("identity")
        def other() -> nn.Module:
            return nn.Identity()


def test_factory_must_return_module(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    bench.register_model("not_a_module_test")(lambda: 3)
    with pytest.raises(RegistryError, match="not a torch.nn.Module"):
        bench.create_model("not_a_module_test")


def test_plugin_registers_models(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    (tmp_path / "my_plugin_ok.py").write_text(textwrap.dedent('''
        from torch import nn
        from bench import register_model

        @register_model("plugin_net_test")
        def plugin_net_test() -> nn.Module:
            """From a plugin."""
            return nn.Identity()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert bench.load_plugins(["my_plugin_ok"]) == ["my_plugin_ok"]
    assert "plugin_net_test" in bench.list_models()
    sys.modules.pop("my_plugin_ok", None)


def test_missing_plugin_and_broken_plugin_are_reported(tmp_path, monkeypatch):
    with pytest.raises(RegistryError, match="cannot import 'no_such_plugin_xyz'"):
        bench.load_plugins(["no_such_plugin_xyz"])
    (tmp_path / "my_plugin_broken.py").write_text("import math\nraise ValueError('bad plugin state')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError) as err:
        bench.load_plugins(["my_plugin_broken"])
    assert "ValueError: bad plugin state" in str(err.value) and "my_plugin_broken.py:2" in str(err.value)
    (tmp_path / "my_plugin_dep.py").write_text("import not_installed_dependency_xyz\n")
    with pytest.raises(RegistryError, match="not_installed_dependency_xyz"):
        bench.load_plugins(["my_plugin_dep"])


def test_plugin_names_are_module_names_only():
    with pytest.raises(RegistryError, match="not a Python module name"):
        bench.load_plugins(["os; rm -rf /"])
