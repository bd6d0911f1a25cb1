"""The stack's settings: read once from the Pulumi configuration, typed, frozen and validated.

Every key, its type and its default are declared in ``Pulumi.yaml``; this module repeats none of
the defaults. :func:`load` reads every key, checks every rule and raises one :class:`ConfigError`
listing every problem, each naming the key and the fix, so that a preview fails with a message a
user can act on instead of an AWS error twenty minutes into an update.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pulumi

from components.endpoint import ENDPOINT_NAME_MAX, TrafficRouting
from components.front_door import MIN_TIMEOUT_SECONDS as MIN_LAMBDA_TIMEOUT_SECONDS
from lib import deployment, fleet
from lib.fleet import QuotaTable, UpdateMode, VariantFleet

PROJECT = "xgboost-endpoint"

INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("sagemaker.runtime", "ecr.api", "ecr.dkr", "logs", "sts")
"""Interface VPC endpoints in every private subnet; each puts one ENI (one address) in each subnet."""

MIN_SUBNETS = 2
"""SageMaker refuses a VPC-attached endpoint with fewer than two subnets in distinct AZs."""

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
"""The retention periods CloudWatch Logs accepts."""

API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29

PROVIDER_ENDPOINT_WAIT_MINUTES = 60
"""How long terraform-provider-aws (under pulumi-aws) waits for an endpoint to be InService. The
resource has no Timeouts block: Pulumi's custom timeouts cannot lengthen it."""

DEPLOYMENT_BUDGET_MINUTES = 55
"""The longest worst-case deployment accepted: the provider's wait less a margin."""

PROVISIONING_ALLOWANCE_SECONDS = 600
"""Worst case for SageMaker to launch a fleet (or a rolling batch) and pass its health checks."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_S3_MODEL_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+\.tar\.gz)$")
_AZ = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")


class Environment(enum.StrEnum):
    DEV = "dev"
    PROD = "prod"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One invalid setting: the key, what is wrong, and what to do about it."""

    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{PROJECT}:{self.key}: {self.problem}. Fix: {self.fix}"


def _outside_range(key: str, value: int, low: int, high: int, unit: str) -> list[Problem]:
    """The problem of a setting outside ``low``-``high`` (inclusive), if it is."""
    if low <= value <= high:
        return []
    return [Problem(key=key, problem=f"{value}{unit}", fix=f"choose {low}-{high}")]


class ConfigError(Exception):
    """The stack configuration cannot be deployed; every problem found is listed, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s):\n{lines}")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.problems)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the program needs from the stack configuration, validated."""

    project_dir: Path
    """Directory of Pulumi.yaml; local paths are relative to it."""
    endpoint_name: str
    """``<project>-<stack>``: fixed so alarms can name the endpoint before it exists, unique per stack."""
    environment: Environment
    availability_zones: tuple[str, ...]
    """Explicit zones; empty means the first ``az_count`` zones of the region."""
    az_count: int
    vpc_cidr: str
    subnet_prefix_length: int
    subnet_headroom_percent: int
    nat_gateway: bool
    instance_type: str
    initial_instance_count: int
    autoscaling: bool
    min_instances: int
    max_instances: int
    invocations_per_instance_target: int
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int
    update_mode: UpdateMode
    traffic_routing: TrafficRouting
    traffic_step_percent: int
    traffic_wait_seconds: int
    termination_wait_seconds: int
    maximum_execution_timeout_seconds: int
    auto_rollback: bool
    rolling_batch_percent: int
    rolling_wait_seconds: int
    quotas: QuotaTable
    check_live_quotas: bool
    region: str
    """``aws:region``, for the live quota check."""
    model_dir: Path | None
    """Local model directory to pack, or None when ``model_uri`` is set."""
    model_uri: str | None
    network_isolation: bool
    data_capture_percent: int
    alarm_emails: tuple[str, ...]
    model_latency_p99_ms: int
    error_rate_percent: int
    client_error_rate_percent: int
    cpu_alarm_percent: int
    memory_alarm_percent: int
    fleet_at_max_minutes: int
    api_latency_p99_ms: int
    api_rate_limit: int
    api_burst_limit: int
    api_quota_per_day: int
    lambda_timeout_seconds: int
    lambda_memory_mb: int
    log_retention_days: int

    @property
    def fleet_is_computable(self) -> bool:
        """The peak fleet can be computed (counts and batch size are in range)."""
        return (
            self.initial_instance_count >= 1
            and self.max_instances >= 1
            and 5 <= self.rolling_batch_percent <= 50
        )

    @property
    def fleet_max(self) -> int:
        """The most instances the variant runs outside an update."""
        return self.max_instances if self.autoscaling else self.initial_instance_count

    @property
    def variant_fleet(self) -> VariantFleet:
        return VariantFleet(
            resource_name=f"{PROJECT}:instanceType={self.instance_type}",
            instance_type=self.instance_type,
            max_instances=self.fleet_max,
            update_mode=self.update_mode,
            rolling_batch_percent=self.rolling_batch_percent,
        )

    @property
    def peak_instances(self) -> int:
        return self.variant_fleet.peak

    @property
    def subnet_count(self) -> int:
        return len(self.availability_zones) if self.availability_zones else self.az_count

    @property
    def addresses_per_subnet(self) -> int:
        return fleet.addresses_needed_per_subnet(
            self.peak_instances,
            self.subnet_count,
            other_enis_per_subnet=len(INTERFACE_ENDPOINT_SERVICES),
            headroom_percent=self.subnet_headroom_percent,
        )

    @property
    def supports_kms_volume_key(self) -> bool:
        """False for instance types with local NVMe storage (``*d``), where CreateEndpointConfig
        refuses a KMS key."""
        return not fleet.has_local_nvme(self.instance_type)


@cache
def sagemaker_instance_types() -> frozenset[str]:
    """The hosting instance types SageMaker knows, from botocore's service model."""
    import botocore.session  # noqa: PLC0415  # imported on first use: it costs 0.1 s

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def endpoint_name(project: str, stack: str) -> str:
    """A SageMaker endpoint name (``[a-zA-Z0-9-]``, at most 63) from the project and stack names."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{project}-{stack}").strip("-")
    return cleaned[:ENDPOINT_NAME_MAX].rstrip("-")


def load(project_dir: Path) -> Settings:
    """Read and validate the stack configuration; raise :class:`ConfigError` listing every problem."""
    reader = _Reader(pulumi.Config(PROJECT))
    problems = reader.problems
    environment = reader.enum("environment", Environment)
    zones = tuple(reader.read("availabilityZones", _string_list, [], "a list of zone names"))
    model_uri = reader.read("modelUri", _string, "", "an s3:// URI or empty")
    model_dir_setting = reader.read("modelDir", _string, "", "a directory")
    quotas_raw = reader.read(
        "endpointInstanceQuotas", _quota_object, {}, "an object of instance type -> whole number"
    )
    settings = Settings(
        project_dir=project_dir,
        endpoint_name=endpoint_name(pulumi.get_project(), pulumi.get_stack()),
        environment=environment or Environment.DEV,
        availability_zones=zones,
        az_count=reader.integer("azCount"),
        vpc_cidr=reader.read("vpcCidr", _string, "", "an IPv4 block"),
        subnet_prefix_length=reader.integer("subnetPrefixLength"),
        subnet_headroom_percent=reader.integer("subnetHeadroomPercent"),
        nat_gateway=reader.boolean("natGateway"),
        instance_type=reader.read("instanceType", _string, "", "an instance type"),
        initial_instance_count=reader.integer("initialInstanceCount"),
        autoscaling=reader.boolean("autoscaling"),
        min_instances=reader.integer("minInstances"),
        max_instances=reader.integer("maxInstances"),
        invocations_per_instance_target=reader.integer("invocationsPerInstanceTarget"),
        scale_in_cooldown_seconds=reader.integer("scaleInCooldownSeconds"),
        scale_out_cooldown_seconds=reader.integer("scaleOutCooldownSeconds"),
        update_mode=reader.enum("updateMode", UpdateMode) or UpdateMode.BLUE_GREEN,
        traffic_routing=reader.enum("trafficRouting", TrafficRouting) or TrafficRouting.ALL_AT_ONCE,
        traffic_step_percent=reader.integer("trafficStepPercent"),
        traffic_wait_seconds=reader.integer("trafficWaitSeconds"),
        termination_wait_seconds=reader.integer("terminationWaitSeconds"),
        maximum_execution_timeout_seconds=reader.integer("maximumExecutionTimeoutSeconds"),
        auto_rollback=reader.boolean("autoRollback"),
        rolling_batch_percent=reader.integer("rollingBatchPercent"),
        rolling_wait_seconds=reader.integer("rollingWaitSeconds"),
        check_live_quotas=reader.boolean("checkLiveQuotas"),
        region=pulumi.Config("aws").get("region") or "",
        quotas=QuotaTable(per_instance_type=quotas_raw, total_instances=reader.integer("totalInstanceQuota")),
        model_dir=None if model_uri else (project_dir / model_dir_setting),
        model_uri=model_uri or None,
        network_isolation=reader.boolean("networkIsolation"),
        data_capture_percent=reader.integer("dataCapturePercent"),
        alarm_emails=tuple(reader.read("alarmEmails", _string_list, [], "a list of e-mail addresses")),
        model_latency_p99_ms=reader.integer("modelLatencyP99Ms"),
        error_rate_percent=reader.integer("errorRatePercent"),
        client_error_rate_percent=reader.integer("clientErrorRatePercent"),
        cpu_alarm_percent=reader.integer("cpuAlarmPercent"),
        memory_alarm_percent=reader.integer("memoryAlarmPercent"),
        fleet_at_max_minutes=reader.integer("fleetAtMaxMinutes"),
        api_latency_p99_ms=reader.integer("apiLatencyP99Ms"),
        api_rate_limit=reader.integer("apiRateLimit"),
        api_burst_limit=reader.integer("apiBurstLimit"),
        api_quota_per_day=reader.integer("apiQuotaPerDay"),
        lambda_timeout_seconds=reader.integer("lambdaTimeoutSeconds"),
        lambda_memory_mb=reader.integer("lambdaMemoryMb"),
        log_retention_days=reader.integer("logRetentionDays"),
    )
    if not problems:
        # Rules that combine settings only make sense once every setting has the right type.
        problems.extend(validate(settings))
    if not problems and settings.check_live_quotas:
        client = _service_quotas_client(settings.region)
        problems.extend(live_quota_problems(settings.variant_fleet, settings.quotas, client))
    if problems:
        raise ConfigError(problems)
    return settings


def validate(s: Settings) -> list[Problem]:
    """Every rule the settings break; an empty list means deployable."""
    problems = _validate_instance_type(s)
    problems.extend(_validate_fleet(s))
    problems.extend(_validate_update(s))
    problems.extend(_validate_network(s))

    # Quotas: the account must be able to run the peak fleet, or an update fails half-way.
    # An unknown type is reported above; its quota shortfall would only repeat it.
    if s.fleet_is_computable and s.instance_type in sagemaker_instance_types():
        for shortfall in fleet.quota_shortfalls([s.variant_fleet], s.quotas):
            total = shortfall.quota_name.startswith("Number")
            key = "totalInstanceQuota" if total else "endpointInstanceQuotas"
            problems.append(
                Problem(
                    key=key,
                    problem=shortfall.message(),
                    fix=f"declare the granted quota in {key} once AWS has raised it",
                )
            )

    problems.extend(_validate_model(s))
    problems.extend(_validate_alarms_and_front_door(s))
    return problems


def _validate_instance_type(s: Settings) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    if s.instance_type not in sagemaker_instance_types():
        add(
            Problem(
                key="instanceType",
                problem=f"{s.instance_type!r} is not a SageMaker hosting instance type",
                fix="use a ProductionVariantInstanceType such as ml.c5.xlarge or ml.m5.large",
            )
        )
    if fleet.is_graviton(s.instance_type):
        add(
            Problem(
                key="instanceType",
                problem=f"{s.instance_type} is an Arm (Graviton) type and the serving image is "
                "built for linux/amd64 only: the endpoint would fail to start after provisioning",
                fix="use an x86_64 type such as ml.c5.xlarge or ml.m5.large",
            )
        )
    burstable = fleet.is_burstable(s.instance_type)
    if burstable and s.environment is Environment.PROD:
        add(
            Problem(
                key="instanceType",
                problem=f"{s.instance_type} is burstable: it throttles to its CPU "
                "baseline when credits run out and cannot be autoscaled",
                fix="use a non-burstable type in prod, e.g. ml.c5.xlarge",
            )
        )
    if burstable and s.autoscaling:
        add(
            Problem(
                key="autoscaling",
                problem=f"{s.instance_type} is burstable and Application Auto Scaling "
                "refuses burstable variants",
                fix="set autoscaling: false or use a non-burstable type",
            )
        )
    return problems


def _validate_fleet(s: Settings) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    if s.initial_instance_count < 1:
        add(
            Problem(
                key="initialInstanceCount",
                problem=f"{s.initial_instance_count} instances",
                fix="set at least 1",
            )
        )
    if s.autoscaling:
        if s.min_instances < 1:
            add(
                Problem(
                    key="minInstances",
                    problem=f"autoscaling minimum {s.min_instances} is below 1",
                    fix="set minInstances to 1 or more",
                )
            )
        if not s.min_instances <= s.initial_instance_count <= s.max_instances:
            add(
                Problem(
                    key="initialInstanceCount",
                    problem=f"min {s.min_instances} <= initial {s.initial_instance_count} <= "
                    f"max {s.max_instances} does not hold",
                    fix="choose minInstances <= initialInstanceCount <= maxInstances",
                )
            )
        if s.invocations_per_instance_target < 1:
            add(
                Problem(
                    key="invocationsPerInstanceTarget",
                    problem="the scaling target must be positive",
                    fix="set it to measured max RPS x 0.5 x 60 (run make capacity)",
                )
            )
    if s.environment is Environment.PROD:
        floor = s.min_instances if s.autoscaling else s.initial_instance_count
        if floor < s.subnet_count:
            key = "minInstances" if s.autoscaling else "initialInstanceCount"
            add(
                Problem(
                    key=key,
                    problem=f"prod runs {floor} instance(s) over {s.subnet_count} Availability "
                    "Zones, so a zone has none",
                    fix=f"set {key} to at least {s.subnet_count}",
                )
            )
    for key, value in (
        ("scaleInCooldownSeconds", s.scale_in_cooldown_seconds),
        ("scaleOutCooldownSeconds", s.scale_out_cooldown_seconds),
    ):
        if value < 0:
            add(Problem(key=key, problem=f"{value} s", fix="use 0 or more seconds"))
    return problems


def _validate_update(s: Settings) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    if s.update_mode is UpdateMode.ROLLING:
        smallest = s.min_instances if s.autoscaling else s.initial_instance_count
        if smallest == 1:
            add(
                Problem(
                    key="updateMode",
                    problem="a rolling batch must be 5-50% of the variant, and with 1 instance a batch "
                    "of one is 100%",
                    fix="use blue-green (ALL_AT_ONCE for no traffic shifting) or run at least 2 instances",
                )
            )
        if not 5 <= s.rolling_batch_percent <= 50:
            add(
                Problem(
                    key="rollingBatchPercent",
                    problem=f"{s.rolling_batch_percent}% is outside SageMaker's 5-50% of the variant",
                    fix="choose 5-50",
                )
            )
        problems.extend(_outside_range("rollingWaitSeconds", s.rolling_wait_seconds, 0, 3600, " s"))
    else:
        step_problem = deployment.step_percent_problem(s.traffic_routing.value, s.traffic_step_percent)
        if step_problem is not None:
            low, high = deployment.TRAFFIC_STEP_PERCENT[s.traffic_routing.value]
            add(Problem(key="trafficStepPercent", problem=step_problem, fix=f"choose {low}-{high}"))
        problems.extend(_outside_range("trafficWaitSeconds", s.traffic_wait_seconds, 0, 3600, " s"))
        problems.extend(_outside_range("terminationWaitSeconds", s.termination_wait_seconds, 0, 3600, " s"))
    low, high = deployment.MAXIMUM_EXECUTION_TIMEOUT_SECONDS
    timeout = s.maximum_execution_timeout_seconds
    problems.extend(_outside_range("maximumExecutionTimeoutSeconds", timeout, low, high, " s"))
    # The rules below combine the figures above: only once each is in range.
    in_range = not problems
    if in_range:
        problems.extend(_validate_execution_timeout(s))
    if s.environment is Environment.PROD and not s.auto_rollback:
        add(
            Problem(
                key="autoRollback",
                problem="prod deployments would not roll back on alarms",
                fix="set autoRollback: true",
            )
        )
    if in_range and s.fleet_is_computable:
        problems.extend(_validate_deployment_time(s))
    return problems


def _validate_execution_timeout(s: Settings) -> list[Problem]:
    """SageMaker refuses a blue/green policy whose execution timeout does not exceed its waits."""
    if s.update_mode is not UpdateMode.BLUE_GREEN:
        return []
    waiting = blue_green_wait_seconds(s)
    if s.maximum_execution_timeout_seconds > waiting:
        return []
    waits = deployment.traffic_shift_waits(s.traffic_routing, s.traffic_step_percent)
    return [
        Problem(
            key="maximumExecutionTimeoutSeconds",
            problem=f"{s.maximum_execution_timeout_seconds} s does not exceed the deployment's waits: "
            f"{waits} x trafficWaitSeconds {s.traffic_wait_seconds} s + terminationWaitSeconds "
            f"{s.termination_wait_seconds} s = {waiting} s, which SageMaker refuses",
            fix=f"set maximumExecutionTimeoutSeconds above {waiting} (and at most "
            f"{deployment.MAXIMUM_EXECUTION_TIMEOUT_SECONDS[1]}), or wait less",
        )
    ]


def blue_green_wait_seconds(s: Settings) -> int:
    """Seconds a blue/green deployment spends waiting: every traffic wait plus the termination wait."""
    return deployment.blue_green_wait_seconds(
        s.traffic_routing, s.traffic_step_percent, s.traffic_wait_seconds, s.termination_wait_seconds
    )


def worst_case_deployment(s: Settings) -> tuple[int, str]:
    """The longest an endpoint update can take with these settings (seconds), and how it adds up."""
    if s.update_mode is UpdateMode.ROLLING:
        batch = fleet.rolling_batch_instances(s.fleet_max, s.rolling_batch_percent)
        batches = math.ceil(s.fleet_max / batch)
        total = batches * (PROVISIONING_ALLOWANCE_SECONDS + s.rolling_wait_seconds)
        return total, (
            f"{batches} batch(es) of {batch} of {s.fleet_max} instances (rollingBatchPercent "
            f"{s.rolling_batch_percent}%), each {PROVISIONING_ALLOWANCE_SECONDS // 60} min to provision "
            f"+ rollingWaitSeconds {s.rolling_wait_seconds} s"
        )
    waits = deployment.traffic_shift_waits(s.traffic_routing, s.traffic_step_percent)
    routing = s.traffic_routing.value
    if s.traffic_routing is TrafficRouting.LINEAR:
        routing += f", trafficStepPercent {s.traffic_step_percent}%"
    total = PROVISIONING_ALLOWANCE_SECONDS + blue_green_wait_seconds(s)
    return total, (
        f"{PROVISIONING_ALLOWANCE_SECONDS // 60} min to provision the new fleet + {waits} x "
        f"trafficWaitSeconds {s.traffic_wait_seconds} s ({routing}) "
        f"+ terminationWaitSeconds {s.termination_wait_seconds} s"
    )


def _validate_deployment_time(s: Settings) -> list[Problem]:
    """An update the provider stops waiting for fails the `pulumi up` while SageMaker carries on,
    and the next `pulumi up` then meets an endpoint that is still Updating."""
    seconds, breakdown = worst_case_deployment(s)
    if seconds <= DEPLOYMENT_BUDGET_MINUTES * 60:
        return []
    rolling = s.update_mode is UpdateMode.ROLLING
    return [
        Problem(
            key="rollingWaitSeconds" if rolling else "trafficWaitSeconds",
            problem=f"an endpoint update can take {math.ceil(seconds / 60)} min ({breakdown}), but the "
            f"provider waits at most {PROVIDER_ENDPOINT_WAIT_MINUTES} min for the endpoint (no timeout "
            "setting lengthens it) and then fails the update while SageMaker carries on",
            fix=f"keep the worst case under {DEPLOYMENT_BUDGET_MINUTES} min: "
            + (
                "shorten rollingWaitSeconds or raise rollingBatchPercent"
                if rolling
                else "shorten trafficWaitSeconds or terminationWaitSeconds, or shift in fewer steps "
                "(a larger trafficStepPercent, or CANARY)"
            ),
        )
    ]


def _validate_network(s: Settings) -> list[Problem]:
    problems = _validate_zones(s)
    try:
        vpc = ipaddress.ip_network(s.vpc_cidr, strict=True)
    except ValueError as error:
        problems.append(
            Problem(
                key="vpcCidr",
                problem=f"{s.vpc_cidr!r} is not an IPv4 block ({error})",
                fix="use a block such as 10.40.0.0/16",
            )
        )
        return problems
    if not isinstance(vpc, ipaddress.IPv4Network) or not 16 <= vpc.prefixlen <= 28:
        problems.append(
            Problem(
                key="vpcCidr",
                problem=f"{s.vpc_cidr} is not an IPv4 block from /16 to /28",
                fix="use a block such as 10.40.0.0/16",
            )
        )
    elif not fleet.LARGEST_SUBNET_PREFIX <= s.subnet_prefix_length <= fleet.SMALLEST_SUBNET_PREFIX:
        problems.append(
            Problem(
                key="subnetPrefixLength",
                problem=f"/{s.subnet_prefix_length}",
                fix="choose a prefix length from 16 to 28",
            )
        )
    elif s.subnet_headroom_percent < 0:
        problems.append(
            Problem(key="subnetHeadroomPercent", problem=f"{s.subnet_headroom_percent}%", fix="use 0 or more")
        )
    elif s.fleet_is_computable:  # otherwise the fleet is reported elsewhere and its size is unknown
        problems.extend(_validate_addresses(s, vpc))
    return problems


def _validate_zones(s: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if s.availability_zones:
        bad = [z for z in s.availability_zones if not _AZ.match(z)]
        if bad:
            problems.append(
                Problem(
                    key="availabilityZones",
                    problem=f"{bad} are not zone names",
                    fix="list zones such as eu-west-1a",
                )
            )
        if len(set(s.availability_zones)) != len(s.availability_zones):
            problems.append(
                Problem(key="availabilityZones", problem="a zone is listed twice", fix="list distinct zones")
            )
    if s.subnet_count < MIN_SUBNETS:
        problems.append(
            Problem(
                key="availabilityZones" if s.availability_zones else "azCount",
                problem=f"{s.subnet_count} subnet(s); SageMaker needs at least two subnets "
                "in distinct Availability Zones, even for one instance",
                fix="use 2 or more zones",
            )
        )
    return problems


def _validate_addresses(s: Settings, vpc: ipaddress.IPv4Network) -> list[Problem]:
    """Each subnet holds its share of the peak fleet, and the VPC holds the subnets."""
    needed = s.addresses_per_subnet
    available = fleet.subnet_size(s.subnet_prefix_length)
    if needed > available:
        return [
            Problem(
                key="subnetPrefixLength",
                problem=f"a /{s.subnet_prefix_length} has {available} addresses but each subnet needs "
                f"{needed} (peak fleet {s.peak_instances} x 2 addresses over {s.subnet_count} subnets, "
                f"{len(INTERFACE_ENDPOINT_SERVICES)} VPC endpoint ENIs, "
                f"{s.subnet_headroom_percent}% headroom, 5 reserved)",
                fix=f"set subnetPrefixLength to {fleet.largest_prefix_holding(needed)} or less",
            )
        ]
    subnets_needed = s.subnet_count + (1 if s.nat_gateway else 0)
    fits = 2 ** (s.subnet_prefix_length - vpc.prefixlen) if s.subnet_prefix_length >= vpc.prefixlen else 0
    if fits < subnets_needed:
        return [
            Problem(
                key="vpcCidr",
                problem=f"{s.vpc_cidr} holds {fits} /{s.subnet_prefix_length} subnet(s), "
                f"the stack needs {subnets_needed}",
                fix="use a larger VPC block or a longer subnet prefix",
            )
        ]
    return []


def _validate_model(s: Settings) -> list[Problem]:
    problems: list[Problem] = []
    if s.model_uri is not None:
        if not _S3_MODEL_URI.match(s.model_uri):
            problems.append(
                Problem(
                    key="modelUri",
                    problem=f"{s.model_uri!r} is not an s3://bucket/key.tar.gz URI",
                    fix="give the S3 URI of a model.tar.gz, or leave it empty to use modelDir",
                )
            )
    elif s.model_dir is not None and not (s.model_dir / "xgboost-model").is_file():
        problems.append(
            Problem(
                key="modelDir",
                problem=f"{s.model_dir} has no xgboost-model file",
                fix="run `make demo-model`, point modelDir at your model, or set modelUri",
            )
        )
    if not 0 <= s.data_capture_percent <= 100:
        problems.append(
            Problem(
                key="dataCapturePercent", problem=f"{s.data_capture_percent}%", fix="choose 0 (off) to 100"
            )
        )
    return problems


def _validate_alarms_and_front_door(s: Settings) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    bad_emails = [e for e in s.alarm_emails if not _EMAIL.match(e)]
    if bad_emails:
        add(
            Problem(key="alarmEmails", problem=f"{bad_emails} are not e-mail addresses", fix="list addresses")
        )
    positive = {
        "modelLatencyP99Ms": s.model_latency_p99_ms,
        "errorRatePercent": s.error_rate_percent,
        "clientErrorRatePercent": s.client_error_rate_percent,
        "fleetAtMaxMinutes": s.fleet_at_max_minutes,
        "apiLatencyP99Ms": s.api_latency_p99_ms,
        "apiRateLimit": s.api_rate_limit,
        "apiBurstLimit": s.api_burst_limit,
        "apiQuotaPerDay": s.api_quota_per_day,
    }
    for key, value in positive.items():
        if value <= 0:
            add(Problem(key=key, problem=f"{value} is not positive", fix="use a positive figure"))
    for key, value in (
        ("cpuAlarmPercent", s.cpu_alarm_percent),
        ("memoryAlarmPercent", s.memory_alarm_percent),
    ):
        problems.extend(_outside_range(key, value, 1, 100, "%"))
    if not MIN_LAMBDA_TIMEOUT_SECONDS <= s.lambda_timeout_seconds < API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS:
        add(
            Problem(
                key="lambdaTimeoutSeconds",
                problem=f"{s.lambda_timeout_seconds} s; API Gateway gives up "
                f"after {API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS} s and the handler needs "
                f"{MIN_LAMBDA_TIMEOUT_SECONDS} s at least (connect, read, answer)",
                fix=f"choose {MIN_LAMBDA_TIMEOUT_SECONDS}-"
                f"{API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS - 1} seconds",
            )
        )
    problems.extend(_outside_range("lambdaMemoryMb", s.lambda_memory_mb, 128, 10240, " MB"))
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        add(
            Problem(
                key="logRetentionDays",
                problem=f"{s.log_retention_days} is not a CloudWatch Logs retention",
                fix=f"choose one of {sorted(LOG_RETENTION_DAYS)}",
            )
        )
    return problems


# The account's live quotas (Service Quotas), when checkLiveQuotas is on.

TOTAL_QUOTA_NAME = "Number of instances across active endpoints"
_ENDPOINT_QUOTA = re.compile(r"^(?P<type>ml\.[a-z0-9-]+\.[a-z0-9]+) for endpoint usage$")


def read_live_quotas(client: Any) -> QuotaTable:
    """The account's SageMaker endpoint quotas, from Service Quotas ``ListServiceQuotas``."""
    per_type: dict[str, int] = {}
    total = 0
    for page in client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page["Quotas"]:
            name = quota.get("QuotaName", "")
            value = int(quota.get("Value", 0))
            if name == TOTAL_QUOTA_NAME:
                total = value
            elif match := _ENDPOINT_QUOTA.match(name):
                per_type[match.group("type")] = value
    return QuotaTable(per_instance_type=per_type, total_instances=total)


def live_quota_problems(variant: VariantFleet, declared: QuotaTable, client: Any) -> list[Problem]:
    """The peak fleet against the quotas the account really has, not the ones the stack declares."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only with the check on

    try:
        live = read_live_quotas(client)
    except (BotoCoreError, ClientError) as error:
        return [
            Problem(
                key="checkLiveQuotas",
                problem=f"cannot read the account's SageMaker quotas ({error})",
                fix="give the deployer servicequotas:ListServiceQuotas, or set checkLiveQuotas: false",
            )
        ]
    problems: list[Problem] = []
    for shortfall in fleet.quota_shortfalls([variant], live):
        total = shortfall.quota_name == TOTAL_QUOTA_NAME
        key = "totalInstanceQuota" if total else "endpointInstanceQuotas"
        assumed = declared.total_instances if total else declared.for_type(variant.instance_type)
        problems.append(
            Problem(
                key=key,
                problem=f"the account's live quota: {shortfall.message()} (the stack declares {assumed})",
                fix=f"request the increase, then declare the granted value in {key}",
            )
        )
    return problems


def _service_quotas_client(region: str) -> Any:
    import boto3  # noqa: PLC0415 - only with the check on

    return boto3.client("service-quotas", region_name=region or None)


# Reading: a wrongly typed value becomes a Problem, and reading goes on so that every problem
# is reported at once.

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.StrEnum)


def _string(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("expected a string")
    return raw


def _string_list(raw: Any) -> list[str]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return list(value)


def _quota_object(raw: Any) -> dict[str, int]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise TypeError("expected an object of instance type -> count")
    quotas: dict[str, int] = {}
    for instance_type, count in value.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise TypeError(f"the quota for {instance_type} must be a whole number >= 0, got {count!r}")
        quotas[str(instance_type)] = count
    return quotas


class _Reader:
    def __init__(self, cfg: pulumi.Config) -> None:
        self.cfg = cfg
        self.problems: list[Problem] = []

    def _get(self, key: str, getter: Callable[[str], _T], fallback: _T, expected: str) -> _T:
        try:
            return getter(key)
        except (pulumi.ConfigMissingError, pulumi.ConfigTypeError, ValueError, TypeError) as error:
            detail = str(error) if isinstance(error, (TypeError, ValueError)) else f"not {expected}"
            missing = isinstance(error, pulumi.ConfigMissingError)
            self.problems.append(
                Problem(
                    key=key,
                    problem="missing (Pulumi.yaml declares its default)" if missing else detail,
                    fix=f"set {PROJECT}:{key} to {expected}",
                )
            )
            return fallback

    def read(self, key: str, convert: Callable[[Any], _T], fallback: _T, expected: str) -> _T:
        return self._get(key, lambda k: convert(self.cfg.require(k)), fallback, expected)

    def integer(self, key: str) -> int:
        return self._get(key, self.cfg.require_int, 0, "a whole number")

    def boolean(self, key: str) -> bool:
        return self._get(key, self.cfg.require_bool, False, "true or false")

    def enum(self, key: str, kind: type[_E]) -> _E | None:
        raw = self._get(key, self.cfg.require, "", "a string")
        try:
            return kind(raw)
        except ValueError:
            choices = ", ".join(m.value for m in kind)
            self.problems.append(
                Problem(key=key, problem=f"{raw!r} is not one of {choices}", fix=f"choose one of {choices}")
            )
            return None
