"""Config loading: types, defaults, unknown keys, YAML errors, overrides, --only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness.config import BenchConfig, config_hash, load_config, parse_config, schema_help, to_yaml
from relight_base.errors import ConfigError

MINIMAL = "experiments:\n  - name: a\n    model: identity\n"


def test_defaults_are_filled_in():
    cfg = parse_config(MINIMAL)
    assert isinstance(cfg, BenchConfig)
    assert cfg.data.source == "synthetic" and cfg.data.input == "6500_N" and cfg.data.target == "4500_E"
    assert cfg.train.batch_size == 3
    assert cfg.seeds == [0]
    assert cfg.experiments[0].extra_data is False and cfg.experiments[0].residual is False


def test_repo_benchmark_yaml_is_the_papers_tables():
    """Table 1's MBNet ablation (baseline, + extra data, + residual), Table 2's peers, the identity reference."""
    cfg = load_config(Path(__file__).parent.parent / "benchmark.yaml")
    rows = {e.name: (e.model, e.extra_data, e.residual) for e in cfg.experiments}
    assert rows["baseline"] == ("mbnet", False, False)
    assert rows["extra_data"] == ("mbnet", True, False)
    assert rows["mbnet"] == ("mbnet", True, True)
    assert {rows[m][0] for m in ("atst", "danet", "rd3d", "pgar")} == {"atst", "danet", "rd3d", "pgar"}
    assert all(rows[m][1] is True for m in ("atst", "danet", "rd3d", "pgar")), "Table 2 trains on mbnet's data"
    assert rows["identity"][0] == "identity"
    assert (cfg.data.input, cfg.data.target) == ("6500_N", "4500_E")


def test_unknown_key_gets_did_you_mean_and_line():
    text = "data:\n  sise: 64\n" + MINIMAL
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="b.yaml")
    msg = str(err.value)
    assert "b.yaml:2" in msg and "data.sise" in msg and "did you mean 'data.size'" in msg


def test_wrong_type_names_key_value_and_expectation():
    with pytest.raises(ConfigError) as err:
        parse_config("train:\n  steps: many\n" + MINIMAL, source="b.yaml")
    msg = str(err.value)
    assert "train.steps" in msg and "'many'" in msg and "integer" in msg and "b.yaml:2" in msg


def test_bool_is_not_an_integer_and_negative_is_refused():
    with pytest.raises(ConfigError, match="train.batch_size"):
        parse_config("train:\n  batch_size: true\n" + MINIMAL)
    with pytest.raises(ConfigError, match="data.size: expected an integer >= 11"):
        parse_config("data:\n  size: 2\n" + MINIMAL)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_config("data:\n  size: x\n  source: vidt\n" + MINIMAL)
    msg = str(err.value)
    assert "2 problems" in msg and "did you mean 'vidit'" in msg


def test_yaml_syntax_error_gives_line():
    with pytest.raises(ConfigError) as err:
        parse_config("name: x\ndata: [1, 2\n", source="b.yaml")
    assert "b.yaml:" in str(err.value) and "YAML syntax error" in str(err.value)


def test_duplicate_key_is_an_error():
    with pytest.raises(ConfigError, match="duplicate key 'name'"):
        parse_config("name: a\nname: b\n" + MINIMAL)


def test_missing_required_experiment_key():
    with pytest.raises(ConfigError, match=r"experiments\[0\].model: required key is missing"):
        parse_config("experiments:\n  - name: a\n")


def test_semantic_checks():
    with pytest.raises(ConfigError, match="used twice"):
        parse_config("experiments:\n  - {name: a, model: identity}\n  - {name: a, model: identity}\n")
    with pytest.raises(ConfigError, match="did you mean 'mirror'"):
        parse_config("experiments:\n  - {name: a, model: identity, extra_data: [mirorr]}\n")
    with pytest.raises(ConfigError, match="data.input"):
        parse_config("data:\n  input: 6500_Q\n" + MINIMAL)
    with pytest.raises(ConfigError, match="at least one experiment"):
        parse_config("name: x\n")


def test_extra_data_accepts_bool_or_list():
    cfg = parse_config("experiments:\n  - {name: a, model: m, extra_data: true}\n  - {name: b, model: m, extra_data: [mirror]}\n")
    assert cfg.experiments[0].extra_data is True
    assert cfg.experiments[1].extra_data == ["mirror"]
    with pytest.raises(ConfigError, match="extra_data"):
        parse_config("experiments:\n  - {name: a, model: m, extra_data: 3}\n")


def test_overrides_are_typed_by_schema():
    cfg = parse_config(MINIMAL, overrides=["train.steps=7", "data.size=64", "name=2021", "data.root=/tmp/x"])
    assert cfg.train.steps == 7 and cfg.data.size == 64
    assert cfg.name == "2021", "string keys keep the raw text"
    assert cfg.data.root == "/tmp/x"
    cfg = parse_config(MINIMAL, overrides=["experiments.a.residual=true", "experiments.0.extra_data=[mirror]"])
    assert cfg.experiments[0].residual is True and cfg.experiments[0].extra_data == ["mirror"]
    cfg = parse_config(MINIMAL, overrides=["data.synthetic.train=5", "seeds=[1, 2]"])
    assert cfg.data.synthetic.train == 5 and cfg.seeds == [1, 2]


def test_override_errors():
    with pytest.raises(ConfigError, match="did you mean 'data.size'"):
        parse_config(MINIMAL, overrides=["data.sise=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_config(MINIMAL, overrides=["train.steps"])
    with pytest.raises(ConfigError, match="unknown entry of experiments 'b'"):
        parse_config(MINIMAL, overrides=["experiments.b.residual=true"])
    with pytest.raises(ConfigError, match="train.steps"):
        parse_config(MINIMAL, overrides=["train.steps=lots"])


def test_only_selects_experiments():
    text = "experiments:\n  - {name: a, model: m}\n  - {name: b, model: m}\n  - {name: c, model: m}\n"
    cfg = parse_config(text, only="a,c")
    assert [e.name for e in cfg.experiments] == ["a", "c"]
    with pytest.raises(ConfigError, match="did you mean 'b'"):
        parse_config(text, only="bb")


def test_round_trip_and_hash():
    cfg = parse_config(MINIMAL, overrides=["train.steps=3"])
    again = parse_config(to_yaml(cfg))
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(parse_config(MINIMAL)) != config_hash(cfg)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_schema_help_lists_every_key_with_help():
    keys = {row[0]: row for row in schema_help()}
    for key in ("name", "data.source", "data.root", "data.size", "data.input", "data.target", "data.synthetic.seed",
                "train.steps", "train.batch_size", "experiments[].extra_data", "experiments[].residual", "seeds", "plugins"):
        assert key in keys and keys[key][2], key


def test_a_repeated_seed_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"seeds: 3 repeated"):
        parse_config(MINIMAL, overrides=["seeds=[1, 3, 3]"])


def test_timing_runs_migrates_to_timing_rounds(caplog):
    with caplog.at_level("WARNING"):
        cfg = parse_config(MINIMAL, overrides=["eval.timing_runs=7"])
    assert cfg.eval.timing_rounds == 7 and cfg.eval.timing_runs is None
    assert "eval.timing_runs is deprecated" in caplog.text


def test_report_confidence_outside_0_5_to_1_is_an_error():
    with pytest.raises(ConfigError, match=r"report.confidence: expected a level in \[0.5, 1\)"):
        parse_config(MINIMAL, overrides=["report.confidence=1.5"])
