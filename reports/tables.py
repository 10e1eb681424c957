"""The paper's Tables 1-3, computed from ``results.csv`` rows, as data frames and as CSV, Markdown and LaTeX.

* Table 1 (ablation): the MBNet experiments, PSNR and SSIM on validation.
* Table 2 (comparison): every experiment, PSNR and SSIM on validation, parameters, GFLOPs, time per image.
* Table 3: SSIM and PSNR on validation; MPS, SSIM, LPIPS and PSNR on test.

Reference rows without parameters (``identity``: the input image itself) are shown but not ranked.

With several seeds a cell is ``mean ± std``.  The best measured value of each column is marked
(higher is better for PSNR, SSIM and MPS; lower for LPIPS, time, parameters and GFLOPs).  The
paper's published numbers are separate reference rows, never mixed into the measured ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PAPER_RESULTS = Path(__file__).with_name("paper_results.csv")
PAPER_NOTE = "reported in the paper (VIDIT, 1024²)"

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mps": True, "lpips": False, "time_per_image_s": False,
                    "time_p90_s": False, "params_m": False, "gflops": False}
DIGITS = {"psnr": 4, "ssim": 4, "lpips": 4, "mps": 4, "time_per_image_s": 4, "time_p90_s": 4, "params_m": 2, "gflops": 2}


@dataclass(frozen=True)
class Column:
    """One numeric column of a table: a metric on a split."""

    key: str      # e.g. "val_psnr"
    metric: str   # results.csv column
    split: str    # "val" / "test"
    title: str    # header text


@dataclass
class Table:
    """A table: measured rows (with per-cell mean/std/n), its columns and the paper's reference rows."""

    name: str
    title: str
    columns: list[Column]
    rows: pd.DataFrame        # index: experiment label; columns: <key>_mean, <key>_std, <key>_n, experiment, model
    reference: pd.DataFrame   # columns: label, <key>


TABLE_SPECS = {
    "table1": ("Table 1: ablation (validation)", [("val", "psnr", "PSNR"), ("val", "ssim", "SSIM")]),
    "table2": ("Table 2: comparison with the RGB-D salient-object networks (validation)", [
        ("val", "psnr", "PSNR"), ("val", "ssim", "SSIM"), ("val", "params_m", "Params (M)"),
        ("val", "gflops", "GFLOPs"), ("val", "time_per_image_s", "Time/img (s), median"),
        ("val", "time_p90_s", "Time/img (s), p90")]),
    "table3": ("Table 3: validation and test", [
        ("val", "ssim", "Val SSIM"), ("val", "psnr", "Val PSNR"), ("test", "mps", "Test MPS"),
        ("test", "ssim", "Test SSIM"), ("test", "lpips", "Test LPIPS"), ("test", "psnr", "Test PSNR")]),
}


def ablation_label(extra_data: str, residual: bool) -> str:
    """Table 1's row names: Baseline, + Extra data, + Extra data + Residual learning."""
    parts = ["Baseline"] if extra_data in ("none", "", None) and not residual else []
    if extra_data not in ("none", "", None):
        parts.append("+ Extra data" + ("" if extra_data == "extra_input,mirror" else f" ({extra_data})"))
    if residual:
        parts.append("+ Residual learning")
    return " ".join(parts)


def _experiments_for(name: str, results: pd.DataFrame) -> list[str]:
    order = list(dict.fromkeys(results["experiment"]))
    if name == "table1":
        return [e for e in order if (results.loc[results.experiment == e, "model"] == "mbnet").any()]
    return order


def build_table(name: str, results: pd.DataFrame) -> Table:
    """Aggregate ``results`` (rows of results.csv, possibly several seeds) into one of the paper's tables."""
    title, spec = TABLE_SPECS[name]
    columns = [Column(f"{split}_{metric}", metric, split, header) for split, metric, header in spec]
    done = results[results["status"] == "done"]
    records = []
    for exp in _experiments_for(name, results):
        sub = done[done.experiment == exp]
        first = results[results.experiment == exp].iloc[0]
        label = exp
        if name == "table1":
            label = f"{exp}: {ablation_label(str(first.extra_data), bool(first.residual))}"
        record = {"label": label, "experiment": exp, "model": first.model,
                  "status": "done" if len(sub) else str(first.status),
                  "ranked": bool(float(first.params_m or 0) > 0)}  # parameter-free reference rows are not ranked
        for col in columns:
            values = sub.loc[sub.split == col.split, col.metric].astype(float)
            values = values[values.notna()]
            record[f"{col.key}_n"] = len(values)
            record[f"{col.key}_mean"] = float(values.mean()) if len(values) else math.nan
            record[f"{col.key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        records.append(record)
    rows = pd.DataFrame(records)
    if not rows.empty:
        rows = rows.set_index("label", drop=False)
        rows["best"] = [",".join(c.key for c in columns if _is_best(rows, c, label)) for label in rows.index]
    return Table(name, title, columns, rows, paper_reference(name, columns))


def _is_best(rows: pd.DataFrame, col: Column, label: str) -> bool:
    values = rows.loc[rows["ranked"], f"{col.key}_mean"]
    if label not in values.index or values.notna().sum() < 2 or math.isnan(values[label]):
        return False
    target = values.max() if HIGHER_IS_BETTER.get(col.metric, True) else values.min()
    return values[label] == target


def paper_reference(name: str, columns: list[Column]) -> pd.DataFrame:
    """The paper's published rows for a table, one column per measured column (NaN where not published)."""
    paper = pd.read_csv(PAPER_RESULTS)
    paper = paper[paper.table == name]
    records = []
    for label in dict.fromkeys(paper.label):
        rows = paper[paper.label == label]
        record = {"label": label}
        for col in columns:
            hit = rows[rows.split == col.split]
            record[col.key] = float(hit[col.metric].iloc[0]) if len(hit) and col.metric in hit else math.nan
        records.append(record)
    return pd.DataFrame(records)


# --------------------------------------------------------------------------- formatting


def format_cell(mean: float, std: float, metric: str) -> str:
    """``19.3558`` or ``19.3558 ± 0.0123``; ``n/a`` for a missing value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    digits = DIGITS.get(metric, 4)
    text = f"{mean:.{digits}f}"
    if std is not None and not math.isnan(std):
        text += f" ± {std:.{digits}f}"
    return text


def cells(table: Table) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Measured rows as ``(label, [(cell text, is_best), ...])``."""
    out = []
    for label, row in table.rows.iterrows():
        best = set(str(row["best"]).split(",")) if row["best"] else set()
        out.append((label, [(format_cell(row[f"{c.key}_mean"], row[f"{c.key}_std"], c.metric), c.key in best)
                            for c in table.columns]))
    return out


def reference_cells(table: Table) -> list[tuple[str, list[str]]]:
    return [(r["label"], [format_cell(r[c.key], math.nan, c.metric) if not math.isnan(r[c.key]) else "–"
                          for c in table.columns]) for _, r in table.reference.iterrows()]


def to_csv(table: Table) -> str:
    """Numeric CSV: label, experiment, model, status, <key>_mean/_std/_n per column, best."""
    keep = ["label", "experiment", "model", "status"]
    for c in table.columns:
        keep += [f"{c.key}_mean", f"{c.key}_std", f"{c.key}_n"]
    frame = table.rows[keep + ["best"]] if not table.rows.empty else pd.DataFrame(columns=keep + ["best"])
    return frame.to_csv(index=False)


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table; the best values in bold; paper rows below a separator row."""
    header = ["Experiment"] + [c.title for c in table.columns]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in cells(table):
        lines.append("| " + " | ".join([_md(label)] + [f"**{t}**" if best else t for t, best in row]) + " |")
    if len(table.reference):
        lines.append("| *" + PAPER_NOTE + "* |" + " |" * len(table.columns))
        for label, row in reference_cells(table):
            lines.append("| " + " | ".join([f"*{_md(label)}*"] + row) + " |")
    return "\n".join(lines) + "\n"


def to_latex(table: Table) -> str:
    """A ``tabular`` (booktabs rules) ready to paste; best values in ``\\textbf``; paper rows after a midrule."""
    spec = "l" + "r" * len(table.columns)
    lines = ["% " + table.title, f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(["Experiment"] + [_tex(c.title) for c in table.columns]) + " \\\\", "\\midrule"]
    for label, row in cells(table):
        lines.append(" & ".join([_tex(label)] + [f"\\textbf{{{_tex(t)}}}" if best else _tex(t) for t, best in row]) + " \\\\")
    if len(table.reference):
        lines += ["\\midrule", f"\\multicolumn{{{len(table.columns) + 1}}}{{l}}{{\\emph{{{_tex(PAPER_NOTE)}}}}} \\\\"]
        for label, row in reference_cells(table):
            lines.append(" & ".join([f"\\emph{{{_tex(label)}}}"] + [_tex(t) for t in row]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))
    return out.replace("±", r"$\pm$").replace("²", r"$^2$").replace("–", "--")
