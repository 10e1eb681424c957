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


class _Legacy(nn.Module):
    """An adapter written before capabilities existed: its methods and attributes were its declaration."""

    time_breakdown = {"body": "the body"}

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(4, 3, 1)
        self.pretrained_info = ["none loaded (test)"]

    def forward(self, rgb, depth):
        return self.body(torch.cat([rgb, depth], dim=1))

    def auxiliary_terms(self, target):
        return {"legacy_term": self.body.weight.square().sum()}


def test_an_adapter_registered_without_a_declaration_has_it_read_off_its_module(monkeypatch, caplog):
    from models import capabilities

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(capabilities, "_INFERRED_WARNED", set())
    bench.register_model("legacy_test", tags=("relighting",))(lambda: _Legacy())
    assert not registry.get_entry("legacy_test").explicit
    with caplog.at_level("WARNING", logger="models.capabilities"):
        found = registry.adapter_capabilities("legacy_test", bench.create_model("legacy_test"))
    assert found.auxiliary_terms and found.pretrained and found.guide is None and found.tags == ("relighting",)
    assert found.time_breakdown == {"body": "the body"}
    assert "registered without capabilities=" in caplog.text and "auxiliary loss terms" in caplog.text


def test_a_declaration_that_disagrees_with_its_module_is_refused_when_built(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    bench.register_model("overclaims_test", capabilities=bench.Capabilities(guide=bench.Guide()))(lambda: nn.Conv2d(4, 3, 1))
    bench.register_model("underclaims_test", capabilities=bench.Capabilities())(lambda: _Legacy())
    with pytest.raises(RegistryError, match="declares set_guide but the module has no set_guide"):
        registry.adapter_capabilities("overclaims_test", bench.create_model("overclaims_test"))
    with pytest.raises(RegistryError, match="has a auxiliary_terms\\(\\) method but does not declare it"):
        registry.adapter_capabilities("underclaims_test", bench.create_model("underclaims_test"))
    with pytest.raises(RegistryError, match="unknown tags"):
        bench.Capabilities(tags=("relightning",))
    with pytest.raises(RegistryError, match="declare pretrained, but the factory takes no"):
        bench.register_model("pretrained_test", capabilities=bench.Capabilities(pretrained=True))(lambda: _Legacy())
