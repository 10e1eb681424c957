"""A table's files: CSV (numbers at full precision), its JSON column guide, Markdown and LaTeX.

Markdown and LaTeX show every block of :func:`reports.formats.blocks` (the table, its differences at the image
and seed levels, their verdicts, each seed's means) followed by the caption: what the numbers are, how they were scored, what the marks mean.
"""

from __future__ import annotations

from reports.deltas import DeltaSet
from reports.formats import SIGNIFICANT, TIED_TEXT, Block, Cell, blocks
from reports.tables import EXACT, PAPER_NOTE, TIME, Table

IDENTITY_COLUMNS = ["label", "experiment", "model", "status", "extra", "ranked", "seeds", "tuning"]
QUALITY_SUFFIXES = ["_mean", "_ci_low", "_ci_high", "_n", "_ci_note", "_seed_mean", "_seed_std", "_seeds",
                    "_seed_ci_low", "_seed_ci_high", "_seed_ci_note", "_seed_values"]
DELTA_SUFFIXES = ["", "_ci_low", "_ci_high", "_n", "_p", "_excludes_0", "_note", "_seed", "_seed_ci_low",
                  "_seed_ci_high", "_seed_p", "_seed_p_holm", "_seed_test", "_seed_n_row", "_seed_n_ref", "_seed_note",
                  "_p_better", "_verdict"]
COUNT_COLUMNS = ["params_m", "gflops"]
TIME_COLUMNS = ["time_median_s", "time_q1_s", "time_q3_s", "time_p90_s", "timing_phase", "timing_size",
                "timing_threads", "timing_device"]


def csv_columns(table: Table) -> list[str]:
    """The CSV's columns, in order."""
    columns = list(IDENTITY_COLUMNS)
    for col in table.quality_columns:
        columns += [col.key + s for s in QUALITY_SUFFIXES]
    for delta in table.deltas:
        for col in table.quality_columns:
            columns += [f"{delta.prefix}_{col.key}{s}" for s in DELTA_SUFFIXES]
    if any(c.kind == EXACT for c in table.columns):
        columns += COUNT_COLUMNS
    if any(c.kind == TIME for c in table.columns):
        columns += TIME_COLUMNS
    return columns + ["best", "tied"]


def to_csv(table: Table) -> str:
    """Numeric CSV, one row per table row; see :func:`column_guide` for every column's meaning."""
    return table.frame.reindex(columns=csv_columns(table)).to_csv(index=False)


def _delta_words(delta: DeltaSet) -> str:
    compared = "every trained or published row" if delta.ranked_only else "every row"
    return f"{compared} minus {delta.reference}"


def column_guide(table: Table, confidence: str) -> dict[str, str]:
    """``{CSV column: meaning}`` for the table's JSON companion (``<key>`` patterns spelled out per column)."""
    guide = {"label": "row name as shown", "experiment": "experiment (or --extra row) name", "model": "model",
             "status": "done / failed / ...", "extra": "true: scored from published images (bench report --extra)",
             "ranked": "false: not ranked (parameter-free rows such as identity)",
             "seeds": "finished seeds of the row", "best": "columns where the row is significantly best",
             "tuning": "the row's own training settings and the bench tune budget that chose them, or not tuned",
             "tied": "columns where the row shares the lead (not significantly different from the leader)"}
    for col in table.quality_columns:
        k = col.key
        guide |= {f"{k}_mean": f"{col.title} ({col.split}): mean over images, each image averaged over seeds first",
                  f"{k}_ci_low": f"lower bound of its {confidence} % bootstrap CI over images (image level: the "
                                 f"test-set uncertainty of these trained weights)",
                  f"{k}_ci_high": f"upper bound of its {confidence} % bootstrap CI over images (image level)",
                  f"{k}_n": "images the mean and CI are over", f"{k}_ci_note": "why there is no CI (empty if there is)",
                  f"{k}_seed_mean": "mean over seeds of each seed's mean over images (results.csv)",
                  f"{k}_seed_std": "std over seeds of each seed's mean (ddof 1; not a CI)",
                  f"{k}_seeds": "seeds with a value",
                  f"{k}_seed_ci_low": f"lower bound of the {confidence} % t-interval of the mean of the seeds' means "
                                      f"(seed level; from 3 seeds)",
                  f"{k}_seed_ci_high": "upper bound of that t-interval",
                  f"{k}_seed_ci_note": "why there is no seed-level interval (empty if there is)",
                  f"{k}_seed_values": "each seed's mean over images, seed=value separated by ;"}
    for delta in table.deltas:
        for col in table.quality_columns:
            name = f"{delta.prefix}_{col.key}"
            guide |= {name: f"{col.title} ({col.split}): mean per-image difference, {_delta_words(delta)}",
                      f"{name}_ci_low": f"lower bound of its {confidence} % bootstrap CI",
                      f"{name}_ci_high": f"upper bound of its {confidence} % bootstrap CI",
                      f"{name}_n": "images both rows scored", f"{name}_p": "paired permutation p-value (two-sided)",
                      f"{name}_excludes_0": "true when the image-level CI excludes 0",
                      f"{name}_note": "reference / not compared / why there is no CI",
                      f"{name}_seed": "seed level: mean of the row's seed means minus the reference's",
                      f"{name}_seed_ci_low": f"lower bound of its {confidence} % t-interval (unadjusted; from 3 seeds "
                                             f"in both rows)",
                      f"{name}_seed_ci_high": "upper bound of that t-interval",
                      f"{name}_seed_p": "two-sided p of the seed-level t-test (unadjusted)",
                      f"{name}_seed_p_holm": "that p Holm-adjusted over every seed-level Δ of this table",
                      f"{name}_seed_test": "welch (unpaired, ttest_ind equal_var=False) or paired (ttest_rel: same "
                                           "model and training pairs, same seeds)",
                      f"{name}_seed_n_row": "seeds of the row", f"{name}_seed_n_ref": "seeds of the reference",
                      f"{name}_seed_note": "why there is no seed-level test (empty if there is)",
                      f"{name}_p_better": "P(a seed of the row is better than a seed of the reference) = U / (n_row "
                                          "n_ref), descriptive, no interval",
                      f"{name}_verdict": "holds across seeds / these weights only / tied"}
    guide |= {"params_m": "parameters in millions (seed-invariant: shown once)",
              "gflops": "GFLOPs of one forward pass at the timing size (seed-invariant)",
              "time_median_s": "median seconds per image over the timing phase's rounds",
              "time_q1_s": "first quartile of those times", "time_q3_s": "third quartile",
              "time_p90_s": "90th percentile", "timing_phase": "id of the timing phase (empty: an older run)",
              "timing_size": "side length of the timing input", "timing_threads": "CPU threads pinned for timing",
              "timing_device": "device the row was timed on"}
    return {name: guide[name] for name in csv_columns(table) if name in guide}


MARKDOWN_ESCAPES = {"\\": "\\\\", "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def _md(text: str) -> str:
    """``text`` safe inside a Markdown table cell: a ``|`` cannot split the cell, and ``<``/``>``/``&`` show as
    characters, never as HTML (a row label comes from an experiment name someone else may have chosen)."""
    return "".join(MARKDOWN_ESCAPES.get(ch, ch) for ch in str(text))


def _md_cell(cell: Cell) -> str:
    text = _md(cell.text) + (f" {SIGNIFICANT}" if cell.significant else "")
    text = f"**{text}**" if cell.mark == "best" else text + (TIED_TEXT if cell.mark == "tied" else "")
    return text + (f"; {_md(cell.detail)}" if cell.detail else "")


def _md_block(block: Block) -> list[str]:
    lines = [f"**{_md(block.title)}**", "", "| " + " | ".join(_md(h) for h in block.header) + " |",
             "|" + "---|" * len(block.header)]
    for label, cells in block.rows:
        lines.append("| " + " | ".join([_md(label)] + [_md_cell(c) for c in cells]) + " |")
    if block.reference:
        lines.append("| *" + (block.reference_note or PAPER_NOTE) + "* |" + " |" * (len(block.header) - 1))
        for label, cells in block.reference:
            lines.append("| " + " | ".join([f"*{_md(label)}*"] + [_md(c) for c in cells]) + " |")
    return lines + [""]


def to_markdown(table: Table, phases: dict[str, str] | None = None) -> str:
    """GitHub-flavoured Markdown: every block, then the caption and notes as a list."""
    lines = []
    for block in blocks(table, phases):
        lines += _md_block(block)
    lines += [f"- {_md(line)}" for line in [*table.caption, *table.notes]]
    return "\n".join(lines).rstrip("\n") + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_TEX_SYMBOLS = {"±": r"$\pm$", "²": r"$^2$", "–": "--", "−": "$-$", "Δ": r"$\Delta$", "†": r"\textsuperscript{\dag}",
                "×": r"$\times$"}


def _tex(text: str) -> str:
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))
    for symbol, command in _TEX_SYMBOLS.items():
        out = out.replace(symbol, command)
    return out


def _tex_cell(cell: Cell) -> str:
    text = _tex(cell.text) + (_tex(SIGNIFICANT) if cell.significant else "")
    text = f"\\textbf{{{text}}}" if cell.mark == "best" else text + (_tex(TIED_TEXT) if cell.mark == "tied" else "")
    return text + (f"; {_tex(cell.detail)}" if cell.detail else "")


def _tex_block(block: Block) -> list[str]:
    spec = "l" + "r" * (len(block.header) - 1)
    lines = ["% " + _tex(block.title), f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(_tex(h) for h in block.header) + " \\\\", "\\midrule"]
    for label, cells in block.rows:
        lines.append(" & ".join([_tex(label)] + [_tex_cell(c) for c in cells]) + " \\\\")
    if block.reference:
        lines += ["\\midrule", f"\\multicolumn{{{len(block.header)}}}{{l}}{{\\emph{{{_tex(block.reference_note or PAPER_NOTE)}}}}} \\\\"]
        for label, cells in block.reference:
            lines.append(" & ".join([f"\\emph{{{_tex(label)}}}"] + [_tex(c) for c in cells]) + " \\\\")
    return lines + ["\\bottomrule", "\\end{tabular}", ""]


def to_latex(table: Table, phases: dict[str, str] | None = None) -> str:
    """One booktabs ``tabular`` per block, ready to paste; the caption and notes as ``%`` comments above."""
    lines = ["% " + _tex(line) for line in [*table.caption, *table.notes]]
    for block in blocks(table, phases):
        lines += _tex_block(block)
    return "\n".join(lines).rstrip("\n") + "\n"

