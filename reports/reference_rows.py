"""Reference rows beside the measured ones: the paper's published numbers and the NTIRE 2021 Track 1 leaderboard.

They are never mixed into the measured rows: each table shows them in a separate, labelled block.  ``columns``
are the table's :class:`reports.tables.Column` objects (their ``key``, ``metric`` and ``split``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

PAPER_RESULTS = Path(__file__).with_name("paper_results.csv")
PAPER_NOTE = "reported in the paper (VIDIT, 1024²)"
LEADERBOARD = Path(__file__).with_name("ntire21_track1_leaderboard.csv")
LEADERBOARD_NOTE = ("NTIRE 2021 Track 1 test leaderboard (El Helou et al., CVPRW 2021, Table 1): the challenge's "
                    "VIDIT test set at 1024², not this run's data; runtimes self-reported by each team on its own GPU")


def paper_reference(name: str, columns: Sequence[Any]) -> pd.DataFrame:
    """The paper's published rows for a table, one column per measured column (NaN where not published)."""
    paper = pd.read_csv(PAPER_RESULTS)
    paper = paper[paper.table == name]
    records = []
    for label in dict.fromkeys(paper.label):
        rows = paper[paper.label == label]
        record = {"label": label}
        for col in columns:
            hit = rows[rows.split == (col.split or "val")]
            record[col.key] = float(hit[col.metric].iloc[0]) if len(hit) and col.metric in hit else math.nan
        records.append(record)
    return pd.DataFrame(records, columns=["label", *[c.key for c in columns]])


def leaderboard_reference(columns: Sequence[Any]) -> pd.DataFrame:
    """The NTIRE 2021 Track 1 test leaderboard as reference rows of Table 4 (test metrics only; no time cells).

    Each label names the team's self-reported runtime and GPU: they were measured on different GPUs by the
    teams themselves, so they never sit in the time column beside times measured here.
    """
    board = pd.read_csv(LEADERBOARD)
    records = []
    for row in board.itertuples():
        record = {"label": f"{row.team} ({row.runtime_s:g} s/img on {row.gpu}, self-reported)"}
        for col in columns:
            value = getattr(row, col.metric, math.nan) if col.split == "test" else math.nan
            record[col.key] = float(value)
        records.append(record)
    return pd.DataFrame(records, columns=["label", *[c.key for c in columns]])
