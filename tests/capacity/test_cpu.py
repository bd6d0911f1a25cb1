"""Server CPU for the capacity tool: a whole process tree, and the server found from its port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tools.capacity import cli, cpu

from .conftest import StubServer

# A parent that sleeps and a child that spins: only the tree measurement sees the child's CPU.
SPINNING_CHILD = """
import subprocess, sys, time
spin = "import time\\nend = time.time() + 20\\nwhile time.time() < end: pass"
child = subprocess.Popen([sys.executable, "-c", spin])
print("ready", flush=True)
time.sleep(20)
"""


def test_the_whole_process_tree_counts_not_just_the_root():
    parent = subprocess.Popen([sys.executable, "-c", SPINNING_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        tree = cpu.CpuWindow(parent.pid, tree=True, cpus=1.0)
        root_only = cpu.CpuWindow(parent.pid, tree=False, cpus=1.0)
        tree.start()
        root_only.start()
        time.sleep(2.0)
        tree_percent, root_percent = tree.stop(), root_only.stop()
    finally:
        for process in cpu.psutil.Process(parent.pid).children(recursive=True):
            process.kill()
        parent.kill()
        parent.wait()
    assert tree_percent is not None
    assert root_percent is not None
    assert root_percent < 10  # the sleeping parent
    # The spinning child: how much of a core it gets depends on the machine's other load, so only
    # that it is counted at all, well clear of the sleeping parent.
    assert tree_percent > root_percent + 10


def test_usable_cpus_is_at_most_the_affinity():
    assert 0 < cpu.usable_cpus(os.getpid()) <= len(os.sched_getaffinity(0))


def test_the_process_listening_on_a_port_is_found(stub_server: StubServer):
    url = stub_server()
    port = urlsplit(url).port
    assert port is not None
    assert cpu.listening_pid(port) == os.getpid()  # the stand-in serves from this test process


def test_nothing_listening_gives_no_pid():
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cpu.listening_pid(port) is None


def test_a_server_over_the_cpu_target_gets_no_operating_point(
    stub_server: StubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    # The stand-in answers; a spinning process and its spinning child play the server's CPU (up to
    # both cores). The target is low enough that a machine busy with other work still leaves the
    # pair far above it (one spinner once got 4% of a loaded machine against a 5% target).
    spin = "import os, time\nos.fork()\nend = time.time() + 30\nwhile time.time() < end: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin], start_new_session=True)
    try:
        payload = tmp_path / "payload.csv"
        payload.write_text("1,2,3\n")
        code = cli.main(
            [
                "--url",
                stub_server(),
                "--payload",
                str(payload),
                "--server-pid",
                str(spinner.pid),
                "--cpu-target",
                "1",
                "--max-users",
                "2",
                "--step-seconds",
                "0.5",
                "--warmup-seconds",
                "0.1",
                "--p99-ms",
                "5000",
                "--instance-type",
                "ml.c5.xlarge",
                "--out",
                str(tmp_path),
            ]
        )
    finally:
        os.killpg(spinner.pid, signal.SIGKILL)  # the spinner and its child: its own session
        spinner.wait()
    out = capsys.readouterr().out
    assert code == cli.EXIT_NO_CAPACITY, out
    record = json.loads((tmp_path / cli.JSON_NAME).read_text())
    (first,) = record["steps"]
    assert first["server_cpu_percent"] > 1
    assert first["meets_objective"] is True  # latency and errors were fine: the CPU decided
    assert first["within_limits"] is False
    assert record["operating_point"] is None
    assert record["operating_point_limit"] == "cpu target"
    assert record["stop_reason"].startswith("CPU target exceeded at 1 user: server CPU")
    assert f"server CPU {first['server_cpu_percent']:.0f}% > target 1%" in out
