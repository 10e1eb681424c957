"""The command line: help, exit codes, clear errors without tracebacks, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.cli import main, make_parser

REPO = Path(__file__).resolve().parent.parent


def write_config(path: Path, data_root: Path, **extra) -> Path:
    cfg = {
        "name": "tiny",
        "data": {"source": "synthetic", "root": str(data_root), "size": 32,
                 "synthetic": {"train": 3, "val": 2, "test": 2, "seed": 1, "size": 32}},
        "train": {"steps": 1, "batch_size": 2},
        "experiments": [{"name": "ref", "model": "identity", "extra_data": True}],
    }
    cfg.update(extra)
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [[], ["run"], ["models"], ["data"], ["data", "synth"], ["data", "check"], ["config"]])
def test_every_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_parser().parse_args(command + ["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text.lower() or command == ["data"], text


def test_no_command_prints_help_and_exits_2(capsys):
    code, _, err = run_cli(capsys)
    assert code == 2 and "usage:" in err


def test_data_without_a_data_command_prints_the_data_help(capsys):
    code, _, err = run_cli(capsys, "data")
    assert code == 2 and err.startswith("usage: python -m bench data ") and "synth" in err and "check" in err


def test_help_imports_no_torch():
    script = (
        "import sys\n"
        "from bench.cli import make_parser\n"
        "for command in ([], ['run'], ['perf'], ['data', 'synth'], ['predict']):\n"
        "    try:\n"
        "        make_parser().parse_args(command + ['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "sys.stderr.write(' '.join(m for m in ('torch', 'pandas') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_perf_flags_left_out_keep_the_suites_defaults():
    from bench.cli.perf import perf_options
    from bench.perf.suite import PerfOptions

    suite = PerfOptions()
    default = perf_options(make_parser().parse_args(["perf"]))
    assert default.models == suite.models and "mbnet" in default.models
    assert default.sections == suite.sections
    chosen = perf_options(make_parser().parse_args(["perf", "--models", " pgar, ,mbnet", "--sections", "data", "--sizes", "64,32"]))
    assert chosen.models == ["pgar", "mbnet"] and chosen.sections == ["data"] and chosen.sizes == [64, 32]


def test_models_lists_identity(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("identity"))
    assert "0.00" in line and "Reference row" in line


def test_run_end_to_end_writes_run_folder(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "data")
    code, out, err = run_cli(capsys, "run", str(cfg), "--out", str(tmp_path / "runs"), "--no-progress")
    assert code == 0, err
    run_dir = tmp_path / "runs" / "tiny"
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["data"]["size"] == 32 and resolved["experiments"][0]["model"] == "identity"
    summary = json.loads((run_dir / "data.json").read_text())
    assert summary["source"] == "synthetic"
    assert set(summary["splits"]) == {"train:extra_input,mirror", "val", "test"}
    assert (tmp_path / "data" / "manifest.json").exists()


def test_set_and_only_reach_the_run(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "data")
    code, out, err = run_cli(capsys, "config", str(cfg), "--set", "data.size=16", "--set", "experiments.ref.extra_data=[mirror]")
    assert code == 0, err
    resolved = yaml.safe_load(out)
    assert resolved["data"]["size"] == 16 and resolved["experiments"][0]["extra_data"] == ["mirror"]
    code, out, _ = run_cli(capsys, "config", str(cfg), "--only", "ref")
    assert [e["name"] for e in yaml.safe_load(out)["experiments"]] == ["ref"]


@pytest.mark.parametrize(
    "argv_tail, expected",
    [
        (["--set", "data.sise=3"], "did you mean 'data.size'"),
        (["--set", "experiments.ref.model=identty"], "Did you mean 'identity'"),
        (["--set", "plugins=[no_such_plugin_module]"], "no_such_plugin_module"),
        (["--only", "reff"], "did you mean 'ref'"),
        (["--set", "data.source=vidit", "--set", "data.root=/nonexistent/vidit"], "/nonexistent/vidit"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, argv_tail, expected):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "data")
    code, out, err = run_cli(capsys, "run", str(cfg), "--out", str(tmp_path / "runs"), *argv_tail)
    assert code == 2
    assert expected in err  # no traceback in a real process: tests/test_cli_subprocess.py
    assert not (tmp_path / "runs" / "tiny" / "config.yaml").exists(), "nothing is written for a bad input"


def test_yaml_syntax_error_exits_2_with_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nexperiments:\n  - name: a\n    model: [identity\n")
    code, _, err = run_cli(capsys, "run", str(bad))
    assert code == 2 and "bad.yaml:" in err and "YAML syntax error" in err


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "data")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "run", str(cfg), "--out", str(blocker))
    assert code == 2 and "not writable" in err and str(blocker) in err


def test_data_synth_then_check_as_vidit(tmp_path, capsys):
    root = tmp_path / "synth"
    code, out, err = run_cli(capsys, "data", "synth", "--root", str(root), "--train", "2", "--val", "1", "--test", "1",
                             "--size", "16", "--workers", "1")
    assert code == 0, err
    assert (root / "track1_train" / "input" / "Image000.png").exists()
    cfg = write_config(tmp_path / "c.yaml", root)
    code, out, err = run_cli(capsys, "data", "check", str(cfg), "--set", "data.source=vidit", "--set", "data.size=16")
    assert code == 0, err
    assert "all splits valid" in out


def test_data_synth_refuses_bad_counts(tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", "synth", "--root", str(tmp_path / "s"), "--train", "0")
    assert code == 2 and "--train" in err


def test_a_shadowing_datasets_package_is_reported(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "shadow" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real_find_spec(name, *a) if name != "datasets" else
                        importlib.util.spec_from_file_location("datasets", fake / "__init__.py"))
    code, _, err = run_cli(capsys, "models")
    assert code == 2 and "shadows it" in err and str(fake.parent) in err
