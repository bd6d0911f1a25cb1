"""``python -m tools.capacity``: load-test the model, then size and scale the fleet from it.

Examples::

    # start the local container on the demo model and measure it
    python -m tools.capacity --model-dir build/demo-model --base-rps 50 --peak-rps 400

    # a server that is already running, or the local front door, or the deployed API
    python -m tools.capacity --url http://127.0.0.1:8080/invocations
    python -m tools.capacity --url https://abc.execute-api.eu-west-1.amazonaws.com/prod/predict \\
        --api-key "$XGBOOST_ENDPOINT_API_KEY" --endpoint-instances 3 --instance-type ml.c5.xlarge
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from stackcore import fleet
from tools import arguments
from tools.capacity import cloudwatch, cpu, ramp, report, sizing, stack
from tools.capacity.load import LoadEngineError, Plan, RampOutcome, run_ramp

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY_ENV = "XGBOOST_ENDPOINT_API_KEY"
DEFAULT_INSTANCE_TYPE = "ml.c5.xlarge"
DEFAULT_AZ_COUNT = 3
DEFAULT_P99_MS = 100.0
MODEL_LATENCY_KEY = "modelLatencyP99Ms"
JSON_NAME = "capacity.json"
PNG_NAME = "capacity.png"
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_PREFLIGHT_TIMEOUT_SECONDS = 10.0

EXIT_NO_CAPACITY = 1
"""The run completed but no step met the objective: the files are written, no settings derived."""
DEFAULT_MASTER_PORT = 5557
"""Locust's own default master port."""
EXIT_ERROR = 2
"""Bad arguments, an unreachable or refusing server, or a failed load engine."""


class CapacityError(Exception):
    """A problem the user can fix; its message says what and how. Printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.capacity",
        description="Load-test the model with Locust in concurrency steps, find the highest throughput "
        "with p99 under the objective and no errors, and derive the autoscaling stack settings.",
    )
    target = parser.add_argument_group("what to load-test (one of)")
    where = target.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="full URL to POST to: .../invocations, .../predict or the deployed API")
    where.add_argument(
        "--model-dir",
        type=Path,
        help="start the local container on this model directory (tools.serving) and test its /invocations",
    )
    target.add_argument(
        "--workers",
        type=arguments.positive_int,
        help="with --model-dir: SAGEMAKER_MODEL_SERVER_WORKERS for the server",
    )
    target.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"sent as x-api-key (front door, deployed API); default: env {API_KEY_ENV}",
    )

    payload = parser.add_argument_group("payload")
    payload.add_argument(
        "--payload", type=Path, help="file to send as the body (default: CSV rows of the demo digits data)"
    )
    payload.add_argument(
        "--content-type", default="text/csv", help="Content-Type of --payload (default text/csv)"
    )
    payload.add_argument("--accept", help="Accept header to send (default: none, the server's default)")
    payload.add_argument(
        "--records",
        type=arguments.positive_int,
        default=1,
        help="demo payload: CSV records per request (default 1)",
    )

    ramp_group = parser.add_argument_group("ramp and budgets")
    ramp_group.add_argument(
        "--start-users", type=arguments.positive_int, default=1, help="users at the first step (default 1)"
    )
    ramp_group.add_argument(
        "--step-users", type=arguments.positive_int, default=4, help="users added per step (default 4)"
    )
    ramp_group.add_argument(
        "--max-users", type=arguments.positive_int, default=32, help="users at the last step (default 32)"
    )
    ramp_group.add_argument(
        "--step-seconds",
        type=arguments.positive_float,
        default=10.0,
        help="measurement window per step (default 10)",
    )
    ramp_group.add_argument(
        "--warmup-seconds",
        type=arguments.non_negative_float,
        default=1.0,
        help="unmeasured time after the users of a step start (default 1)",
    )
    ramp_group.add_argument(
        "--max-seconds",
        type=arguments.positive_float,
        default=300.0,
        help="time budget for the whole ramp (default 300)",
    )
    ramp_group.add_argument(
        "--max-requests",
        type=arguments.positive_int,
        default=1_000_000,
        help="request budget for the whole ramp (default 1,000,000)",
    )
    ramp_group.add_argument(
        "--p99-ms",
        type=arguments.positive_float,
        help=f"p99 latency objective (default: the stack's {MODEL_LATENCY_KEY}, the latency alarm "
        f"that rolls a deployment back; {DEFAULT_P99_MS:g} without one)",
    )
    ramp_group.add_argument(
        "--cpu-target",
        type=arguments.positive_float,
        default=ramp.DEFAULT_CPU_TARGET_PERCENT,
        help="highest server CPU (percent of the CPUs it may use) the operating point may have "
        f"(default {ramp.DEFAULT_CPU_TARGET_PERCENT:g}, the seed's rule); needs the server's CPU: a local "
        "server's process tree, or --endpoint-name for CloudWatch",
    )
    ramp_group.add_argument(
        "--no-refine",
        dest="refine",
        action="store_false",
        help="do not bisect the users between the last good and the first bad step",
    )

    cpu_group = parser.add_argument_group("server CPU")
    cpu_group.add_argument(
        "--server-pid",
        type=arguments.positive_int,
        help="local server's root process (default: whatever listens on the URL's port, or the "
        "started container)",
    )
    cpu_group.add_argument(
        "--endpoint-name",
        help="deployed endpoint to read CPU, memory and invocation metrics for from CloudWatch",
    )
    cpu_group.add_argument(
        "--region", help="AWS region of --endpoint-name (default: boto3's, e.g. AWS_REGION)"
    )
    cpu_group.add_argument(
        "--metrics-wait-seconds",
        type=arguments.non_negative_float,
        default=180.0,
        help="with --endpoint-name: how long to wait after the test for CloudWatch to publish its "
        "last minute (default 180)",
    )

    generators = parser.add_argument_group("load generators")
    generators.add_argument(
        "--generators",
        type=arguments.non_negative_int,
        default=0,
        help="run the users in a Locust master and N worker processes (default 0: one process)",
    )
    generators.add_argument(
        "--master-bind",
        help="with --generators N: bind the master to this address and wait for N workers started "
        "elsewhere with `python -m tools.capacity --worker --master-host HOST`",
    )
    generators.add_argument(
        "--master-port",
        type=arguments.positive_int,
        help=f"Locust master port (default {DEFAULT_MASTER_PORT} with --master-bind)",
    )
    generators.add_argument(
        "--worker-wait-seconds",
        type=arguments.positive_float,
        default=60.0,
        help="how long the master waits for its workers to connect (default 60)",
    )

    sizing_group = parser.add_argument_group("sizing")
    sizing_group.add_argument(
        "--instance-type",
        help=f"target instance type (default: the stack's {stack.INSTANCE_TYPE_KEY}, "
        f"else {DEFAULT_INSTANCE_TYPE})",
    )
    sizing_group.add_argument(
        "--scale",
        type=arguments.positive_float,
        help="factor from the measured throughput to one target instance (overrides the vCPU scaling)",
    )
    sizing_group.add_argument(
        "--local-cpus",
        type=arguments.positive_int,
        help="CPUs the local server used (default: this machine's CPUs, or --workers if fewer)",
    )
    sizing_group.add_argument(
        "--endpoint-instances",
        type=arguments.positive_int,
        default=1,
        help="instances behind a deployed URL during the test (default 1)",
    )
    sizing_group.add_argument(
        "--safety-factor",
        type=arguments.positive_float,
        default=sizing.DEFAULT_SAFETY_FACTOR,
        help=f"AWS's SAFETY_FACTOR in MAX_RPS x SAFETY_FACTOR x 60 (default {sizing.DEFAULT_SAFETY_FACTOR})",
    )
    sizing_group.add_argument(
        "--operating-fraction",
        type=arguments.positive_float,
        default=sizing.DEFAULT_OPERATING_FRACTION,
        help=f"share of capacity an instance runs at (default {sizing.DEFAULT_OPERATING_FRACTION})",
    )
    sizing_group.add_argument(
        "--base-rps",
        type=arguments.non_negative_float,
        default=0.0,
        help="expected base load, req/s (default 0)",
    )
    sizing_group.add_argument(
        "--peak-rps", type=arguments.non_negative_float, help="expected peak load, req/s"
    )
    sizing_group.add_argument(
        "--az-count",
        type=arguments.positive_int,
        help=f"Availability Zones the fleet spreads over (default: the stack's {stack.AZ_COUNT_KEY}, else 3)",
    )
    sizing_group.add_argument(
        "--stack",
        default="prod",
        help="stack whose Pulumi.<stack>.yaml gives the defaults and gets the settings (default prod)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--out",
        type=Path,
        help="directory for capacity.json and capacity.png (default capacity-runs/<UTC time>)",
    )
    return parser


@dataclass(frozen=True, kw_only=True)
class Payload:
    body: bytes
    content_type: str
    description: str


def demo_payload(records: int) -> Payload:
    """``records`` rows of the digits data as headerless CSV, the demo model's input."""
    from tools.demo_model import digits_rows  # noqa: PLC0415 - imports xgboost and scikit-learn

    rows = digits_rows()
    if records > len(rows):
        raise CapacityError(f"--records {records}: the demo data has {len(rows)} rows")
    lines = [",".join(f"{value:g}" for value in row) for row in rows[:records]]
    body = ("\n".join(lines) + "\n").encode()
    return Payload(
        body=body, content_type="text/csv", description=f"{records} demo CSV record(s), {len(body)} bytes"
    )


def file_payload(path: Path, content_type: str) -> Payload:
    try:
        body = path.read_bytes()
    except OSError as error:
        raise CapacityError(f"cannot read --payload {path}: {error.strerror or error}") from None
    if not body:
        raise CapacityError(f"--payload {path} is empty")
    return Payload(body=body, content_type=content_type, description=f"{path.name}, {len(body)} bytes")


def check_url(url: str) -> bool:
    """Validate ``url``; True when it points at this machine (a local measurement)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise CapacityError(
            f"--url {url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8080/invocations"
        )
    if not parts.path or parts.path == "/":
        raise CapacityError(
            f"--url {url!r} has no path: give the full path, e.g. .../invocations or .../predict"
        )
    return parts.hostname in _LOOPBACK_HOSTS or parts.hostname.startswith("127.")


def preflight(url: str, payload: Payload, headers: dict[str, str]) -> str:
    """Send the payload once; a server that cannot be reached or refuses it stops the run here.

    Returns the model version header when the server sends one.
    """
    request = urllib.request.Request(url, data=payload.body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=_PREFLIGHT_TIMEOUT_SECONDS) as response:  # noqa: S310
            return str(response.headers.get("X-Model-Version", ""))
    except urllib.error.HTTPError as error:
        body = error.read(300).decode(errors="replace").strip()
        raise CapacityError(
            f"{url} answered HTTP {error.code} to the payload ({payload.description}): "
            f"{body or error.reason}. Fix the payload, content type, URL path or API key before a load test"
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused (is the server running on that port?)"
        elif isinstance(reason, socket.gaierror):
            why = f"the host name does not resolve ({reason.strerror})"
        else:
            why = str(reason)
        raise CapacityError(f"cannot reach {url}: {why}") from None
    except (TimeoutError, OSError) as error:
        raise CapacityError(
            f"cannot reach {url}: {error} (no answer within {_PREFLIGHT_TIMEOUT_SECONDS:g} s)"
        ) from None


@dataclass(frozen=True, kw_only=True)
class Target:
    url: str
    server_pid: int | None
    """The local server's root process, for its CPU; None when it is not on this machine."""


def _local_server_pid(args: argparse.Namespace, url: str) -> int | None:
    if args.server_pid is not None:
        return int(args.server_pid)
    parts = urlsplit(url)
    if not check_url(url):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return cpu.listening_pid(port)


@contextlib.contextmanager
def _target(args: argparse.Namespace, out: TextIO) -> Iterator[Target]:
    if args.model_dir is None:
        # A deployed endpoint's CPU comes from CloudWatch, never from a process here.
        pid = None if args.endpoint_name else _local_server_pid(args, args.url)
        yield Target(url=args.url, server_pid=pid)
        return
    # Imported only here: the command also measures remote URLs, with no container code needed.
    from tools.serving import ContainerStartError, running_container  # noqa: PLC0415

    if not (args.model_dir / "xgboost-model").is_file():
        raise CapacityError(
            f"--model-dir {args.model_dir} has no xgboost-model; write one with "
            f"`python -m tools.demo_model --out {args.model_dir}`"
        )
    try:
        with running_container(args.model_dir, workers=args.workers) as container:
            print(f"capacity: started the local container (pid {container.pid}) at {container.url}", file=out)
            yield Target(url=f"{container.url}/invocations", server_pid=container.pid)
    except ContainerStartError as error:
        raise CapacityError(f"the local container did not start: {error}") from None


def _local_cpus(args: argparse.Namespace) -> int:
    if args.local_cpus is not None:
        return int(args.local_cpus)
    cpus = len(os.sched_getaffinity(0))
    return min(cpus, args.workers) if args.model_dir is not None and args.workers else cpus


STEP_HEADER = (
    f"{'users':>6} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
    f"{'srv CPU':>8} {'gen CPU':>8}"
)


def step_line(step: sizing.StepResult, p99_ms: float, cpu_target: float | None) -> str:
    """One step as the progress line printed while the test runs."""

    def ms(value: float | None) -> str:
        return f"{value:8.1f}" if value is not None else "       -"

    def percent(value: float | None) -> str:
        return f"{value:7.0f}%" if value is not None else "       -"

    verdict = ramp.why_broken(step, p99_ms, cpu_target) or "ok"
    if step.generator_saturated:
        verdict += "; generator saturated (over 90% CPU)"
    if step.phase == "refine":
        verdict += " (knee refinement)"
    return (
        f"{step.users:6d} {step.rps:9.1f} {ms(step.p50_ms)} {ms(step.p95_ms)} {ms(step.p99_ms)} "
        f"{step.errors:7d} {percent(step.server_cpu_percent)} "
        f"{percent(step.generator_cpu_percent)}  {verdict}"
    )


def _settings_used(args: argparse.Namespace) -> dict[str, Any]:
    used = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    used["api_key"] = "(set)" if args.api_key else None  # never saved
    return used


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """Everything checked and built before any load is sent."""

    users: list[int]
    scaling: sizing.Scaling
    payload: Payload
    headers: dict[str, str]
    measured_locally: bool
    context: stack.StackContext


def _resolve_stack_defaults(args: argparse.Namespace, context: stack.StackContext) -> None:
    """Fill the arguments left out from the stack being sized, so the figures fit that stack."""
    if args.instance_type is None:
        args.instance_type = str(context.get(stack.INSTANCE_TYPE_KEY, DEFAULT_INSTANCE_TYPE))
    if args.az_count is None:
        args.az_count = int(context.get(stack.AZ_COUNT_KEY, DEFAULT_AZ_COUNT))
    if args.p99_ms is None:
        args.p99_ms = float(context.get(MODEL_LATENCY_KEY, DEFAULT_P99_MS))


def prepare(args: argparse.Namespace) -> Prepared:
    """Check every argument before the load test, so a bad one does not waste a run."""
    measured_locally = args.model_dir is not None or check_url(args.url)
    if args.server_pid is not None and not cpu.psutil.pid_exists(args.server_pid):
        raise CapacityError(f"--server-pid {args.server_pid}: no such process (the server's root process)")
    if not args.generators and (args.master_bind or args.master_port):
        raise CapacityError(
            "--master-bind and --master-port set up a Locust master: give --generators N, the number "
            "of workers to wait for"
        )
    try:
        context = stack.read_stack(REPO_ROOT, args.stack)
        _resolve_stack_defaults(args, context)
        users = sizing.ramp_users(args.start_users, args.step_users, args.max_users)
        scaling = sizing.scaling_for(
            measured_locally=measured_locally,
            instance_type=args.instance_type,
            local_cpus=_local_cpus(args),
            endpoint_instances=args.endpoint_instances,
            user_factor=args.scale,
        )
        _derive(args, instance_rps=1.0)
    except ValueError as error:
        raise CapacityError(str(error)) from None
    if args.max_seconds < args.warmup_seconds + args.step_seconds:
        raise CapacityError(
            f"--max-seconds {args.max_seconds:g} cannot fit one step of --warmup-seconds "
            f"{args.warmup_seconds:g} + --step-seconds {args.step_seconds:g}"
        )
    if args.payload is None:
        payload = demo_payload(args.records)
    else:
        payload = file_payload(args.payload, args.content_type)
    headers = {"Content-Type": payload.content_type}
    if args.accept:
        headers["Accept"] = args.accept
    if args.api_key:
        headers["x-api-key"] = args.api_key
    return Prepared(
        users=users,
        scaling=scaling,
        payload=payload,
        headers=headers,
        measured_locally=measured_locally,
        context=context,
    )


def _derive(args: argparse.Namespace, *, instance_rps: float) -> sizing.FleetSettings:
    return sizing.derive_fleet(
        instance_rps=instance_rps,
        instance_type=args.instance_type,
        base_rps=args.base_rps,
        peak_rps=args.peak_rps,
        az_count=args.az_count,
        safety_factor=args.safety_factor,
        operating_fraction=args.operating_fraction,
    )


@dataclass(frozen=True, kw_only=True)
class Measurement:
    url: str
    model_version: str
    outcome: RampOutcome
    server_pid: int | None


def measure(args: argparse.Namespace, prepared: Prepared, out: TextIO) -> Measurement:
    """Check the target answers the payload, then run the Locust ramp, printing each step."""
    with _target(args, out) as target:
        url = target.url
        model_version = preflight(url, prepared.payload, prepared.headers)
        users = prepared.users
        version = f", model version {model_version}" if model_version else ""
        print(
            f"capacity: POST {url} ({prepared.payload.description}), p99 objective {args.p99_ms:g} ms, "
            f"users {users[0]}..{users[-1]}, {args.step_seconds:g} s a step{version}",
            file=out,
        )
        generators = (
            "one Locust process"
            if not args.generators
            else f"a Locust master and {args.generators} worker(s)"
            + (f" connecting to {args.master_bind}" if args.master_bind else " on this machine")
        )
        if target.server_pid is not None:
            server_cpu = f"server CPU: process tree of PID {target.server_pid}"
        elif args.endpoint_name:
            server_cpu = f"server CPU: CloudWatch, endpoint {args.endpoint_name}, after the run"
        else:
            server_cpu = "server CPU: not measured (give --server-pid or --endpoint-name)"
        print(f"capacity: load from {generators}; {server_cpu}", file=out)
        print(STEP_HEADER, file=out)
        plan = Plan(
            url=url,
            payload=prepared.payload.body,
            headers=prepared.headers,
            users=users,
            step_seconds=args.step_seconds,
            warmup_seconds=args.warmup_seconds,
            p99_ms=args.p99_ms,
            max_seconds=args.max_seconds,
            max_requests=args.max_requests,
            cpu_target=args.cpu_target,
            refine=args.refine,
            server_pid=target.server_pid,
            generators=args.generators,
            master_bind=args.master_bind,
            master_port=args.master_port,
            worker_wait_seconds=args.worker_wait_seconds,
        )
        try:
            outcome = run_ramp(
                plan,
                on_step=lambda step: print(
                    step_line(step, args.p99_ms, args.cpu_target), file=out, flush=True
                ),
            )
        except LoadEngineError as error:
            raise CapacityError(str(error)) from None
    print(f"stopped: {outcome.stop_reason}", file=out)
    if outcome.generator_saturated:
        print(
            "warning: a load generator process went above 90% CPU (the steps say which): the throughput "
            "may be its limit rather than the server's, so the capacity is a lower bound. Add generators "
            "(--generators N), run them on other machines than the server, or use fewer users.",
            file=out,
        )
    return Measurement(url=url, model_version=model_version, outcome=outcome, server_pid=target.server_pid)


def _run_record(
    args: argparse.Namespace,
    *,
    prepared: Prepared,
    measurement: Measurement,
    steps: list[sizing.StepResult],
    point: ramp.OperatingPoint,
    started_at: str,
    cloudwatch_record: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run as saved to capacity.json, before the fleet is derived."""
    chosen = point.step
    payload = prepared.payload
    return {
        "started_at": started_at,
        "url": measurement.url,
        "measured_locally": prepared.measured_locally,
        "model_version": measurement.model_version or None,
        "payload": {
            "content_type": payload.content_type,
            "bytes": len(payload.body),
            "description": payload.description,
        },
        "p99_objective_ms": args.p99_ms,
        "settings": _settings_used(args),
        "cpu_target_percent": args.cpu_target,
        "server_cpu_source": _cpu_source(measurement, args),
        "generators": args.generators,
        "steps": [report.step_record(step, args.p99_ms, args.cpu_target) for step in steps],
        "cloudwatch": cloudwatch_record,
        "stop_reason": measurement.outcome.stop_reason,
        "objective_broken": any(not step.meets(args.p99_ms) for step in steps),
        "generator_saturated": measurement.outcome.generator_saturated,
        "operating_point": None
        if chosen is None
        else report.step_record(chosen, args.p99_ms, args.cpu_target),
        "operating_point_limit": point.limit.value,
        "operating_point_reason": point.explanation,
        "measured_near_operating_fraction": None,
        "scaling": {"factor": prepared.scaling.factor, "explanation": prepared.scaling.explanation},
        "fleet": None,
        "stack_settings": None,
    }


def measure_and_size(args: argparse.Namespace, out: TextIO) -> int:
    """The whole command once the arguments are parsed; raises CapacityError for user errors."""
    prepared = prepare(args)
    out_dir: Path = args.out or REPO_ROOT / "capacity-runs" / dt.datetime.now(dt.UTC).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    measurement = measure(args, prepared, out)
    steps = measurement.outcome.steps
    cloudwatch_record: dict[str, Any] | None = None
    step_metrics: list[dict[str, float | None]] = []
    if args.endpoint_name and steps:
        steps, cloudwatch_record, step_metrics = _with_cloudwatch(args, steps, out)
    point = ramp.choose_operating_point(steps, args.p99_ms, args.cpu_target)
    chosen = point.step
    payload = prepared.payload
    record = _run_record(
        args,
        prepared=prepared,
        measurement=measurement,
        steps=steps,
        point=point,
        started_at=started_at,
        cloudwatch_record=cloudwatch_record,
    )
    for saved, figures in zip(record["steps"], step_metrics, strict=False):
        saved["cloudwatch"] = figures
    json_path, png_path = out_dir / JSON_NAME, out_dir / PNG_NAME
    title = f"{measurement.url}\n{payload.description}, p99 objective {args.p99_ms:g} ms"

    if chosen is None:
        report.write_json(json_path, record)
        report.draw_chart(png_path, steps, None, args.p99_ms, title, cpu_target=args.cpu_target)
        first = ramp.why_broken(steps[0], args.p99_ms, args.cpu_target) if steps else "none ran"
        print(
            f"\nNo step met the objective (p99 <= {args.p99_ms:g} ms, no errors, server CPU <= "
            f"{args.cpu_target:g}% where measured); the first step: {first}. "
            "Lower --start-users, raise --p99-ms, or fix the errors, then run again. No settings derived.",
            file=out,
        )
        print(f"Saved {json_path} and {png_path}", file=out)
        return EXIT_NO_CAPACITY

    settings = _derive(args, instance_rps=chosen.rps * prepared.scaling.factor)
    near = sizing.step_near_fraction(steps, chosen, args.operating_fraction, args.p99_ms)
    context = prepared.context
    concurrency = sizing.derive_concurrency(
        steps,
        chosen,
        scaling_factor=prepared.scaling.factor,
        p99_objective_ms=args.p99_ms,
        safety_factor=args.safety_factor,
    )
    values = stack.stack_settings(settings, args.instance_type, concurrency)
    record["measured_near_operating_fraction"] = (
        None if near is None else report.step_record(near, args.p99_ms, args.cpu_target)
    )
    record["fleet"] = report.fleet_record(settings)
    record["stack"] = args.stack
    record["stack_settings"] = values
    record["concurrency"] = asdict(concurrency)
    report.write_json(json_path, record)
    report.draw_chart(png_path, steps, chosen, args.p99_ms, title, cpu_target=args.cpu_target)

    summary = _summary(args, chosen=chosen, near=near, scaling=prepared.scaling, settings=settings)
    summary.insert(2, f"Chosen by: {point.limit.value} ({point.explanation})")
    summary += _stack_checks(args, settings, context)
    summary += [] if settings.burstable else concurrency.lines()
    summary += _notes(point, measurement, measured_locally=prepared.measured_locally)
    print("\n".join(summary), file=out)
    print(
        f"\nStack settings for Pulumi.{args.stack}.yaml:\n{stack.stack_yaml(values, context.project)}",
        file=out,
    )
    print(f"\nor:\n{stack.config_set_commands(values, args.stack)}", file=out)
    undeclared = sorted(set(values) - context.declared_keys) if context.declared_keys else []
    if undeclared:
        print(f"\nwarning: Pulumi.yaml declares no {', '.join(undeclared)}: check the key names", file=out)
    print(f"\nSaved {json_path} and {png_path}", file=out)
    return 0


def _notes(point: ramp.OperatingPoint, measurement: Measurement, *, measured_locally: bool) -> list[str]:
    """What the figure does not say by itself: headroom left, saturation, a front door, a local estimate."""
    notes: list[str] = []
    if point.limit is ramp.Limit.NONE:
        notes.append(
            f"note: no step broke the objective ({measurement.outcome.stop_reason}), so the server may "
            "sustain more than this: raise --max-users (or the budgets) to find its limit."
        )
    elif point.limit is ramp.Limit.SATURATION:
        notes.append(
            "note: throughput stopped rising while latency rose: the server is saturated beyond the "
            "chosen step, whatever the objective allows."
        )
    if not urlsplit(measurement.url).path.endswith("/invocations"):
        notes.append(
            "note: this went through a front door, not straight to the model server: its limits (API "
            "Gateway throttling, Lambda concurrency; locally, the single-process stand-ins) are in the "
            "figure, so an instance may carry more than this says."
        )
    if measured_locally:
        notes.append("This is a local estimate: load-test the deployed endpoint and trust that measurement.")
    return notes


def cloudwatch_client(region: str | None) -> Any:
    """A CloudWatch client (a function, so tests can hand in a stubbed one)."""
    import boto3  # noqa: PLC0415 - only runs against a deployed endpoint

    return boto3.client("cloudwatch", region_name=region)


def _with_cloudwatch(
    args: argparse.Namespace, steps: list[sizing.StepResult], out: TextIO
) -> tuple[list[sizing.StepResult], dict[str, Any] | None, list[dict[str, float | None]]]:
    """The steps with the endpoint's CPU from CloudWatch, the metrics as saved, and each step's figures."""
    import botocore.exceptions  # noqa: PLC0415

    window = cloudwatch.window_of(steps)
    if window is None:
        return steps, None, []
    if args.step_seconds < cloudwatch.PERIOD_SECONDS:
        print(
            f"note: CloudWatch has one figure a minute; with {args.step_seconds:g} s steps several steps "
            f"share one (use --step-seconds {cloudwatch.PERIOD_SECONDS} or more for a figure per step)",
            file=out,
        )
    print(
        f"capacity: reading CloudWatch metrics of {args.endpoint_name} "
        f"(waiting up to {args.metrics_wait_seconds:g} s for the last minute)",
        file=out,
        flush=True,
    )
    try:
        metrics = cloudwatch.wait_for_metrics(
            cloudwatch_client(args.region),
            args.endpoint_name,
            *window,
            wait_seconds=args.metrics_wait_seconds,
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        print(f"warning: could not read CloudWatch metrics of {args.endpoint_name}: {error}", file=out)
        return steps, None, []
    vcpus = sizing.vcpus_of(args.instance_type)
    figures = [
        cloudwatch.step_figures(metrics, step.started_at or 0.0, step.ended_at or 0.0, vcpus)
        for step in steps
    ]
    with_cpu = [
        replace(step, server_cpu_percent=figure["server_cpu_percent"])
        for step, figure in zip(steps, figures, strict=True)
    ]
    for step in with_cpu:
        print(step_line(step, args.p99_ms, args.cpu_target), file=out)
    return with_cpu, metrics.to_record(), figures


def _cpu_source(measurement: Measurement, args: argparse.Namespace) -> str | None:
    if measurement.server_pid is not None:
        return f"process tree of PID {measurement.server_pid}"
    if args.endpoint_name:
        return f"CloudWatch CPUUtilization of endpoint {args.endpoint_name} / its vCPUs"
    return None


def _stack_checks(
    args: argparse.Namespace, settings: sizing.FleetSettings, context: stack.StackContext
) -> list[str]:
    """The derived fleet against the stack's quotas and its API front door's rate limit."""
    itype = args.instance_type
    if settings.burstable:
        largest = settings.fixed_instances
    else:
        largest = settings.max_instances or settings.min_instances
    variant = fleet.VariantFleet(
        resource_name=f"{context.project}:{stack.MAX_INSTANCES_KEY}",
        instance_type=itype,
        max_instances=largest,
        update_mode=context.update_mode,
        rolling_batch_percent=int(context.get(stack.ROLLING_BATCH_KEY, 20)),
    )
    source = f"Pulumi.{args.stack}.yaml" if context.stack_file_found else "a new account's defaults"
    shortfalls = fleet.quota_shortfalls([variant], context.quotas)
    verdict = f"within the quotas in {source}" if not shortfalls else f"the quotas in {source} fall short:"
    lines = [
        f"Quota: a {variant.update_mode.value} update of {largest} x {itype} runs {variant.peak} "
        f"at once; {verdict}"
    ]
    lines += [f"  {shortfall.message()}" for shortfall in shortfalls]
    api_rate = context.get(stack.API_RATE_KEY)
    if settings.peak_rps is not None and isinstance(api_rate, int | float) and settings.peak_rps > api_rate:
        lines.append(
            f"warning: the API front door of stack {args.stack} allows {api_rate:g} req/s "
            f"({stack.API_RATE_KEY}); traffic through it is throttled (HTTP 429) below the peak of "
            f"{settings.peak_rps:g} req/s: raise {stack.API_RATE_KEY}"
        )
    return lines


def _users(count: int) -> str:
    return f"{count} user" if count == 1 else f"{count} users"


def _summary(
    args: argparse.Namespace,
    *,
    chosen: sizing.StepResult,
    near: sizing.StepResult | None,
    scaling: sizing.Scaling,
    settings: sizing.FleetSettings,
) -> list[str]:
    itype = args.instance_type
    target = settings.target_invocations_per_minute
    lines = [
        "",
        f"Measured capacity: {chosen.rps:,.1f} req/s at {_users(chosen.users)} "
        f"(p99 {chosen.p99_ms:.1f} ms <= {args.p99_ms:g} ms, no errors"
        + (
            f", server CPU {chosen.server_cpu_percent:.0f}% <= {args.cpu_target:g}%)"
            if chosen.server_cpu_percent is not None
            else ", server CPU not measured)"
        ),
        f"Scaling: {scaling.explanation}",
        f"One {itype}: MAX_RPS {settings.instance_rps:,.1f} req/s",
        "Scaling target (SageMakerVariantInvocationsPerInstance, per minute per instance): "
        f"{settings.instance_rps:,.1f} x {settings.safety_factor:g} x 60 = {target:,}",
        f"~{settings.operating_fraction:.0%} operating point: {settings.operating_rps:,.1f} req/s "
        f"per instance = {settings.operating_invocations_per_minute:,} invocations/minute",
    ]
    if near is not None:
        lines.append(
            f"  measured at or below {settings.operating_fraction:.0%} of the capacity: "
            f"{near.rps:,.1f} req/s at {_users(near.users)}, p99 {near.p99_ms:.1f} ms"
        )
    lines.append(
        f"Minimum instances: base load {settings.base_rps:g} req/s needs {settings.instances_for_base} "
        f"at the operating point; to keep that after losing 1 of {settings.az_count} AZs: "
        f"{settings.min_instances}"
    )
    if settings.burstable:
        lines.append(
            f"warning: {itype} is burstable: SageMaker cannot autoscale it and it throttles to its "
            "CPU-credit baseline, so no scaling settings are given; use a non-burstable type in production"
        )
        basis = "peak" if settings.peak_rps is not None else "base"
        lines.append(
            f"Fixed fleet: the {basis} load at the operating point, surviving the loss of 1 of "
            f"{settings.az_count} AZs: {settings.fixed_instances}"
        )
    elif settings.max_instances is not None and settings.peak_rps_per_instance is not None:
        lines.append(
            f"Maximum instances: peak {settings.peak_rps:g} req/s at the target "
            f"({target / 60:,.1f} req/s each): {settings.max_instances} "
            f"({settings.peak_rps_per_instance:,.1f} req/s each at the peak, "
            f"{settings.peak_rps_per_instance / settings.instance_rps:.0%} of capacity)"
        )
    else:
        lines.append("Maximum instances: give --peak-rps to size the maximum")
    return lines


def worker_main(argv: Sequence[str]) -> int:
    """``python -m tools.capacity --worker --master-host HOST``: a Locust worker for a master
    started elsewhere with ``--generators N --master-bind ADDRESS``; it takes the plan from it."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.capacity --worker",
        description="Run the users of a capacity test whose master runs on another machine.",
    )
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--master-host", required=True, help="address of the machine running the master")
    parser.add_argument(
        "--master-port",
        type=arguments.positive_int,
        default=DEFAULT_MASTER_PORT,
        help="its --master-port (default 5557)",
    )
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "tools.capacity.engine", "--worker", "--master-host", args.master_host]
    print(f"capacity: worker for the master at {args.master_host}:{args.master_port}", file=sys.stderr)
    return subprocess.call([*command, "--master-port", str(args.master_port)], cwd=REPO_ROOT)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in arguments:
        return worker_main(arguments)
    args = build_parser().parse_args(arguments)
    try:
        return measure_and_size(args, sys.stdout)
    except CapacityError as error:
        print(f"capacity: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("capacity: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The output was piped into a reader that quit (e.g. `| head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
