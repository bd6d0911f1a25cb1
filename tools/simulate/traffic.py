"""Offered load over time: presets or a ``minute,rps`` CSV, as one rate per simulated second."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.simulate.scenario import SimulationInputError

PRESETS = ("seed", "step", "spike", "diurnal")

SEED_RAMP_MINUTES = 15
SEED_SUSTAIN_MINUTES = 120
"""The mission's load test: a 15-minute ramp to the seed's load, then two hours sustained."""


@dataclass(frozen=True, kw_only=True)
class Traffic:
    name: str
    rps: np.ndarray
    """Offered requests per second, one value per simulated second."""

    @property
    def seconds(self) -> int:
        return len(self.rps)


def _per_second(minutes_and_rates: list[tuple[float, float]], total_minutes: float) -> np.ndarray:
    seconds = np.arange(math.ceil(total_minutes * 60), dtype=np.float64)
    starts = np.array([m * 60 for m, _ in minutes_and_rates])
    rates = np.array([r for _, r in minutes_and_rates])
    return rates[np.searchsorted(starts, seconds, side="right") - 1]


def preset(name: str, *, base_rps: float, peak_rps: float, minutes: float | None = None) -> Traffic:
    """A named shape between ``base_rps`` and ``peak_rps``."""
    if name not in PRESETS:
        raise SimulationInputError(
            f"unknown traffic preset {name!r}: choose one of {', '.join(PRESETS)} or a CSV file"
        )
    if not (math.isfinite(base_rps) and math.isfinite(peak_rps)) or base_rps < 0 or peak_rps <= 0:
        raise SimulationInputError(
            f"base and peak rates must be finite, base >= 0, peak > 0 (got {base_rps}, {peak_rps})"
        )
    if minutes is not None and minutes <= 0:
        raise SimulationInputError(f"--minutes must be positive, got {minutes}")
    if name == "seed":
        total = minutes or SEED_RAMP_MINUTES + SEED_SUSTAIN_MINUTES
        t = np.arange(math.ceil(total * 60), dtype=np.float64)
        rps = np.minimum(1.0, (t + 1) / (SEED_RAMP_MINUTES * 60)) * peak_rps
    elif name == "step":
        total = minutes or 120
        rps = _per_second([(0, base_rps), (total / 4, peak_rps)], total)
    elif name == "spike":
        total = minutes or 90
        rps = _per_second([(0, base_rps), (total / 3, peak_rps), (total / 3 + 5, base_rps)], total)
    else:
        total = minutes or 24 * 60
        t = np.arange(math.ceil(total * 60), dtype=np.float64)
        # Lowest at 04:00, highest at 16:00 of each simulated day.
        rps = base_rps + (peak_rps - base_rps) * (1 - np.cos(2 * np.pi * (t - 4 * 3600) / 86400)) / 2
    return Traffic(name=name, rps=rps.astype(np.float64))


def from_csv(path: Path) -> Traffic:
    """``minute,rps`` rows (a header row is allowed): each rate holds until the next row's minute;
    the last row's rate holds for one minute."""
    try:
        text = path.read_text()
    except OSError as error:
        raise SimulationInputError(f"cannot read traffic file {path}: {error.strerror or error}") from None
    rows: list[tuple[float, float]] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise SimulationInputError(f"{path}, line {number}: expected 'minute,rps', got {','.join(row)!r}")
        try:
            minute, rate = float(row[0]), float(row[1])
        except ValueError:
            if number == 1 and not rows:
                continue  # a header
            raise SimulationInputError(
                f"{path}, line {number}: {','.join(row)!r} is not two numbers"
            ) from None
        if not (math.isfinite(minute) and math.isfinite(rate)) or minute < 0 or rate < 0:
            raise SimulationInputError(f"{path}, line {number}: minute and rps must be finite and >= 0")
        if rows and minute <= rows[-1][0]:
            raise SimulationInputError(
                f"{path}, line {number}: minute {minute:g} is not after {rows[-1][0]:g}"
            )
        rows.append((minute, rate))
    if not rows:
        raise SimulationInputError(f"{path} has no 'minute,rps' rows")
    if rows[0][0] != 0:
        rows.insert(0, (0.0, 0.0))
    return Traffic(name=path.name, rps=_per_second(rows, rows[-1][0] + 1))
