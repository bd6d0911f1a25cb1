"""``python -m tools.simulate --stack STACK [options]`` (``make simulate STACK=... ARGS="..."``).

Plays a stack through traffic and failures and writes ``DIR/simulation.json`` and
``DIR/simulation.png``. Exit codes: 0, 1 when ``--max-failed-percent`` is exceeded, 2 for input the
simulator cannot use (a message says what to change, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from stackcore import StackConfigError, load_stack
from stackcore.instance_types import UnknownInstanceTypeError
from tools.arguments import non_negative_float, positive_float
from tools.simulate import chart, fast, reference, service, traffic
from tools.simulate.constants import ConstantError, with_overrides
from tools.simulate.control import FailureEvent
from tools.simulate.inputs import SimulationInput
from tools.simulate.outcome import Outcome
from tools.simulate.scenario import SimulationInputError, fleet_from_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_OK, EXIT_FAILED_OVER_LIMIT, EXIT_INPUT = 0, 1, 2
JSON_NAME, PNG_NAME = "simulation.json", "simulation.png"

SEED_RPS_PER_INSTANCE = 125.0
"""The seed's load test sent 100-150 req/s to each ml.t2.medium: the seed preset's default."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"error: {message}\n")


def _credits(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected credit balances such as 40,120") from None
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: balances are numbers >= 0")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m tools.simulate",
        description="Play a stack through hours of traffic and failures, before deploying it.",
    )
    parser.add_argument("--stack", default="prod", help="stack name: Pulumi.<stack>.yaml (default prod)")
    parser.add_argument("--project-dir", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack setting for this run",
    )
    parser.add_argument(
        "--traffic",
        default="step",
        help=f"a preset ({', '.join(traffic.PRESETS)}) or a CSV file of minute,rps (default step)",
    )
    parser.add_argument("--base-rps", type=non_negative_float, help="the presets' base load (req/s)")
    parser.add_argument("--peak-rps", type=positive_float, help="the presets' peak load (req/s)")
    parser.add_argument(
        "--minutes", type=positive_float, help="length of a preset (default: the preset's own)"
    )
    capacity = parser.add_mutually_exclusive_group()
    capacity.add_argument(
        "--instance-rps", type=positive_float, help="requests/s one instance serves at full CPU"
    )
    capacity.add_argument(
        "--capacity", type=Path, help="a capacity.json from make capacity (the service model)"
    )
    parser.add_argument(
        "--lose-instance", type=non_negative_float, action="append", default=[], metavar="MINUTE"
    )
    parser.add_argument("--lose-az", type=non_negative_float, action="append", default=[], metavar="MINUTE")
    parser.add_argument(
        "--deploy",
        type=non_negative_float,
        action="append",
        default=[],
        metavar="MINUTE",
        help="start an update as the stack declares it (blue/green with its traffic shifting, or rolling)",
    )
    parser.add_argument("--routing", help="RANDOM or LEAST_OUTSTANDING_REQUESTS (default: the stack's)")
    parser.add_argument("--scaling-metric", help="invocations, concurrency or both (default: the stack's)")
    parser.add_argument("--concurrency-target", type=positive_float, help="target of the concurrency metric")
    parser.add_argument(
        "--no-front-door",
        action="store_true",
        help="callers invoke SageMaker directly (no API Gateway, no Lambda)",
    )
    parser.add_argument(
        "--credit-balance",
        type=_credits,
        default=(),
        help="starting CPU credits of the initial instances, comma-separated (default: launch credits)",
    )
    parser.add_argument("--price-per-hour", type=positive_float, help="on-demand USD per instance-hour")
    parser.add_argument(
        "--set-constant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a modelled constant",
    )
    parser.add_argument("--constants", type=Path, help="a JSON object of constant name -> value")
    parser.add_argument("--engine", choices=("fast", "reference"), default="fast")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same inputs and seed, same output)")
    parser.add_argument("--out", type=Path, default=Path("build/simulation"), help="output directory")
    parser.add_argument(
        "--max-failed-percent",
        type=non_negative_float,
        help="exit 1 when more than this share of requests fails",
    )
    return parser


def _overrides(pairs: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SimulationInputError(f"--set {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value
    return values


def prepare(args: argparse.Namespace) -> SimulationInput:
    """The run the arguments describe; SimulationInputError (or a stack or constant error) otherwise."""
    settings = load_stack(args.project_dir, args.stack, _overrides(args.set))
    spec = fleet_from_stack(
        settings,
        routing=args.routing,
        scaling_metric=args.scaling_metric,
        concurrency_target=args.concurrency_target,
        front_door=not args.no_front_door,
        price_per_hour_usd=args.price_per_hour,
    )
    if args.capacity is not None:
        model = service.from_capacity_file(args.capacity)
    elif args.instance_rps is not None:
        model = service.from_instance_rps(args.instance_rps, spec.vcpus)
    else:
        raise SimulationInputError(
            "give --instance-rps N (requests/s one instance serves) or --capacity capacity.json "
            "(make capacity)"
        )
    name = str(args.traffic)
    if name in traffic.PRESETS:
        peak = args.peak_rps or settings.expected_peak_rps
        base = args.base_rps if args.base_rps is not None else settings.expected_base_rps
        if name == "seed" and not args.peak_rps:
            peak = SEED_RPS_PER_INSTANCE * spec.initial_instances
        if not peak:
            peak = 0.8 * spec.initial_instances * model.instance_rps
        if not base:
            base = peak / 2
        if base > peak:
            raise SimulationInputError(f"the base load ({base:g} req/s) is above the peak ({peak:g} req/s)")
        offered = traffic.preset(name, base_rps=base, peak_rps=peak, minutes=args.minutes)
    elif Path(name).suffix.lower() == ".csv" or Path(name).exists():
        offered = traffic.from_csv(Path(name))
    else:
        raise SimulationInputError(
            f"--traffic {name!r} is neither a preset ({', '.join(traffic.PRESETS)}) nor a CSV file"
        )
    failures = [FailureEvent(kind="lose-instance", minute=m) for m in args.lose_instance]
    failures += [FailureEvent(kind="lose-az", minute=m) for m in args.lose_az]
    failures += [FailureEvent(kind="deploy", minute=m) for m in args.deploy]
    run_minutes = offered.seconds / 60
    late = [f for f in failures if f.minute >= run_minutes]
    if late:
        # An event that never happens would let a --max-failed-percent gate pass a scenario unplayed.
        raise SimulationInputError(
            ", ".join(f"--{f.kind} {f.minute:g}" for f in late)
            + f" is at or after the end of the {run_minutes:g}-minute run: choose an earlier minute "
            "or a longer run (--minutes, or a longer CSV)"
        )
    return SimulationInput(
        spec=spec,
        service=model,
        traffic=offered,
        constants=with_overrides(args.set_constant, args.constants),
        failures=tuple(failures),
        seed=args.seed,
        initial_credits=tuple(args.credit_balance),
    )


def run(simulation: SimulationInput, engine: str = "fast") -> Outcome:
    return (reference.simulate if engine == "reference" else fast.simulate)(simulation)


def describe(outcome: Outcome) -> str:
    summary = outcome.summary()
    requests = summary["requests"]
    reasons = requests["failures_by_reason"]
    lines = [
        f"{outcome.spec.stack}: {outcome.spec.initial_instances} x {outcome.spec.instance_type}, "
        f"{outcome.traffic_name} traffic, {outcome.traffic_seconds / 60:.0f} min ({outcome.engine} engine)",
        f"requests: {requests['offered']:,.0f} offered, {requests['served']:,.0f} served, "
        f"{requests['failed']:,.0f} failed ({requests['failed_percent']:.3f}%: "
        f"timeout {reasons['timeout']:,.0f}, "
        f"shed {reasons['shed']:,.0f}, throttled {reasons['throttled']:,.0f})",
        f"p99 {summary['p99_ms'] or 0:,.1f} ms over the run; "
        f"{summary['minutes_over_latency_objective']} minute(s) "
        f"over the {summary['latency_objective_ms']:g} ms objective",
        f"{summary['instance_hours']:.2f} instance-hours"
        + (f", ${summary['cost_usd']:.2f} on demand" if summary["cost_usd"] is not None else ""),
    ]
    for event in outcome.events:
        if event.kind in (
            "lose-instance",
            "lose-az",
            "unhealthy",
            "in-service",
            "credits",
            "scaling",
            "deploy",
            "quota",
        ):
            lines.append(f"  {event.t_seconds / 60:7.1f} min  {event.detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    try:
        simulation = prepare(args)
    except (SimulationInputError, ConstantError, StackConfigError, UnknownInstanceTypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    outcome = run(simulation, args.engine)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / JSON_NAME).write_text(json.dumps(outcome.record(), indent=1) + "\n")
    title = (
        f"{simulation.spec.stack}: {simulation.spec.initial_instances} x {simulation.spec.instance_type}, "
        f"{outcome.traffic_name} traffic, {outcome.service_description}"
    )
    chart.draw(outcome, out_dir / PNG_NAME, title)
    over_limit = args.max_failed_percent is not None and outcome.failed_percent() > args.max_failed_percent
    try:
        print(describe(outcome), file=out)
        print(f"Saved {out_dir / JSON_NAME} and {out_dir / PNG_NAME}", file=out)
        if over_limit:
            print(
                f"{outcome.failed_percent():.3f}% of requests failed, "
                f"over --max-failed-percent {args.max_failed_percent:g}",
                file=out,
            )
        out.flush()
    except BrokenPipeError:
        # The reader of a pipe quit (e.g. `| head`): the files are written and the verdict stands.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_FAILED_OVER_LIMIT if over_limit else EXIT_OK
