"""Inputs someone else may have written (configs, run folders, output folders) are read without blowing up,
running code or writing where they should not: alias bombs, over-large configs, names that are paths, Markdown
that is HTML, a full disk, temporary files of a killed writer, folders others can write."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.harness.config import parse_config
from relight_base import atomic, run_folder
from relight_base.errors import ConfigError, OutputError
from relight_base.typed_config import read_yaml_file
from reports.errors import ReportError
from reports.render import build_report

FROZEN = Path(__file__).parent / "fixtures" / "run_folders" / "v1"
# 9 aliases per level, 8 levels: expanded, 9**8 = 43 million entries from a few hundred bytes
ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]\n" for k in range(1, 9))


def _config(tmp_path: Path, **changes) -> Path:
    cfg = {"name": "tiny", "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                                    "synthetic": {"train": 2, "val": 1, "test": 1, "size": 16}},
           "train": {"steps": 1, "batch_size": 1}, "eval": {"timing_rounds": 1, "timing_warmup": 0, "splits": ["val"]},
           "experiments": [{"name": "identity", "model": "identity"}], **changes}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_an_alias_bomb_is_refused_at_once_naming_its_line(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB + "experiments: [{name: a, model: identity}]\n")
    start = time.perf_counter()
    assert main(["config", str(path)]) == 2
    assert time.perf_counter() - start < 2
    err = capsys.readouterr().err
    assert f"{path}:1:5: YAML anchors and aliases" in err


def test_a_run_folders_config_with_an_alias_bomb_is_refused_by_the_report(tmp_path, capsys):
    folder = shutil.copytree(FROZEN, tmp_path / "run")
    (folder / "config.yaml").write_text(ALIAS_BOMB + (FROZEN / "config.yaml").read_text())
    start = time.perf_counter()
    assert main(["report", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert time.perf_counter() - start < 5
    assert "config.yaml:1:5: YAML anchors and aliases" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.html").exists()


def test_an_over_large_config_is_refused_before_it_is_read(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * 120_000 + "experiments: [{name: a, model: identity}]\n")
    assert main(["config", str(path)]) == 2
    assert "is too large for a config" in capsys.readouterr().err


def test_stored_yaml_files_are_sized_before_they_are_read(tmp_path, monkeypatch):
    """read_yaml_file (every YAML a run folder stores: protocol.yaml, tuned.yaml, config.yaml) refuses an
    over-large file from its size alone, and names the file for bytes that are not UTF-8 or a missing file."""
    big = tmp_path / "tuned.yaml"
    with big.open("wb") as handle:          # sparse: 2 MiB on paper, nothing written
        handle.truncate(2 << 20)
    opened = []
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: opened.append(self) or "")
    with pytest.raises(ConfigError, match=rf"{big}: {2 << 20} bytes is too large"):
        read_yaml_file(big)
    assert opened == []
    monkeypatch.undo()
    latin = tmp_path / "protocol.yaml"
    latin.write_bytes("keys: {caf\xe9: 1}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{latin}: cannot read it"):
        read_yaml_file(latin)
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'none.yaml'}: cannot read it"):
        read_yaml_file(tmp_path / "none.yaml")
    good = tmp_path / "config.yaml"
    good.write_text("a: [1, 2]\nb: {c: x}\n", encoding="utf-8")
    assert read_yaml_file(good) == {"a": [1, 2], "b": {"c": "x"}}


@pytest.mark.parametrize("name, expected", [("mbnet\n", "is not a valid name"), ("../up", "is not a valid name"),
                                            ("tables", "run folder's own files"), ("Report.html", "run folder's own")])
def test_experiment_names_are_matched_whole_and_may_not_be_run_folder_entries(name, expected):
    with pytest.raises(ConfigError, match=expected):
        parse_config(yaml.safe_dump({"experiments": [{"name": name, "model": "identity"}]}))


@pytest.mark.parametrize("column, value, expected", [("experiment", "../../elsewhere", "is not a valid name"),
                                                     ("seed", "../x", "seed '../x' is not a whole number"),
                                                     ("split", "../../x", "split '../../x' is not one of")])
def test_results_csv_keys_are_checked_before_they_become_paths(tmp_path, column, value, expected):
    folder = shutil.copytree(FROZEN, tmp_path / "run")
    results = pd.read_csv(folder / "results.csv")
    results[column] = results[column].astype(object)
    results.loc[3, column] = value
    results.to_csv(folder / "results.csv", index=False)
    with pytest.raises(ReportError, match=f"results.csv: row 5: .*{expected}"):
        build_report([folder])


def test_markdown_cells_show_html_as_text():
    from reports.writers import _md

    assert _md("<img src=x onerror=alert(1)> | & \\") == "&lt;img src=x onerror=alert(1)&gt; \\| &amp; \\\\"


def test_a_full_disk_is_an_output_error_naming_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    target.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OutputError, match=f"cannot write {target}: No space left on device"):
        atomic.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_a_full_disk_during_a_run_exits_2_naming_the_file(tmp_path, monkeypatch, capsys):
    config = _config(tmp_path)
    real_fsync = os.fsync

    def full_for_results(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".results.csv."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", full_for_results)
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "results.csv: No space left on device" in err and "internal error" not in err


def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_run(tmp_path, capsys):
    config = _config(tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    unit = run_folder.experiment_dir(run_dir, "identity", 0)
    (unit / "checkpoints").mkdir(parents=True)
    orphans = [run_dir / ".results.csv.k2j4h5g6.tmp", unit / ".model.pt.a1b2c3d4.tmp",
               unit / "checkpoints" / ".step_00000001.pt.zzzzzzzz.tmp"]
    for path in orphans:
        path.write_bytes(b"half a file")
    (run_dir / "notes.tmp").write_text("not ours")
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0, capsys.readouterr().err
    assert not any(p.exists() for p in orphans)
    assert (run_dir / "notes.tmp").exists(), "only the atomic writer's own temporary files are removed"


def test_a_world_writable_run_folder_without_the_sticky_bit_is_refused(tmp_path, capsys):
    config = _config(tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    run_dir.chmod(0o777)
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert "is writable by every user" in capsys.readouterr().err and not (run_dir / "config.yaml").exists()
    run_dir.chmod(0o777 | stat.S_ISVTX)  # like /tmp: others cannot replace this user's files
    atomic.refuse_world_writable(run_dir)
    run_dir.chmod(0o775)  # group-writable shared storage is fine
    atomic.refuse_world_writable(run_dir)
    run_dir.parent.chmod(0o777)  # the output root too: the run folder itself could be replaced
    assert main(["run", str(config), "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert f"{run_dir.parent} is writable by every user" in capsys.readouterr().err
    run_dir.parent.chmod(0o755)


def test_the_launch_folder_is_private_and_refused_when_someone_else_made_it(tmp_path):
    folder = atomic.ensure_private_dir(tmp_path / "run" / "launch")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    folder.chmod(0o777)
    atomic.ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, "an existing folder of ours is narrowed"
    if os.getuid() != 0:
        pytest.skip("giving the folder to another user needs root")
    os.chown(folder, 4321, 4321)
    with pytest.raises(OutputError, match="belongs to another user"):
        atomic.ensure_private_dir(folder)
