"""The words around a report's numbers: where they came from (provenance) and what qualifies them (warnings)."""

from __future__ import annotations

import pandas as pd

from relight_base.results import weights_words
from reports.loading import LoadedRun
from reports.protocol import describe_changes, load_protocol, protocol_changes, rescorings_of


def provenance(runs: list[LoadedRun]) -> list[tuple[str, str]]:
    """The provenance block: what the numbers are and where they came from."""
    rows: list[tuple[str, str]] = []
    for run in runs:
        meta, data, cfg = run.meta, run.data, run.config
        git = meta.get("git", {})
        commit = git.get("commit") or "unknown"
        dirty = {True: " (uncommitted changes)", False: "", None: ""}[git.get("dirty")]
        soft = meta.get("software", {})
        mach = meta.get("machine", {})
        train = meta.get("train", {})
        res = run.results
        prefix = f"{run.path.name}: " if len(runs) > 1 else ""
        rows += [
            (prefix + "results written", str(meta.get("written", "unknown"))),
            (prefix + "code", f"git {commit[:12]}{dirty}"),
            (prefix + "config hash", str(meta.get("config_hash", "unknown"))),
            (prefix + "data", f"{data.get('source')} ({'built-in synthetic VIDIT-format scenes' if data.get('source') == 'synthetic' else 'VIDIT on disk'}), "
                              f"{data.get('input')} → {data.get('target')}, {data.get('size')}×{data.get('size')} px"),
            (prefix + "training", f"{_steps_text(res)}; batch {train.get('batch_size')}, lr {train.get('lr')}; "
                                  f"seeds {', '.join(map(str, cfg.get('seeds', [])))}"),
            (prefix + "device", f"{mach.get('device_name', '?')} ({mach.get('device', '?')}), {mach.get('cpu_threads', '?')} CPU threads"),
            (prefix + "software", ", ".join(f"{k} {v}" for k, v in soft.items())),
            (prefix + "validation during training", _validation_text(cfg.get("train", {}), data)),
            (prefix + "weights scored", _scored_weights_text(res)),
            (prefix + "backbone weights", "; ".join(sorted(set(map(str, res["weights"].dropna()))))),
            (prefix + "perceptual loss", "; ".join(sorted(set(map(str, res["perceptual_loss"].dropna()))))),
            (prefix + "LPIPS", str(meta.get("lpips", "n/a"))),
            (prefix + "timing", str(meta.get("timing", ""))),
        ]
    return rows


def _validation_text(train: dict, data: dict) -> str:
    """``train.val_every`` in words: how often, on how many held-out training scenes, which metric picks best.pt."""
    every = train.get("val_every") or 0
    held = (data.get("splits") or {}).get("holdout") or {}
    if not every:
        return "none (train.val_every is 0)"
    return (f"every {every} steps and at the last, PSNR/SSIM on {held.get('scenes', '?')} training scenes held out of "
            f"training (never the reported splits); best.pt kept by held-out {train.get('best_metric', 'psnr')}")


def _scored_weights_text(results: pd.DataFrame) -> str:
    """Which weights the tables' rows were scored with (``eval_weights`` of results.csv), by experiment."""
    groups: dict[str, list[str]] = {}
    for exp, kind in results.drop_duplicates("experiment")[["experiment", "eval_weights"]].itertuples(index=False):
        groups.setdefault(weights_words(str(kind)), []).append(str(exp))
    return "; ".join(f"{text}: {', '.join(exps)}" for text, exps in groups.items())


def _steps_text(results: pd.DataFrame) -> str:
    trained = sorted(set(int(s) for s in results["steps"].dropna() if s > 0))
    untrained = sorted(set(results.loc[results["steps"].fillna(0) == 0, "experiment"]))
    text = f"{', '.join(map(str, trained))} training steps" if trained else "no training"
    return text + (f" (not trained: {', '.join(untrained)})" if untrained else "")


def honesty_warnings(results: pd.DataFrame) -> list[str]:
    """Statements the page must show next to the numbers they qualify."""
    out = []
    if results["lpips"].isna().all():
        reason = str(results["lpips_weights"].dropna().iloc[0]) if results["lpips_weights"].notna().any() else "unknown"
        out.append(f"LPIPS and MPS are n/a: {reason}. They are never computed with a random AlexNet.")
    random_backbones = sorted(set(results.loc[results["weights"].astype(str).str.contains("random init"), "experiment"]))
    if random_backbones:
        out.append("Backbones without ImageNet weights (random initialisation): " + ", ".join(random_backbones) + ".")
    failed = sorted(set(results.loc[results["status"] == "failed", "experiment"]))
    if failed:
        out.append("Failed experiments (no numbers): " + ", ".join(failed) + ".")
    unfinished = results[~results["status"].isin(["done", "failed"])]
    if len(unfinished):
        seen = unfinished.drop_duplicates(["experiment", "seed"])
        out.append("Units that did not finish (no numbers; `bench status` and the message column say why): " + ", ".join(
            f"{r.experiment} seed {r.seed} ({r.status})" for r in seen.itertuples()) + ".")
    if (results["data_source"] == "synthetic").all():
        out.append("All numbers are on the built-in synthetic data, not on VIDIT; the paper's rows are on VIDIT at 1024².")
    return out


def protocol_rows(runs: list[LoadedRun]) -> tuple[list[tuple[str, str]], str]:
    """Provenance rows on each run's protocol and rescorings, and the banner of a report whose scoring differs
    from a protocol fixed when its run started (``""`` when none differs).

    The banner reads ``rescored after the run: eval.weights last → best`` (prefixed by the run folder's name
    when several runs are merged).  A folder without ``protocol.yaml`` was written before protocols were
    recorded: the provenance says so, and no banner can be given.
    """
    rows: list[tuple[str, str]] = []
    banners: list[str] = []
    for run in runs:
        prefix = f"{run.path.name}: " if len(runs) > 1 else ""
        protocol = load_protocol(run.path)
        if protocol is None:
            rows.append((prefix + "protocol", "not recorded (a run folder written before protocol.yaml existed): "
                                              "whether its scoring was chosen before the run cannot be told"))
        else:
            changes = describe_changes(protocol_changes(protocol, run.config))
            rows.append((prefix + "protocol", f"protocol.yaml, fixed when the run started ({protocol.get('written', '?')}); "
                                              + (changes if changes else "these tables are scored by it")))
            if changes:
                banners.append(prefix + changes)
        history = [record["text"] for record in rescorings_of(run.meta)]
        if history:
            rows.append((prefix + "rescorings", "; ".join(history)))
    return rows, " | ".join(banners)
