"""Reading a CSV the reporter depends on: unreadable files and missing columns are a :class:`ReportError`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from reports.errors import ReportError


def read_checked_csv(path: Path, *, kind: str, columns: Sequence[str], expected: str,
                     dtype: dict[str, type] | None = None) -> pd.DataFrame:
    """``path`` as a data frame holding at least ``columns``; else a :class:`ReportError` naming the file.

    ``kind`` names the file in the message (``timing CSV``); ``expected`` says which columns and who writes them.
    """
    try:
        frame = pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"{path}: not a readable {kind} ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)}; expected {expected}")
    return frame
