"""What a report compares and how, read from a run's stored ``config.yaml`` (its ``report:`` section).

Older run folders have no ``report:`` section; every key missing there takes the default below, the same
default ``bench`` uses for new runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from reports.statistics import BootstrapSettings

DEFAULTS: dict[str, Any] = {"table1_reference": "baseline", "table2_reference": "mbnet", "floor_reference": "identity",
                            "confidence": 0.95, "bootstrap_resamples": 2000, "bootstrap_seed": 0}


@dataclass(frozen=True)
class ReportSettings:
    """Reference rows per table (None: no paired differences) and the bootstrap settings."""

    table1_reference: Optional[str] = DEFAULTS["table1_reference"]
    table2_reference: Optional[str] = DEFAULTS["table2_reference"]
    floor_reference: Optional[str] = DEFAULTS["floor_reference"]
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)

    def reference_for(self, table: str) -> Optional[str]:
        """The experiment ``table``'s rows are compared with: Table 1 its own; Tables 2 and 3 Table 2's."""
        return self.table1_reference if table == "table1" else self.table2_reference


def settings_from_config(config: dict | None) -> ReportSettings:
    """The ``report:`` section of a stored config (a dict as loaded from ``config.yaml``), defaults filled in."""
    section = dict(DEFAULTS)
    given = (config or {}).get("report") or {}
    section.update({k: v for k, v in given.items() if k in DEFAULTS})
    bootstrap = BootstrapSettings(confidence=float(section["confidence"]),
                                  resamples=int(section["bootstrap_resamples"]), seed=int(section["bootstrap_seed"]))
    return ReportSettings(table1_reference=section["table1_reference"], table2_reference=section["table2_reference"],
                          floor_reference=section["floor_reference"], bootstrap=bootstrap)
