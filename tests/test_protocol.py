"""The protocol fixed before the run: protocol.yaml written once, rescorings recorded once each, the reader's view."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
import yaml

from relight_base import run_folder
from relight_base.results import SCHEMA_VERSION
from reports.errors import ReportError
from reports.protocol import (Change, compare_keys, describe_changes, load_protocol, protocol_changes, protocol_keys,
                              rescorings_of)
from tests.data_helpers import one_conv_plugin

BEST = [{"key": "eval.weights", "protocol": "last", "now": "best"}]


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    """A one-conv net that validates on one held-out scene of four, and the identity: a run of seconds."""
    (tmp_path / "protocol_plugin.py").write_text(one_conv_plugin("protocol_test_conv"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"name": "p", "plugins": ["protocol_plugin"],
           "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                    "synthetic": {"train": 4, "val": 2, "test": 1, "seed": 0, "size": 16}},
           "train": {"steps": 2, "batch_size": 2, "val_every": 1, "holdout": 1},
           "eval": {"timing_rounds": 1, "timing_warmup": 0, "splits": ["val"]},
           "experiments": [{"name": "conv", "model": "protocol_test_conv", "residual": True},
                           {"name": "identity", "model": "identity"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def _cfg(root: Path, *overrides: str, only: str | None = None):
    from bench.harness.config import load_config

    return load_config(root / "c.yaml", list(overrides), only)


def _run(root: Path, *overrides: str, only: str | None = None):
    from bench.harness.run import run_benchmark

    return run_benchmark(_cfg(root, *overrides, only=only), root / "runs", progress=False)


def _header(root: Path, *overrides: str, only: str | None = None):
    """Prepare (no training) and write the run header, as every start of a run does; the prepared run."""
    from bench.harness.prepare import prepare, write_run_header

    prepared = prepare(_cfg(root, *overrides, only=only), root / "runs", progress=False)
    write_run_header(prepared)
    return prepared


def _meta(run_dir: Path) -> dict:
    return json.loads((run_dir / run_folder.RESULTS_JSON).read_text())


def _rescorings(run_dir: Path) -> list:
    path = run_dir / run_folder.RESULTS_JSON
    return json.loads(path.read_text()).get("rescorings", []) if path.is_file() else []


def test_a_rescoring_leaves_the_protocol_as_it_was_and_is_recorded_once(workspace, monkeypatch):
    _run(workspace)
    run_dir = workspace / "runs" / "p"
    text = (run_dir / run_folder.PROTOCOL_YAML).read_text()
    assert text.startswith("# protocol.yaml:") and "never overwritten" in text
    fixed = yaml.safe_load(text)
    assert fixed["config_hash"] == json.loads((run_dir / run_folder.DATA_JSON).read_text())["config_hash"]
    assert fixed["written"] and list(fixed["keys"]) == list(protocol_keys())
    keys = fixed["keys"]
    assert (keys["eval.weights"], keys["eval.splits"], keys["eval.ssim"], keys["eval.quantize"]) == \
        ("last", ["val"], "gaussian", True)
    assert (keys["train.val_every"], keys["train.holdout"], keys["train.best_metric"]) == (1, 1, "psnr")
    assert (keys["seeds"], keys["experiments"]) == ([0], ["conv", "identity"])
    assert (keys["report.table1_reference"], keys["report.confidence"], keys["report.bootstrap_resamples"]) == \
        ("baseline", 0.95, 2000)
    assert (_meta(run_dir)["protocol"], _meta(run_dir)["rescorings"]) == ("protocol.yaml", [])
    before = (run_dir / run_folder.PROTOCOL_YAML).read_bytes()

    from bench.harness import train

    monkeypatch.setattr(train, "train_model", lambda *a, **k: pytest.fail("a rescoring must not train"))
    rescored = _run(workspace, "eval.weights=best").results
    assert set(rescored["status"]) == {"done"} and set(rescored["eval_weights"]) == {"best", "untrained"}
    assert (run_dir / run_folder.PROTOCOL_YAML).read_bytes() == before
    config = yaml.safe_load((run_dir / run_folder.CONFIG_YAML).read_text())
    assert config["eval"]["weights"] == "best"
    records = _rescorings(run_dir)
    assert len(records) == 1 and records[0]["changes"] == BEST and records[0]["at"]

    _run(workspace, "eval.weights=best")  # the same rescoring command again
    assert _rescorings(run_dir) == records, "a rerun of the same rescoring adds no record"
    assert (run_dir / run_folder.PROTOCOL_YAML).read_bytes() == before

    changes = protocol_changes(load_protocol(run_dir), config)
    assert changes == [Change("eval.weights", "last", "best")]
    assert describe_changes(changes) == "rescored after the run: eval.weights last → best"
    [seen] = rescorings_of(_meta(run_dir))
    assert seen["ok"] and seen["changes"] == changes and seen["text"].endswith("eval.weights last → best")

    from reports.render import render_report

    page = render_report([run_dir], workspace / "report").read_text()
    top = page[page.index("<h1>"):page.index('<section id="provenance">')]
    assert "rescored after the run: eval.weights last → best" in top, "the report says so at its top"
    for name in ("table1", "table2", "table3", "table4"):
        guide = json.loads((workspace / "report" / "tables" / f"{name}.json").read_text())
        assert any("rescored after the run: eval.weights last → best" in line for line in guide["caption"]), name
        assert "eval.weights last → best" in (workspace / "report" / "tables" / f"{name}.md").read_text()


def test_a_report_scored_by_its_protocol_has_no_banner(workspace):
    _run(workspace)
    from reports.render import render_report

    page = render_report([workspace / "runs" / "p"], workspace / "report").read_text()
    assert "rescored after the run" not in page and 'id="rescored"' not in page
    assert "these tables are scored by it" in page


def test_later_results_writes_keep_the_rescorings(workspace):
    from bench.harness.shared_results import rebuild_results

    prepared = _header(workspace)
    run_dir = prepared.run_dir
    assert not (run_dir / run_folder.RESULTS_JSON).exists(), "no change, no record: results.json waits for results"
    rescored = _header(workspace, "eval.weights=best")
    assert _meta(run_dir) == {"schema_version": SCHEMA_VERSION, "rescorings": _meta(run_dir)["rescorings"]}
    assert _rescorings(run_dir)[0]["changes"] == BEST
    rebuild_results(rescored, rows=[])
    rebuild_results(rescored, rows=[])
    meta = _meta(run_dir)
    assert meta["rescorings"][0]["changes"] == BEST and len(meta["rescorings"]) == 1
    assert meta["protocol"] == "protocol.yaml" and "metric_conventions" in meta


def test_only_a_selection_of_experiments_is_no_rescoring_and_a_return_to_the_protocol_is_recorded(workspace):
    run_dir = _header(workspace).run_dir
    _header(workspace)  # a launcher's unit process writes the same header again
    _header(workspace, only="identity")
    _header(workspace, only="conv,identity")
    assert _rescorings(run_dir) == []
    _header(workspace, "eval.weights=best", only="conv")
    _header(workspace, "eval.weights=best")  # the same rescoring, all experiments
    assert [r["changes"] for r in _rescorings(run_dir)] == [BEST]
    _header(workspace)
    _header(workspace)
    assert [r["changes"] for r in _rescorings(run_dir)] == [BEST, []], "back to the protocol: one empty record"
    assert [r["text"].split(": ", 1)[1] for r in rescorings_of(_meta(run_dir))] == \
        ["eval.weights last → best", "scored by the protocol again"]


def test_concurrent_starts_and_results_writes_record_one_rescoring(workspace):
    from bench.harness.prepare import write_run_header
    from bench.harness.shared_results import rebuild_results

    _header(workspace)
    rescored = _header(workspace, "report.confidence=0.9")
    (rescored.run_dir / run_folder.RESULTS_JSON).unlink()  # every writer below starts from nothing
    work = [lambda: write_run_header(rescored), lambda: rebuild_results(rescored, rows=[])] * 3
    threads = [threading.Thread(target=job) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["changes"] for r in _rescorings(rescored.run_dir)] == \
        [[{"key": "report.confidence", "protocol": 0.95, "now": 0.9}]]


def test_data_json_lists_the_held_out_scenes_none_of_the_experiments_trained_on(workspace):
    from datasets.holdout import held_out_scenes

    prepared = _header(workspace)
    held = json.loads((prepared.run_dir / run_folder.DATA_JSON).read_text())["splits"]["holdout"]["scene_ids"]
    on_disk = sorted(p.stem for p in (prepared.data_root / "track1_train" / "input").glob("*.png"))
    trained = {p.scene_id for key, ds in prepared.splits.items() if key.startswith("train:") for p in ds.pairs}
    assert len(on_disk) == 4 and held == sorted(set(on_disk) - trained) == held_out_scenes(on_disk, 1)
    assert len(held) == 1


def test_an_older_run_folder_takes_its_protocol_from_its_config_yaml(workspace):
    run_dir = _header(workspace).run_dir
    (run_dir / run_folder.PROTOCOL_YAML).unlink()  # as a folder of a version before protocols
    first_hash = json.loads((run_dir / run_folder.DATA_JSON).read_text())["config_hash"]
    _header(workspace, "eval.weights=best")
    fixed = yaml.safe_load((run_dir / run_folder.PROTOCOL_YAML).read_text())
    assert fixed["keys"]["eval.weights"] == "last" and "predates" in fixed["fixed_from"]
    assert fixed["config_hash"] == first_hash, "the hash of the config it was fixed from"
    assert [r["changes"] for r in _rescorings(run_dir)] == [BEST]


def test_a_malformed_protocol_stops_a_start_and_a_report_naming_the_file(workspace):
    from relight_base.errors import BenchError

    run_dir = _header(workspace).run_dir
    path = run_dir / run_folder.PROTOCOL_YAML
    path.write_text("keys: [eval.weights, last]\n")
    with pytest.raises(ReportError, match=re.escape(f"{path}: expected a mapping with 'keys:'")):
        load_protocol(run_dir)
    with pytest.raises(BenchError, match="protocol.yaml.*never rewritten"):
        _header(workspace)
    path.write_text("keys: {eval.weights: [\n")
    with pytest.raises(ReportError, match=re.escape(str(path))):
        load_protocol(run_dir)
    path.write_text("keys: {}\n" + "# padding\n" * 120_000)
    with pytest.raises(ReportError, match=re.escape(str(path)) + ": .*too large"):
        load_protocol(run_dir)


def test_a_folder_without_protocol_yaml_has_none(tmp_path):
    assert load_protocol(tmp_path) is None


def test_changes_compare_the_protocol_with_the_stored_config():
    protocol = {"keys": {"eval.weights": "last", "eval.splits": ["val", "test"], "seeds": [0, 1],
                         "experiments": ["baseline", "mbnet", "unet"], "report.confidence": 0.95,
                         "report.table1_reference": "baseline"}}
    same = {"eval": {"weights": "last", "splits": ["val", "test"]}, "seeds": [0, 1],
            "experiments": [{"name": "baseline"}, {"name": "unet"}]}  # --only baseline,unet; no report: section
    assert protocol_changes(protocol, same) == [] and describe_changes([]) == ""
    other = {"eval": {"weights": "best", "splits": ["val"]}, "seeds": [0, 1],
             "experiments": [{"name": "unet"}, {"name": "baseline"}],
             "report": {"confidence": 0.9, "table1_reference": None}}
    changes = protocol_changes(protocol, other)
    assert [c.key for c in changes] == ["eval.weights", "eval.splits", "experiments", "report.table1_reference",
                                        "report.confidence"], "in the protocol's order"
    assert describe_changes(changes) == (
        "rescored after the run: eval.weights last → best; eval.splits [val, test] → [val]; "
        "experiments [baseline, mbnet, unet] → [unet, baseline]; report.table1_reference baseline → null; "
        "report.confidence 0.95 → 0.9")
    assert protocol_changes(protocol, {}) == [], "an older config without these keys: nothing to compare"
    assert compare_keys({"experiments": ["a"]}, {"experiments": ["a", "b"]}) == [Change("experiments", ["a"],
                                                                                           ["a", "b"])]
    assert compare_keys({}, {"report.min_seeds": 3})[0].words() == "report.min_seeds 5 → 3", \
        "a report key the protocol lacks had its default"


def test_rescoring_records_are_read_defensively():
    assert rescorings_of({}) == [] and rescorings_of("not a dict") == []
    [bad] = rescorings_of({"rescorings": "eval.weights"})
    assert not bad["ok"] and "not a list" in bad["text"] and "ignored" in bad["text"]
    records = rescorings_of({"rescorings": [{"at": "t1", "changes": BEST}, 7, {"at": "t2", "changes": [{"key": 1}]},
                                            {"at": "t3", "changes": []}]})
    assert [r["ok"] for r in records] == [True, False, False, True]
    assert records[0]["text"] == "t1: eval.weights last → best" and records[3]["changes"] == []
    assert "record 2" in records[1]["text"] and "record 3" in records[2]["text"]
