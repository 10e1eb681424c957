"""Bad input through ``python -m bench`` in a real process: exit status 2, one paragraph naming the problem, and no
traceback on stderr (an in-process call cannot show that: only the real entry point prints tracebacks).

One case per command family; ``--debug`` shows the traceback when asked.  Each case starts a Python process, so
the file is in the slow set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.data_helpers import make_tree

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FROZEN_V0 = REPO / "tests" / "fixtures" / "run_folders" / "v0"


def _bench(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _config(tmp_path: Path, **changes) -> Path:
    cfg = {"name": "tiny", "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                                    "synthetic": {"train": 2, "val": 1, "test": 1, "size": 16}},
           "experiments": [{"name": "a", "model": "identity"}], **changes}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _vidit_with_a_corrupt_png(tmp_path: Path) -> Path:
    make_tree(tmp_path / "vidit")
    (tmp_path / "vidit" / "track1_train" / "input" / "Image000.png").write_bytes(b"\x89PNG garbage")
    return _config(tmp_path, data={"source": "vidit", "root": str(tmp_path / "vidit"), "size": 16})


def _newer_run_folder(tmp_path: Path) -> Path:
    folder = shutil.copytree(FROZEN_V0, tmp_path / "newer")
    meta = json.loads((folder / "results.json").read_text())
    (folder / "results.json").write_text(json.dumps({**meta, "schema_version": 99}))
    return folder


# case -> (arguments from tmp_path, fragment the message must hold)
CASES = {
    "run_unknown_model": (lambda t: ["run", str(_config(t, experiments=[{"name": "a", "model": "nosuchmodel"}]))],
                          "unknown model 'nosuchmodel'"),
    "run_yaml_syntax": (lambda t: ["run", str(_write(t / "bad.yaml", "experiments:\n  - name: a\n    model: [x\n"))],
                        "YAML syntax error"),
    "config_unknown_key": (lambda t: ["config", str(_config(t)), "--set", "data.sise=3"], "did you mean 'data.size'"),
    "data_check_corrupt_png": (lambda t: ["data", "check", str(_vidit_with_a_corrupt_png(t))], "Image000.png"),
    "score_missing_folder": (lambda t: ["score", str(t / "nothing"), str(t / "gt")], "prediction folder"),
    "report_missing_folder": (lambda t: ["report", str(t / "nothing")], "run folder does not exist"),
    "report_newer_schema": (lambda t: ["report", str(_newer_run_folder(t)), "--out", str(t / "out")],
                            "newer than this relight-bench reads"),
    "predict_without_weights": (lambda t: ["predict", str(shutil.copytree(FROZEN_V0, t / "run")), "--experiment", "pgar",
                                           "--image", str(t / "x.png"), "--depth", str(t / "x.npy"),
                                           "--out", str(t / "o.png")], "pgar"),
    "status_not_a_run": (lambda t: ["status", str(t)], "is not a run folder"),
    "models_missing_plugin": (lambda t: ["models", "--plugin", "no_such_plugin_module"], "no_such_plugin_module"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_a_message_and_no_traceback(case, tmp_path):
    argv, expected = CASES[case]
    proc = _bench(*argv(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert expected in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_debug_shows_the_traceback(tmp_path):
    proc = _bench("--debug", "run", str(_config(tmp_path, experiments=[{"name": "a", "model": "nosuchmodel"}])),
                  cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
