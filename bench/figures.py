"""The one shape every benchmark reports in (shared/BENCHMARKS.md): one object per figure with
its name, value, unit, the baseline it was measured against in the same run, and the ratio."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
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


def write_results(
    filename: str, figures: list[dict[str, Any]], *, module: str, argv: Sequence[str] | None
) -> Path:
    """Write the figures to ``bench/results/<filename>`` with the command that made them
    (``python -m <module> <argv>``) and the machine's state (cores, load) that a reader needs to
    weigh them; return the path."""
    arguments = list(argv) if argv is not None else sys.argv[1:]
    document = {
        "command": " ".join(["python -m", module, *arguments]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "figures": figures,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / filename
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
