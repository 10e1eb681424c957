"""How a run scored its predictions (SSIM convention, 8-bit or float), in words for captions and the page.

Read from ``results.json``'s ``metric_conventions`` and ``config.yaml``'s ``eval`` section.  Runs written before
the choice existed scored the clamped float prediction with the Gaussian SSIM; their ``metric_conventions`` has
no ``quantize`` entry, and they are described as ``float (not quantised)``.
"""

from __future__ import annotations

from dataclasses import dataclass

SSIM_SHORT = {"gaussian": "gaussian (pytorch-msssim: 11-tap Gaussian window, sigma 1.5)",
              "uniform7": "uniform7 (scikit-image's default: 7x7 uniform window, on the 8-bit image)"}
FLOAT_TEXT = "float (not quantised)"
QUANTISED_TEXT = "8-bit (rounded exactly as the PNGs written to predictions/)"


@dataclass(frozen=True)
class Scoring:
    """A run's scoring conventions: the SSIM kind (``gaussian`` / ``uniform7``) and whether predictions were 8-bit."""

    ssim_kind: str
    quantized: bool

    def caption(self) -> str:
        """One line for a table caption."""
        return f"Scoring: SSIM {SSIM_SHORT.get(self.ssim_kind, self.ssim_kind)}; predictions scored {self.rounding()}."

    def rounding(self) -> str:
        """``8-bit (...)`` or ``float (not quantised)``."""
        return QUANTISED_TEXT if self.quantized else FLOAT_TEXT


def scoring_of(meta: dict, config: dict) -> Scoring:
    """The conventions of one run (``meta``: results.json, ``config``: config.yaml, both as dicts)."""
    conventions = meta.get("metric_conventions") or {}
    evaluation = (config or {}).get("eval") or {}
    quantized = "quantize" in conventions and bool(evaluation.get("quantize", True))
    return Scoring(ssim_kind=str(evaluation.get("ssim", "gaussian")), quantized=quantized)


def conventions_rows(meta: dict, scoring: Scoring) -> list[tuple[str, str]]:
    """The conventions block: one ``(name, words)`` per metric convention, the rounding first."""
    conventions = dict(meta.get("metric_conventions") or {})
    rows = [("quantisation", conventions.pop("quantize", None) or scoring.rounding()),
            ("SSIM convention", SSIM_SHORT.get(scoring.ssim_kind, scoring.ssim_kind))]
    return rows + [(name, str(words)) for name, words in conventions.items()]
