"""``python -m tools.watch``: read a deployed endpoint every few seconds while it is load-tested.

Examples::

    # the prod stack's endpoint (its name and region from Pulumi.prod.yaml), every 30 s for an hour
    python -m tools.watch --stack prod --every 30 --duration 3600

    # beside a capacity run: stop when it ends
    python -m tools.capacity --url https://.../prod/predict --endpoint-name xgboost-endpoint-prod &
    python -m tools.watch --stack prod --until-pid $!
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from botocore.exceptions import BotoCoreError, ClientError

from stackcore import endpoint_metrics as em
from stackcore import keys
from stackcore.instance_types import UnknownInstanceTypeError, instance_type
from stackcore.layering import read_stack_values
from stackcore.problems import StackConfigError
from stackcore.settings import endpoint_name as stack_endpoint_name
from tools import arguments
from tools.watch import timeline
from tools.watch.watcher import Clients, Reading, WatchError, endpoint_subnets, read_once, reading_line

REPO_ROOT = Path(__file__).resolve().parents[2]
JSON_NAME = "timeline.json"
PNG_NAME = "timeline.png"
EXIT_ERROR = 2
MAX_FAILED_READINGS_IN_A_ROW = 5
"""Readings that may fail one after another (throttling, the network) before the watch stops."""
MIN_EVERY_SECONDS = 1.0
"""The shortest interval: each reading is three API calls (DescribeEndpoint, DescribeSubnets,
GetMetricData), and CloudWatch's endpoint metrics change once a minute."""


def _interval(text: str) -> float:
    value = float(text)
    if not value >= MIN_EVERY_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_EVERY_SECONDS:g} s, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.watch",
        description="Every few seconds: the endpoint's status and instance counts, the free addresses "
        "of its subnets and its CloudWatch metrics; a live line, a timeline JSON and a PNG.",
    )
    parser.add_argument("--stack", default="prod", help="stack whose endpoint to watch (default prod)")
    parser.add_argument("--endpoint-name", help="default: the stack's (<project>-<stack>)")
    parser.add_argument("--variant-name", default=em.VARIANT_NAME, help=f"default {em.VARIANT_NAME}")
    parser.add_argument("--region", help="default: the stack's aws:region, else boto3's")
    parser.add_argument(
        "--subnet-ids", nargs="+", help="subnets to count free addresses in (default: the endpoint model's)"
    )
    parser.add_argument(
        "--instance-type", help="for CPU as a share of the instance (default: the stack's instanceType)"
    )
    parser.add_argument(
        "--every",
        type=_interval,
        default=30.0,
        help=f"seconds between readings, at least {MIN_EVERY_SECONDS:g} (default 30)",
    )
    parser.add_argument("--duration", type=arguments.positive_float, help="stop after this many seconds")
    parser.add_argument("--until-pid", type=int, help="stop when this process (e.g. a capacity run) exits")
    parser.add_argument("--max-readings", type=int, help="stop after this many readings (default: no limit)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for timeline.json and timeline.png (default watch-runs/<UTC time>)",
    )
    return parser


def _stack_defaults(args: argparse.Namespace) -> None:
    """Fill the endpoint name, region and instance type from the stack, where not given."""
    try:
        values = read_stack_values(REPO_ROOT, args.stack, check_keys=False)
    except StackConfigError as error:
        if args.endpoint_name is None or args.region is None:
            raise WatchError(f"{error} (or give --endpoint-name and --region)") from None
        values = None
    project = values.project if values is not None else "xgboost-endpoint"
    if args.endpoint_name is None:
        args.endpoint_name = stack_endpoint_name(project, args.stack)
    stack_values = values.values if values is not None else {}
    if args.region is None and stack_values.get(keys.AWS_REGION):
        args.region = str(stack_values[keys.AWS_REGION])
    if args.instance_type is None:
        configured = stack_values.get(f"{project}:{keys.INSTANCE_TYPE}")
        args.instance_type = str(configured) if configured else None


def _vcpus(name: str | None) -> int | None:
    if not name:
        return None
    try:
        return instance_type(name).vcpus
    except UnknownInstanceTypeError:
        return None


def default_clients(region: str | None) -> Clients:
    import boto3  # noqa: PLC0415

    session = boto3.Session(region_name=region)
    return Clients(
        sagemaker=session.client("sagemaker"),
        ec2=session.client("ec2"),
        cloudwatch=session.client("cloudwatch"),
    )


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(
    args: argparse.Namespace,
    clients: Clients,
    out: TextIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Read until a stop condition; write the JSON after every reading and the PNG at the end."""
    subnet_ids = (
        list(args.subnet_ids)
        if args.subnet_ids
        else endpoint_subnets(clients, args.endpoint_name, args.variant_name)
    )
    if not subnet_ids:
        print(
            f"watch: note: endpoint {args.endpoint_name}'s model has no VPC subnets: no addresses to count",
            file=out,
        )
    vcpus = _vcpus(args.instance_type)
    out_dir: Path = args.out or REPO_ROOT / "watch-runs" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path, png_path = out_dir / JSON_NAME, out_dir / PNG_NAME
    print(
        f"watch: endpoint {args.endpoint_name} ({args.variant_name}) "
        f"in {args.region or 'the default region'}, "
        f"subnets {', '.join(subnet_ids)}, every {args.every:g} s",
        file=out,
        flush=True,
    )
    readings: list[Reading] = []
    started = clock()
    stop = ""
    failed_in_a_row = 0
    try:
        while True:
            try:
                reading = read_once(clients, args.endpoint_name, subnet_ids, variant_name=args.variant_name)
            except (BotoCoreError, ClientError, WatchError) as error:
                # A throttle or a network blip must not end a two-hour watch without its timeline.
                failed_in_a_row += 1
                print(f"watch: reading {len(readings) + 1} failed: {error}", file=out, flush=True)
                if failed_in_a_row >= MAX_FAILED_READINGS_IN_A_ROW:
                    stop = f"{failed_in_a_row} readings in a row failed, the last with: {error}"
                    break
            else:
                failed_in_a_row = 0
                readings.append(reading)
                print(reading_line(reading, vcpus), file=out, flush=True)
                record = timeline.timeline_record(
                    readings,
                    endpoint_name=args.endpoint_name,
                    variant_name=args.variant_name,
                    region=args.region,
                    subnet_ids=subnet_ids,
                    every_seconds=args.every,
                    vcpus=vcpus,
                )
                timeline.write_json(json_path, record)
            if args.max_readings is not None and len(readings) >= args.max_readings:
                stop = f"{len(readings)} readings taken"
                break
            if args.duration is not None and clock() - started + args.every > args.duration:
                stop = f"duration of {args.duration:g} s reached"
                break
            if args.until_pid is not None and not pid_running(args.until_pid):
                stop = f"process {args.until_pid} exited"
                break
            sleep(args.every)
            if args.until_pid is not None and not pid_running(args.until_pid):
                stop = f"process {args.until_pid} exited"
                break
    except KeyboardInterrupt:
        stop = "interrupted"
    title = f"endpoint {args.endpoint_name} ({args.variant_name}): {len(readings)} readings"
    if readings:
        timeline.draw_timeline(png_path, readings, title=title, vcpus=vcpus)
    print(f"watch: stopped ({stop}); saved {json_path} and {png_path}", file=out)
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.duration is None and args.until_pid is None and args.max_readings is None:
        print("watch: no --duration, --until-pid or --max-readings: reading until Ctrl-C", file=sys.stderr)
    if args.until_pid is not None and not pid_running(args.until_pid):
        print(f"watch: error: process {args.until_pid} is not running", file=sys.stderr)
        return EXIT_ERROR
    try:
        _stack_defaults(args)
        watch(args, default_clients(args.region), sys.stdout)
    except WatchError as error:
        print(f"watch: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except (BotoCoreError, ClientError) as error:
        print(f"watch: error: AWS: {error}", file=sys.stderr)
        return EXIT_ERROR
    return 0
