"""What a capacity run leaves behind: stack settings to paste, a JSON record and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.capacity.sizing import FleetSettings, StepResult


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")


def step_record(step: StepResult, p99_objective_ms: float) -> dict[str, Any]:
    """One step as saved: the measurements plus the derived throughput, error rate and verdict."""
    record = asdict(step)
    record["error_kinds"] = dict(step.error_kinds)
    record["rps"] = step.rps
    record["error_rate"] = step.error_rate
    record["meets_objective"] = step.meets(p99_objective_ms)
    return record


def fleet_record(fleet: FleetSettings) -> dict[str, Any]:
    record = asdict(fleet)
    record["peak_rps_per_instance"] = fleet.peak_rps_per_instance
    return record


def draw_chart(
    path: Path,
    steps: Sequence[StepResult],
    chosen: StepResult | None,
    p99_objective_ms: float,
    title: str,
) -> None:
    """p50/p95/p99 latency and error rate against throughput, the chosen operating point marked."""
    # Imported here: matplotlib costs about a second, and only the final report needs it.
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    measured = [step for step in steps if step.requests]
    rps = [step.rps for step in measured]
    figure, (latency_axes, error_axes) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}, layout="constrained"
    )
    for label, values, style in (
        ("p50", [step.p50_ms for step in measured], "o-"),
        ("p95", [step.p95_ms for step in measured], "s--"),
        ("p99", [step.p99_ms for step in measured], "^-"),
    ):
        latency_axes.plot(rps, values, style, label=label, markersize=5)
    latency_axes.axhline(
        p99_objective_ms, color="tab:red", linestyle=":", label=f"p99 objective {p99_objective_ms:g} ms"
    )
    broken = [step for step in measured if not step.meets(p99_objective_ms)]
    if broken:
        latency_axes.plot(
            [step.rps for step in broken],
            [step.p99_ms for step in broken],
            marker="X",
            markersize=11,
            color="tab:red",
            linestyle="none",
            label="step that broke the objective",
        )
    for step in measured:
        latency_axes.annotate(
            f"{step.users} user{'s' if step.users > 1 else ''}",
            (step.rps, step.p99_ms or 0.0),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=7,
            color="dimgray",
        )
    if chosen is not None:
        latency_axes.plot(
            [chosen.rps],
            [chosen.p99_ms],
            marker="*",
            markersize=18,
            color="gold",
            markeredgecolor="black",
            linestyle="none",
            label=f"operating point: {chosen.rps:,.0f} req/s at {chosen.users} users",
        )
        error_axes.axvline(chosen.rps, color="goldenrod", linestyle="--")
    # Log scale: a 2 ms p50 and a 100 ms objective both stay readable on one chart.
    latency_axes.set_yscale("log")
    latency_axes.set_ylabel("latency (ms, log scale)")
    latency_axes.grid(visible=True, alpha=0.3)
    # Outside the axes: inside, it hides the steps whatever corner it takes.
    latency_axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    top = max([p99_objective_ms, *(step.p99_ms or 0.0 for step in measured)])
    latency_axes.set_ylim(top=top * 1.6)
    latency_axes.set_title(title, fontsize=10)

    error_axes.plot(rps, [100 * step.error_rate for step in measured], "o-", color="tab:red")
    error_axes.set_ylabel("errors (%)")
    error_axes.set_xlabel("throughput (req/s)")
    error_axes.set_ylim(bottom=0, top=max([100 * step.error_rate for step in measured] + [1.0]) * 1.15)
    if rps:
        # Throughput saturates, so the steps bunch together: zoom on them rather than start at 0.
        spread = max(max(rps) - min(rps), 0.05 * max(rps), 1.0)
        error_axes.set_xlim(max(0.0, min(rps) - 0.15 * spread), max(rps) + 0.15 * spread)
    error_axes.grid(visible=True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
