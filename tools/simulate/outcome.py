"""What a run produces, shared by both engines: per-10-second windows, the summary and the JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tools.simulate import constants as constants_module
from tools.simulate.control import IN_SERVICE, Event, Fleet
from tools.simulate.inputs import SimulationInput
from tools.simulate.scenario import FleetSpec

WINDOW_S = 10


@dataclass(kw_only=True)
class Windows:
    """Per-window sums (requests) and snapshots (instances, credits) of one run."""

    count: int
    offered: np.ndarray = field(init=False)
    throttled: np.ndarray = field(init=False)
    shed: np.ndarray = field(init=False)
    timeout: np.ndarray = field(init=False)
    served: np.ndarray = field(init=False)
    capacity: np.ndarray = field(init=False)
    """Requests the serving instances could have completed in the window (the bound on served)."""
    cpu_sum: np.ndarray = field(init=False)
    cpu_n: np.ndarray = field(init=False)
    in_service: np.ndarray = field(init=False)
    pending: np.ndarray = field(init=False)
    credit_min: np.ndarray = field(init=False)
    p99_s: np.ndarray = field(init=False)
    minute_p99_s: np.ndarray = field(init=False)
    overall_p99_s: float = math.nan
    """p99 of every request served in the run."""

    def __post_init__(self) -> None:
        for name in ("offered", "throttled", "shed", "timeout", "served", "capacity", "cpu_sum", "cpu_n"):
            setattr(self, name, np.zeros(self.count))
        self.in_service = np.zeros(self.count, dtype=np.int64)
        self.pending = np.zeros(self.count, dtype=np.int64)
        self.credit_min = np.full(self.count, np.nan)
        self.p99_s = np.full(self.count, np.nan)
        self.minute_p99_s = np.full(math.ceil(self.count * WINDOW_S / 60), np.nan)

    def snapshot(self, window: int, fleet: Fleet) -> None:
        in_service, pending = fleet.counts()
        self.in_service[window] = in_service
        self.pending[window] = pending
        if fleet.burstable and in_service:
            serving = fleet.state == IN_SERVICE
            self.credit_min[window] = float(fleet.credit_balance()[serving].min())


@dataclass(kw_only=True)
class Outcome:
    engine: str
    spec: FleetSpec
    service_description: str
    instance_rps: float
    service_workers: int
    service_scv: float
    traffic_name: str
    traffic_seconds: int
    windows: Windows
    events: list[Event]
    instance_seconds: float
    constants: dict[str, float]
    overridden: dict[str, float]
    seed: int
    credits_by_instance: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    """Instance number -> (t, balance) samples, for the chart (burstable types only)."""

    @classmethod
    def of_run(
        cls,
        engine: str,
        run: SimulationInput,
        *,
        windows: Windows,
        fleet: Fleet,
        credits_by_instance: dict[int, list[tuple[float, float]]],
    ) -> Outcome:
        """What either engine played, in the one shape the report, the chart and the tests read."""
        return cls(
            engine=engine,
            spec=run.spec,
            service_description=run.service.description,
            instance_rps=run.service.instance_rps,
            service_workers=run.service.workers,
            service_scv=run.service.scv,
            traffic_name=run.traffic.name,
            traffic_seconds=run.traffic.seconds,
            windows=windows,
            events=fleet.events,
            instance_seconds=fleet.instance_seconds,
            constants=dict(run.constants.values),
            overridden=run.constants.overridden(),
            seed=run.seed,
            credits_by_instance=credits_by_instance,
        )

    @property
    def failed(self) -> float:
        w = self.windows
        return float(w.throttled.sum() + w.shed.sum() + w.timeout.sum())

    def failed_percent(self) -> float:
        offered = float(self.windows.offered.sum())
        return 100 * self.failed / offered if offered else 0.0

    def minutes_over_objective(self) -> int:
        objective_s = self.spec.latency_objective_ms / 1000
        p99 = self.windows.minute_p99_s
        return int(np.count_nonzero(np.nan_to_num(p99, nan=0.0) > objective_s))

    def summary(self) -> dict[str, Any]:
        w = self.windows
        hours = self.instance_seconds / 3600
        price = self.spec.price_per_hour_usd
        return {
            "requests": {
                "offered": round(float(w.offered.sum()), 3),
                "served": round(float(w.served.sum()), 3),
                "failed": round(self.failed, 3),
                "failed_percent": round(self.failed_percent(), 4),
                "failures_by_reason": {
                    "timeout": round(float(w.timeout.sum()), 3),
                    "shed": round(float(w.shed.sum()), 3),
                    "throttled": round(float(w.throttled.sum()), 3),
                },
            },
            "latency_objective_ms": self.spec.latency_objective_ms,
            "minutes_over_latency_objective": self.minutes_over_objective(),
            "p99_ms": _ms(w.overall_p99_s),
            "p99_ms_worst_minute": _ms(
                float(np.nanmax(w.minute_p99_s)) if np.any(~np.isnan(w.minute_p99_s)) else None
            ),
            "instance_hours": round(hours, 4),
            "cost_usd": None if price is None else round(hours * price, 4),
            "price_per_hour_usd": price,
            "price_source": constants_module.PRICE_TABLE_SOURCE
            if price is not None
            else "no price for the type",
        }

    def timeline(self) -> list[dict[str, Any]]:
        w = self.windows
        entries: list[dict[str, Any]] = []
        for i in range(w.count):
            entry: dict[str, Any] = {
                "t_seconds": i * WINDOW_S,
                "instances_in_service": int(w.in_service[i]),
                "instances_pending": int(w.pending[i]),
                "offered_rps": round(float(w.offered[i]) / WINDOW_S, 3),
                "served_rps": round(float(w.served[i]) / WINDOW_S, 3),
                "failed_rps": round(float(w.throttled[i] + w.shed[i] + w.timeout[i]) / WINDOW_S, 3),
                "p99_ms": _ms(float(w.p99_s[i])),
                "cpu_percent": round(100 * float(w.cpu_sum[i]) / float(w.cpu_n[i]), 2) if w.cpu_n[i] else 0.0,
            }
            if self.spec.burstable is not None:
                entry["cpu_credit_balance"] = (
                    None if np.isnan(w.credit_min[i]) else round(float(w.credit_min[i]), 3)
                )
            entries.append(entry)
        return entries

    def record(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "engine": self.engine,
            "seed": self.seed,
            "stack": spec.stack,
            "fleet": {
                "instance_type": spec.instance_type,
                "vcpus": spec.vcpus,
                "initial_instances": spec.initial_instances,
                "autoscaling": spec.autoscaling,
                "min_instances": spec.min_instances,
                "max_instances": spec.max_instances,
                "scaling_metric": spec.scaling_metric.value,
                "routing": spec.routing.value,
                "availability_zones": spec.az_count,
                "update_mode": spec.update_mode.value,
                "quota_instances": spec.quota_instances,
                "front_door": spec.front_door,
            },
            "service_model": {
                "description": self.service_description,
                "instance_rps": self.instance_rps,
                "workers": self.service_workers,
                "service_time_scv": self.service_scv,
            },
            "traffic": {"name": self.traffic_name, "seconds": self.traffic_seconds},
            "summary": self.summary(),
            "events": [{"t_seconds": e.t_seconds, "kind": e.kind, "detail": e.detail} for e in self.events],
            "constants": self.constants,
            "constants_overridden": self.overridden,
            "timeline": self.timeline(),
        }


def _ms(seconds: float | None) -> float | None:
    if seconds is None or math.isnan(seconds):
        return None
    return round(seconds * 1000, 3)
