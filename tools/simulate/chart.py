"""simulation.png: what CloudWatch would have shown (CPU and credits, instances, requests and errors,
p99 latency), minute by minute, with the events marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.simulate.outcome import WINDOW_S, Outcome

_MARKED = {
    "lose-instance": "tab:red",
    "lose-az": "darkred",
    "deploy": "tab:purple",
    "unhealthy": "tab:orange",
    "in-service": "tab:green",
    "credits": "tab:brown",
    "scaling": "tab:blue",
}


def draw(outcome: Outcome, path: Path, title: str) -> None:
    # Imported here: matplotlib costs about a second, and only the chart needs it.
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    w = outcome.windows
    minutes = np.arange(w.count) * WINDOW_S / 60
    figure, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, layout="constrained")
    cpu_axes, instance_axes, request_axes, latency_axes = axes

    cpu = np.divide(100 * w.cpu_sum, w.cpu_n, out=np.zeros(w.count), where=w.cpu_n > 0)
    cpu_axes.plot(minutes, cpu, color="tab:blue", label="CPU (mean of in-service instances)")
    cpu_axes.set_ylabel("CPU %")
    cpu_axes.set_ylim(0, 105)
    if outcome.credits_by_instance:
        credit_axes = cpu_axes.twinx()
        for label, samples in sorted(outcome.credits_by_instance.items()):
            times = [t / 60 for t, _ in samples]
            credit_axes.plot(
                times,
                [b for _, b in samples],
                linestyle="--",
                linewidth=1,
                label=f"credits, instance {label}",
            )
        credit_axes.set_ylabel("CPU credits")
        credit_axes.legend(loc="upper right", fontsize=7)
    cpu_axes.legend(loc="upper left", fontsize=8)

    instance_axes.step(minutes, w.in_service, where="post", label="in service", color="tab:green")
    instance_axes.step(minutes, w.pending, where="post", label="pending (launching)", color="tab:gray")
    instance_axes.set_ylabel("instances")
    instance_axes.set_ylim(
        bottom=0, top=max(1, int(w.in_service.max(initial=0)), int(w.pending.max(initial=0))) + 1
    )
    instance_axes.legend(loc="upper left", fontsize=8)

    request_axes.plot(minutes, w.offered / WINDOW_S, label="offered", color="tab:gray")
    request_axes.plot(minutes, w.served / WINDOW_S, label="served", color="tab:green")
    for name, values, color in (
        ("timeout", w.timeout, "tab:red"),
        ("shed (5xx)", w.shed, "tab:orange"),
        ("throttled", w.throttled, "tab:purple"),
    ):
        if values.any():
            request_axes.plot(minutes, values / WINDOW_S, label=f"failed: {name}", color=color)
    request_axes.set_ylabel("requests/s")
    request_axes.legend(loc="upper left", fontsize=8)

    latency_ms = w.p99_s * 1000
    latency_axes.plot(minutes, latency_ms, color="black", label="p99")
    latency_axes.axhline(
        outcome.spec.latency_objective_ms, color="tab:red", linestyle=":", label="latency objective"
    )
    latency_axes.set_yscale("log")
    latency_axes.set_ylabel("p99 latency (ms)")
    latency_axes.set_xlabel("minutes")
    latency_axes.legend(loc="upper left", fontsize=8)

    seen: set[str] = set()
    for event in outcome.events:
        color = _MARKED.get(event.kind)
        if color is None:
            continue
        for ax in axes:
            ax.axvline(event.t_seconds / 60, color=color, alpha=0.5, linewidth=1)
        if event.kind not in seen:
            seen.add(event.kind)
            cpu_axes.annotate(
                event.kind,
                (event.t_seconds / 60, 102),
                fontsize=7,
                color=color,
                rotation=90,
                va="top",
                ha="right",
            )
    for ax in axes:
        ax.grid(visible=True, alpha=0.3)
    figure.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
