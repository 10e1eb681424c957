"""VIDIT illumination conditions: a colour temperature and a light direction.

VIDIT renders every scene under 5 temperatures x 8 azimuths.  A condition is
written ``6500_N`` (the form used in file names and configs); ``6500-N`` is
accepted too.  Mirroring a scene horizontally swaps E<->W, NE<->NW and SE<->SW
and keeps N and S.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets.errors import DataError

TEMPERATURES: tuple[int, ...] = (2500, 3500, 4500, 5500, 6500)
DIRECTIONS: tuple[str, ...] = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")

#: Azimuth of each direction in degrees, clockwise from North (N=0, E=90, ...).
AZIMUTH_DEG: dict[str, float] = {d: 45.0 * i for i, d in enumerate(DIRECTIONS)}

_MIRROR: dict[str, str] = {
    "N": "N", "S": "S", "E": "W", "W": "E", "NE": "NW", "NW": "NE", "SE": "SW", "SW": "SE",
}


@dataclass(frozen=True, order=True)
class Condition:
    """One lighting condition, e.g. ``Condition(6500, "N")``."""

    temperature: int
    direction: str

    def __post_init__(self) -> None:
        if self.temperature not in TEMPERATURES:
            raise DataError(
                f"unknown colour temperature {self.temperature} K; VIDIT has {', '.join(map(str, TEMPERATURES))}"
            )
        if self.direction not in DIRECTIONS:
            raise DataError(f"unknown light direction {self.direction!r}; VIDIT has {', '.join(DIRECTIONS)}")

    @classmethod
    def parse(cls, text: "str | Condition") -> "Condition":
        """Parse ``"6500_N"`` / ``"6500-N"`` (case-insensitive direction)."""
        if isinstance(text, Condition):
            return text
        raw = str(text).strip()
        for sep in ("_", "-"):
            if sep in raw:
                temp, _, direction = raw.partition(sep)
                break
        else:
            raise DataError(f"cannot read lighting condition {raw!r}: expected TEMPERATURE_DIRECTION such as 6500_N")
        try:
            temperature = int(temp)
        except ValueError:
            raise DataError(
                f"cannot read lighting condition {raw!r}: {temp!r} is not a temperature in kelvin (e.g. 6500_N)"
            ) from None
        return cls(temperature, direction.upper())

    def mirrored(self) -> "Condition":
        """The condition seen in a horizontally mirrored image (E<->W, NE<->NW, SE<->SW)."""
        return Condition(self.temperature, _MIRROR[self.direction])

    def __str__(self) -> str:
        return f"{self.temperature}_{self.direction}"
