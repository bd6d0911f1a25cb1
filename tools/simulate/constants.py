"""Every constant the fleet simulator models, each with its source, and every one overridable.

A constant is a number the model takes from AWS's documentation, from a measurement of this
project, or (where AWS publishes nothing) from the seed incident; ``source`` says which. Override
any of them with ``--set-constant name=value`` or ``--constants FILE.json`` (an object of
name -> number); an unknown name or a non-number is a :class:`ConstantError` naming it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

EC2_STANDARD_MODE_URL = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-performance-instances-standard-mode-concepts.html"
SAGEMAKER_BYOC_URL = "https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html"
SAGEMAKER_SCALING_URL = (
    "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html"
)
AAS_TARGET_TRACKING_URL = "https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html"
APIGW_QUOTAS_URL = "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"
LAMBDA_QUOTAS_URL = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
SAGEMAKER_PRICING_URL = "https://aws.amazon.com/sagemaker/pricing/"


class ConstantError(ValueError):
    """An override that names no constant, or a value that is not a usable number."""


@dataclass(frozen=True, kw_only=True)
class Constant:
    name: str
    value: float
    unit: str
    meaning: str
    source: str
    """Title of the page (or the measurement) the figure comes from."""
    url: str = ""
    minimum: float = 0.0


CONSTANTS: tuple[Constant, ...] = (
    Constant(
        name="sagemaker_invocation_timeout_s",
        value=60,
        unit="s",
        meaning="an invocation that has not answered by then fails (the container's work is lost)",
        source="SageMaker guide, 'Use your own inference code with hosting services' (respond within 60 s)",
        url=SAGEMAKER_BYOC_URL,
        minimum=1,
    ),
    Constant(
        name="api_gateway_timeout_s",
        value=29,
        unit="s",
        meaning="the front door gives up on a request after this (the instance still works on it)",
        source="API Gateway quotas page: REST API integration timeout 29 s by default",
        url=APIGW_QUOTAS_URL,
        minimum=1,
    ),
    Constant(
        name="api_gateway_account_rps",
        value=10_000,
        unit="req/s",
        meaning="account throttle per Region; requests above it get 429 (throttled); its 5,000-request "
        "burst is less than a second of it and is not modelled",
        source="API Gateway quotas page: 10,000 req/s steady rate per account and Region",
        url=APIGW_QUOTAS_URL,
        minimum=1,
    ),
    Constant(
        name="lambda_concurrency_limit",
        value=1_000,
        unit="executions",
        meaning="front-door Lambda executions in flight at once; a request beyond it is throttled",
        source="Lambda quotas page: 1,000 concurrent executions per Region by default",
        url=LAMBDA_QUOTAS_URL,
        minimum=1,
    ),
    Constant(
        name="ping_timeout_s",
        value=2,
        unit="s",
        meaning="a /ping slower than this is a failed health check",
        source="SageMaker guide, 'Use your own inference code with hosting services' "
        "(/ping times out after 2 s)",
        url=SAGEMAKER_BYOC_URL,
        minimum=0.001,
    ),
    Constant(
        name="health_check_interval_s",
        value=10,
        unit="s",
        meaning="seconds between two health checks of an instance",
        source="not published by AWS; assumed (overridable)",
        minimum=1,
    ),
    Constant(
        name="health_check_failures",
        value=3,
        unit="checks",
        meaning="consecutive failed health checks before an instance is marked unhealthy",
        source="not published by AWS; assumed (overridable)",
        minimum=1,
    ),
    Constant(
        name="ping_queue_fraction",
        value=0.0,
        unit="fraction",
        meaning="share of the request backlog a /ping waits behind: 0 for this project's container "
        "(/ping p99 7 ms while batches saturate it), 1 for AWS's built-in container (p99 304 ms, up to 2 s)",
        source="this project's side-by-side benchmark, 2026-12-01 (docs/serving.md)",
        minimum=0,
    ),
    Constant(
        name="termination_s",
        value=300,
        unit="s",
        meaning="from an instance marked unhealthy to its termination (the seed incident: 5 minutes)",
        source="the seed incident's CloudWatch timeline; AWS publishes no figure",
    ),
    Constant(
        name="launch_s",
        value=420,
        unit="s",
        meaning="from a launch (replacement, scale-out, new fleet) to the instance taking traffic "
        "(the seed incident: 7 minutes)",
        source="the seed incident's CloudWatch timeline; AWS publishes no figure",
    ),
    Constant(
        name="scale_out_datapoints",
        value=3,
        unit="datapoints",
        meaning="breaching datapoints before target tracking scales out",
        source="Application Auto Scaling, target tracking: the high alarm needs 3 datapoints of 1 minute",
        url=AAS_TARGET_TRACKING_URL,
        minimum=1,
    ),
    Constant(
        name="scale_in_datapoints",
        value=15,
        unit="datapoints",
        meaning="datapoints below 90% of the target before target tracking scales in",
        source="Application Auto Scaling, target tracking: the low alarm needs 15 datapoints of 1 minute",
        url=AAS_TARGET_TRACKING_URL,
        minimum=1,
    ),
    Constant(
        name="scale_in_threshold_fraction",
        value=0.9,
        unit="fraction",
        meaning="the scale-in alarm fires below this fraction of the target",
        source="Application Auto Scaling, target tracking (the low alarm sits at 90% of the target)",
        url=AAS_TARGET_TRACKING_URL,
        minimum=0.01,
    ),
    Constant(
        name="invocations_metric_period_s",
        value=60,
        unit="s",
        meaning="period of SageMakerVariantInvocationsPerInstance (a per-minute metric)",
        source="SageMaker guide, 'Define a scaling policy' (standard metrics once a minute)",
        url=SAGEMAKER_SCALING_URL,
        minimum=1,
    ),
    Constant(
        name="concurrency_metric_period_s",
        value=10,
        unit="s",
        meaning="period of SageMakerVariantConcurrentRequestsPerModelHighResolution",
        source="SageMaker guide, 'Define a scaling policy' (high-resolution metric every 10 s)",
        url=SAGEMAKER_SCALING_URL,
        minimum=1,
    ),
    Constant(
        name="instance_queue_limit",
        value=2048,
        unit="requests",
        meaning="requests an instance holds before refusing more (503, shed): Gunicorn's listen backlog",
        source="Gunicorn settings, backlog (default 2048)",
        url="https://docs.gunicorn.org/en/stable/settings.html#backlog",
        minimum=1,
    ),
)

_BY_NAME = {c.name: c for c in CONSTANTS}


@dataclass(frozen=True)
class Constants:
    """The constants of one run: the defaults above with the user's overrides."""

    values: Mapping[str, float]

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def overridden(self) -> dict[str, float]:
        return {k: v for k, v in self.values.items() if _BY_NAME[k].value != v}


DEFAULTS = Constants({c.name: float(c.value) for c in CONSTANTS})


def _number(name: str, raw: object) -> float:
    if isinstance(raw, bool):
        raise ConstantError(f"constant {name}: {raw!r} is not a number")
    try:
        value = float(raw)  # pyright: ignore[reportArgumentType]
    except (TypeError, ValueError):
        raise ConstantError(f"constant {name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConstantError(f"constant {name}: {raw!r} is not a finite number")
    if value < _BY_NAME[name].minimum:
        raise ConstantError(f"constant {name}: {value:g} is below its minimum {_BY_NAME[name].minimum:g}")
    return value


def with_overrides(pairs: Iterable[str] = (), json_file: Path | None = None) -> Constants:
    """The defaults with a JSON file's values, then ``name=value`` pairs, applied."""
    values = dict(DEFAULTS.values)
    updates: list[tuple[str, object]] = []
    if json_file is not None:
        try:
            document = json.loads(json_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConstantError(f"cannot read constants file {json_file}: {error}") from None
        if not isinstance(document, dict):
            raise ConstantError(f"{json_file} must hold a JSON object of constant name -> number")
        updates += [(str(k), v) for k, v in document.items()]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise ConstantError(f"--set-constant {pair!r}: expected name=value")
        updates.append((name.strip(), raw.strip()))
    for name, raw in updates:
        if name not in _BY_NAME:
            raise ConstantError(f"unknown constant {name!r}; known: {', '.join(sorted(_BY_NAME))}")
        values[name] = _number(name, raw)
    return Constants(values)


PRICE_TABLE_DATE = "2026-12-01"
PRICE_TABLE_SOURCE = (
    "Amazon SageMaker AI pricing, real-time inference, on-demand, US East (N. Virginia), as recorded "
    f"on {PRICE_TABLE_DATE} (the page could not be re-read from this machine: check it, or pass "
    "--price-per-hour)"
)
PRICE_PER_HOUR_USD: dict[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.t2.large": 0.111,
    "ml.t2.xlarge": 0.223,
    "ml.t2.2xlarge": 0.445,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.c6i.large": 0.102,
    "ml.c6i.xlarge": 0.204,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
}


def describe() -> list[dict[str, object]]:
    """The constants as records, for the JSON output and the docs."""
    return [
        {
            "name": c.name,
            "value": c.value,
            "unit": c.unit,
            "meaning": c.meaning,
            "source": c.source,
            "url": c.url,
        }
        for c in CONSTANTS
    ]
