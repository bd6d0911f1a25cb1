"""What a capacity run leaves behind: a JSON record and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.capacity.ramp import broken_limit
from tools.capacity.sizing import FleetSettings, StepResult


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")


def step_record(
    step: StepResult, p99_objective_ms: float, cpu_target_percent: float | None = None
) -> dict[str, Any]:
    """One step as saved: the measurements plus the derived throughput, error rate and verdicts."""
    record = asdict(step)
    record["error_kinds"] = dict(step.error_kinds)
    record["rps"] = step.rps
    record["error_rate"] = step.error_rate
    record["meets_objective"] = step.meets(p99_objective_ms)
    record["within_limits"] = broken_limit(step, p99_objective_ms, cpu_target_percent) is None
    record["generator_saturated"] = step.generator_saturated
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
    *,
    cpu_target: float | None = None,
) -> None:
    """Throughput, p50/p99 latency and CPU against users, the objective, the CPU target and the
    operating point marked; steps that broke a limit crossed."""
    # Imported here: matplotlib costs about a second, and only the final report needs it.
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator, ScalarFormatter  # noqa: PLC0415

    measured = sorted((step for step in steps if step.requests), key=lambda step: step.users)
    users = [step.users for step in measured]
    figure, (rps_axes, latency_axes, cpu_axes) = plt.subplots(
        3, 1, figsize=(11, 9), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1.4]}, layout="constrained"
    )
    rps_axes.plot(users, [step.rps for step in measured], "o-", color="tab:blue", label="throughput (req/s)")
    latency_axes.plot(users, [step.p50_ms for step in measured], "o-", color="tab:green", label="p50 latency")
    latency_axes.plot(
        users, [step.p99_ms for step in measured], "^-", color="tab:purple", label="p99 latency"
    )
    latency_axes.axhline(
        p99_objective_ms, color="tab:red", linestyle=":", label=f"p99 objective {p99_objective_ms:g} ms"
    )
    broken = [step for step in measured if broken_limit(step, p99_objective_ms, cpu_target) is not None]
    if broken:
        for axes, value in ((rps_axes, "rps"), (latency_axes, "p99_ms")):
            axes.plot(
                [step.users for step in broken],
                [getattr(step, value) for step in broken],
                marker="X",
                markersize=10,
                color="tab:red",
                linestyle="none",
                label="step that broke a limit",
            )
    refined = [step for step in measured if step.phase == "refine"]
    if refined:
        rps_axes.plot(
            [step.users for step in refined],
            [step.rps for step in refined],
            marker="o",
            markersize=11,
            markerfacecolor="none",
            color="tab:orange",
            linestyle="none",
            label="knee refinement step",
        )
    server_cpu = [
        (step.users, step.server_cpu_percent) for step in measured if step.server_cpu_percent is not None
    ]
    generator_cpu = [
        (step.users, step.generator_cpu_percent)
        for step in measured
        if step.generator_cpu_percent is not None
    ]
    if server_cpu:
        cpu_axes.plot(
            *zip(*server_cpu, strict=True), "o-", color="tab:brown", label="server CPU (% of its CPUs)"
        )
    if generator_cpu:
        cpu_axes.plot(
            *zip(*generator_cpu, strict=True),
            "s--",
            color="tab:gray",
            label="busiest generator (% of a core)",
        )
    if cpu_target is not None:
        cpu_axes.axhline(cpu_target, color="tab:red", linestyle=":", label=f"CPU target {cpu_target:g}%")
    if not server_cpu:
        cpu_axes.text(
            0.5, 0.5, "server CPU not measured", transform=cpu_axes.transAxes, ha="center", color="dimgray"
        )
    if chosen is not None:
        label = f"operating point: {chosen.rps:,.0f} req/s at {chosen.users} users"
        for axes, value in ((rps_axes, chosen.rps), (latency_axes, chosen.p99_ms)):
            axes.plot(
                [chosen.users],
                [value],
                marker="*",
                markersize=18,
                color="gold",
                markeredgecolor="black",
                linestyle="none",
                label=label,
            )
        for axes in (rps_axes, latency_axes, cpu_axes):
            axes.axvline(chosen.users, color="goldenrod", linestyle="--", linewidth=1)
    rps_axes.set_ylabel("throughput (req/s)")
    rps_axes.set_ylim(bottom=0)
    rps_axes.set_title(title, fontsize=10)
    # Log scale: a 2 ms p50 and a 100 ms objective both stay readable on one chart.
    latency_axes.set_yscale("log")
    latency_axes.set_ylabel("latency (ms, log scale)")
    latency_axes.yaxis.set_major_formatter(ScalarFormatter())
    cpu_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = max([p99_objective_ms, *(step.p99_ms or 0.0 for step in measured)])
    latency_axes.set_ylim(top=top * 1.6)
    cpu_axes.set_ylabel("CPU (%)")
    cpu_axes.set_ylim(0, max([105.0, *(value for _, value in server_cpu + generator_cpu)]) * 1.05)
    cpu_axes.set_xlabel("concurrent users")
    for axes in (rps_axes, latency_axes, cpu_axes):
        axes.grid(visible=True, alpha=0.3)
        # Outside the axes: inside, it hides the steps whatever corner it takes.
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
