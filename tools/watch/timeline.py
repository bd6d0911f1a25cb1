"""The watch's timeline: every reading as JSON, and a PNG of the seed's panels."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackcore import endpoint_metrics as em
from tools.watch.watcher import Reading


def timeline_record(
    readings: Sequence[Reading],
    *,
    endpoint_name: str,
    variant_name: str,
    region: str | None,
    subnet_ids: Sequence[str],
    every_seconds: float,
    vcpus: int | None,
) -> dict[str, Any]:
    return {
        "endpoint_name": endpoint_name,
        "variant_name": variant_name,
        "region": region,
        "subnet_ids": list(subnet_ids),
        "every_seconds": every_seconds,
        "vcpus_per_instance": vcpus,
        "metric_namespaces": {"instance": em.INSTANCE_NAMESPACE, "invocation": em.INVOCATION_NAMESPACE},
        "readings": [reading.to_record() for reading in readings],
    }


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)  # a reader never sees half a file


def _series(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if value is None else float(value) for value in values]


def _draw_instances(instances: Any, times: Sequence[dt.datetime], readings: Sequence[Reading]) -> None:
    """Current and desired instance counts as steps, each change of status written where it happens."""
    instances.step(
        times, _series([r.current_instances for r in readings]), where="post", label="current instances"
    )
    instances.step(
        times,
        _series([r.desired_instances for r in readings]),
        where="post",
        linestyle="--",
        label="desired instances",
    )
    previous = None
    for moment, reading in zip(times, readings, strict=True):
        if reading.status != previous:
            instances.annotate(
                reading.status, (moment, reading.current_instances or 0), fontsize=7, rotation=30
            )
            previous = reading.status
    instances.set_ylabel("instances")
    instances.set_ylim(bottom=0)


def draw_timeline(path: Path, readings: Sequence[Reading], *, title: str, vcpus: int | None) -> None:
    """Instances, free addresses per subnet, CPU and memory, invocations per instance, latency and
    5XX errors against time: the panels the seed's author read by hand during a load test."""
    import matplotlib as mpl  # noqa: PLC0415 - a second to import; only the final picture needs it

    mpl.use("Agg")
    import matplotlib.dates as mdates  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    times = [dt.datetime.fromtimestamp(reading.at, dt.UTC) for reading in readings]
    figure, axes = plt.subplots(5, 1, figsize=(11, 12), sharex=True, layout="constrained")
    instances, addresses, cpu, invocations, latency = axes

    _draw_instances(instances, times, readings)
    instances.set_title(title, fontsize=10)

    for subnet in sorted({subnet for reading in readings for subnet in reading.free_addresses}):
        addresses.plot(
            times, _series([r.free_addresses.get(subnet) for r in readings]), "o-", markersize=3, label=subnet
        )
    addresses.set_ylabel("free addresses")

    cpu_label = "CPUUtilization (100 per vCPU)"
    cpu_values = [r.metrics.get("cpu") for r in readings]
    if vcpus:
        cpu_label = f"CPU (% of {vcpus} vCPUs)"
        cpu_values = [None if value is None else value / vcpus for value in cpu_values]
    cpu.plot(times, _series(cpu_values), "o-", markersize=3, label=cpu_label)
    cpu.plot(
        times, _series([r.metrics.get("memory") for r in readings]), "s--", markersize=3, label="memory (%)"
    )
    cpu.set_ylabel("percent")

    invocations.plot(
        times,
        _series([r.metrics.get("invocations_per_instance") for r in readings]),
        "o-",
        markersize=3,
        label="invocations per instance (per minute)",
    )
    invocations.set_ylabel("per minute")

    latency_ms: list[float | None] = []
    for reading in readings:
        microseconds = reading.metrics.get("model_latency")
        latency_ms.append(None if microseconds is None else microseconds / em.MICROSECONDS_PER_MILLISECOND)
    latency.plot(
        times, _series(latency_ms), "o-", markersize=3, color="tab:purple", label="model latency (ms, mean)"
    )
    latency.set_ylabel("ms")
    errors = latency.twinx()
    errors.plot(
        times,
        _series([r.metrics.get("errors_5xx") for r in readings]),
        "x:",
        color="tab:red",
        label="5XX errors",
    )
    errors.set_ylabel("5XX per minute")
    latency.set_xlabel("time (UTC)")
    latency.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    instances.yaxis.set_major_locator(MaxNLocator(integer=True))
    for panel in axes:
        panel.grid(visible=True, alpha=0.3)
        handles, labels = panel.get_legend_handles_labels()
        if panel is latency:  # one legend for both of its y axes
            error_handles, error_labels = errors.get_legend_handles_labels()
            handles, labels = handles + error_handles, labels + error_labels
        if handles:
            panel.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
