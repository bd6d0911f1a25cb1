"""CPU of a local server's whole process tree, and of the load generator itself, over a window.

A Gunicorn server is a master and its forked workers; the CPU that matters is all of them together,
as a share of the CPUs the server may use: its CPU affinity, capped by its cgroup's CPU quota
(a container or a starved instance gets less than the machine has). 100% means every CPU it may
use was busy for the whole window, the figure the seed's "load-test to about 80% CPU" rule reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

_LOOPBACK_OR_ANY = {"127.0.0.1", "::1", "0.0.0.0", "::"}


def _listens_on(process: psutil.Process, port: int) -> bool:
    try:
        connections = process.net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(
        conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port for conn in connections
    )


def listening_pid(port: int) -> int | None:
    """The root process of whatever listens on TCP ``port`` on this machine (a Gunicorn master:
    its workers hold the same socket), or None when nothing of this user's does."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    pid = next(
        (
            conn.pid
            for conn in connections
            if conn.status == psutil.CONN_LISTEN
            and conn.pid is not None
            and conn.laddr
            and conn.laddr.port == port
            and conn.laddr.ip in _LOOPBACK_OR_ANY
        ),
        None,
    )
    if pid is None:
        return None
    # A socket shared by a master and its forked workers is reported once, under any of them:
    # climb to the highest ancestor that still holds it.
    try:
        process = psutil.Process(pid)
        while (parent := process.parent()) is not None and _listens_on(parent, port):
            process = parent
    except psutil.NoSuchProcess:
        return None
    return process.pid


def _cgroup_quota_cpus(pid: int) -> float | None:
    """CPUs the process's cgroup allows (quota / period), None without a quota."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    root = Path("/sys/fs/cgroup")
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # cgroup v2: "max 100000" or "40000 100000"
            candidates = [(root / relative / "cpu.max", None)]
        elif "cpu" in controllers.split(","):
            candidates = [
                (root / name / relative / "cpu.cfs_quota_us", root / name / relative / "cpu.cfs_period_us")
                for name in ("cpu", "cpu,cpuacct", controllers)
            ]
        else:
            continue
        for quota_path, period_path in candidates:
            try:
                if period_path is None:
                    quota_text, period_text = quota_path.read_text().split()
                else:
                    quota_text, period_text = quota_path.read_text().strip(), period_path.read_text().strip()
            except (OSError, ValueError):
                continue
            if quota_text in {"max", "-1"}:
                return None
            return int(quota_text) / int(period_text)
    return None


def usable_cpus(pid: int) -> float:
    """The CPUs process ``pid`` may use: its affinity, capped by its cgroup's CPU quota."""
    try:
        affinity = float(len(os.sched_getaffinity(pid)))
    except OSError:
        affinity = float(os.cpu_count() or 1)
    quota = _cgroup_quota_cpus(pid)
    return min(affinity, quota) if quota is not None else affinity


def _tree_cpu_seconds(root: psutil.Process, *, with_children: bool) -> dict[int, float]:
    processes = [root]
    if with_children:
        try:
            processes += root.children(recursive=True)
        except psutil.NoSuchProcess:
            return {}
    seconds: dict[int, float] = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


class CpuWindow:
    """CPU used by a process (and, with ``tree``, every descendant) between :meth:`start` and
    :meth:`stop`. A worker that dies in the window loses its share; one born in it counts whole."""

    def __init__(self, pid: int, *, tree: bool = True, cpus: float | None = None) -> None:
        self.process = psutil.Process(pid)
        self.tree = tree
        self.cpus = cpus if cpus is not None else usable_cpus(pid)
        self._start: dict[int, float] = {}
        self._started = 0.0

    def start(self) -> None:
        self._start = _tree_cpu_seconds(self.process, with_children=self.tree)
        self._started = time.monotonic()

    def stop(self) -> float | None:
        """Percent of ``cpus`` busy over the window; None if the process is gone."""
        elapsed = time.monotonic() - self._started
        end = _tree_cpu_seconds(self.process, with_children=self.tree)
        if not end or elapsed <= 0:
            return None
        used = sum(seconds - self._start.get(pid, 0.0) for pid, seconds in end.items())
        return 100.0 * max(used, 0.0) / (elapsed * self.cpus)
