"""What a report compares and how: the ``report:`` section of a run's config, defined once.

:class:`ReportConfig` is the section's schema and its defaults.  ``bench`` embeds it in its config schema (so
``bench run`` validates it and writes it into the run's ``config.yaml``); the reporter reads it back from a
stored ``config.yaml`` with :func:`settings_from_config`.  Older run folders have no ``report:`` section;
every key missing there takes the default below, the same default a new run gets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from relight_base.typed_config import meta
from reports.statistics import BootstrapSettings


@dataclass
class ReportConfig:
    """How the report compares rows: which rows the paired differences are taken against, and the bootstrap."""

    table1_reference: Optional[str] = field(default="baseline", metadata=meta(
        "experiment the Table 1 (ablation) rows are compared with (paired differences per image); null: none"))
    table2_reference: Optional[str] = field(default="mbnet", metadata=meta(
        "experiment the rows of Tables 2, 3 and 4 are compared with; null: none"))
    floor_reference: Optional[str] = field(default="identity", metadata=meta(
        "the do-nothing row every trained row is also compared with; null: none"))
    confidence: float = field(default=0.95, metadata=meta("confidence level of every interval", positive=True))
    bootstrap_resamples: int = field(default=2000, metadata=meta("bootstrap resamples per interval", minimum=100))
    bootstrap_seed: int = field(default=0, metadata=meta(
        "random_state of the bootstrap, so the same results give the same report", minimum=0))
    min_seeds: int = field(default=5, metadata=meta(
        "seeds both rows need before a difference may be called one that holds across seeds (the verdict "
        "column); fewer seeds: at most 'these weights only'", minimum=2))

    @property
    def bootstrap(self) -> BootstrapSettings:
        """The section's bootstrap settings."""
        return BootstrapSettings(confidence=float(self.confidence), resamples=int(self.bootstrap_resamples),
                                 seed=int(self.bootstrap_seed))


@dataclass(frozen=True)
class ReportSettings:
    """Reference rows per table (None: no paired differences) and the bootstrap settings of one report."""

    table1_reference: Optional[str]
    table2_reference: Optional[str]
    floor_reference: Optional[str]
    bootstrap: BootstrapSettings
    min_seeds: int = 5

    @classmethod
    def of(cls, section: ReportConfig) -> ReportSettings:
        """The settings a ``report:`` section asks for."""
        return cls(section.table1_reference, section.table2_reference, section.floor_reference, section.bootstrap,
                   int(section.min_seeds))

    @classmethod
    def default(cls) -> ReportSettings:
        """The settings of a run without a ``report:`` section."""
        return cls.of(ReportConfig())

    def reference_for(self, table: str) -> Optional[str]:
        """The experiment ``table``'s rows are compared with: Table 1 its own; Tables 2 to 4 Table 2's."""
        return self.table1_reference if table == "table1" else self.table2_reference


def settings_from_config(config: dict | None) -> ReportSettings:
    """The ``report:`` section of a stored config (a dict as loaded from ``config.yaml``), defaults filled in."""
    given = (config or {}).get("report") or {}
    names = {f.name for f in dataclasses.fields(ReportConfig)}
    return ReportSettings.of(ReportConfig(**{k: v for k, v in given.items() if k in names}))
