"""The one shape every benchmark reports in (shared/BENCHMARKS.md): one object per figure with
its name, value, unit, the baseline it was measured against in the same run, and the ratio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def figure(
    name: str, value: float, unit: str, baseline: str | None = None, base: float | None = None
) -> dict[str, Any]:
    """A figure; ``base`` is the baseline's value in the same unit, measured side by side."""
    return {
        "name": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": baseline,
        "ratio": round(value / base, 4) if base else None,
    }


def write_results(filename: str, document: Any) -> Path:
    """Write ``document`` as JSON to ``bench/results/<filename>`` and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / filename
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
