"""The stack's settings: parsed from a plain mapping, typed, frozen and validated, with no Pulumi.

:func:`parse_settings` takes the configuration as the CLI hands it to a program (qualified keys;
values as YAML gives them or as the strings the Pulumi runtime gives), checks every key and every
rule, and raises one :class:`StackConfigError` listing every problem, each naming the key and the
fix. ``config.py`` (the program) and :func:`stackcore.load_stack` (the tools) both call it.

Adding a key: declare it in Pulumi.yaml, name it in :mod:`stackcore.keys`, add a field to
:class:`StackSettings` and read (and check) it in :func:`parse_settings`.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stackcore import deployment, fleet, keys, limits, regions, rules, scaling
from stackcore.deployment import TrafficRouting
from stackcore.fleet import QuotaTable, UpdateMode, VariantFleet
from stackcore.instance_types import hosting_instance_types, instance_type, known
from stackcore.keys import PROJECT
from stackcore.layering import Declaration, config_string, read_project, undeclared_problems
from stackcore.problems import Problem, StackConfigError
from stackcore.scaling import RoutingStrategy, ScalingMetric

INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("sagemaker.runtime", "ecr.api", "ecr.dkr", "logs", "sts")
"""Interface VPC endpoints in every private subnet; each puts one ENI (one address) in each subnet."""

MIN_SUBNETS = rules.MIN_SUBNETS

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
"""The retention periods CloudWatch Logs accepts."""

API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = limits.API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS
MIN_LAMBDA_TIMEOUT_SECONDS = limits.MIN_LAMBDA_TIMEOUT_SECONDS

PROVIDER_ENDPOINT_WAIT_MINUTES = 60
"""How long terraform-provider-aws (under pulumi-aws) waits for an endpoint to be InService. The
resource has no Timeouts block: Pulumi's custom timeouts cannot lengthen it."""

DEPLOYMENT_BUDGET_MINUTES = 55
"""The longest worst-case deployment accepted: the provider's wait less a margin."""

PROVISIONING_ALLOWANCE_SECONDS = 600
"""Worst case for SageMaker to launch a fleet (or a rolling batch) and pass its health checks."""

RESERVED_RANGES: tuple[tuple[str, str], ...] = (
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (the instance metadata service)"),
    ("172.17.0.0/16", "the Docker bridge network, which AWS warns SageMaker containers conflict with"),
    ("224.0.0.0/4", "multicast"),
)
"""IPv4 ranges a VPC for SageMaker must not overlap (VPC guide; SageMaker guide, VPC endpoints)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_S3_MODEL_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+\.tar\.gz)$")


class Environment(enum.StrEnum):
    DEV = "dev"
    PROD = "prod"


def _outside_range(key: str, value: int, low: int, high: int, unit: str) -> list[Problem]:
    """The problem of a setting outside ``low``-``high`` (inclusive), if it is."""
    if low <= value <= high:
        return []
    return [Problem(key=key, problem=f"{value}{unit}", fix=f"choose {low}-{high}")]


def _finding(key: str, finding: rules.Finding | None) -> list[Problem]:
    return [] if finding is None else [Problem(key=key, problem=finding.message, fix=finding.fix)]


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """Everything the program and the tools need from the stack configuration, validated."""

    project_dir: Path
    """Directory of Pulumi.yaml; local paths are relative to it."""
    stack: str
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
    scaling_metric: ScalingMetric
    """What target tracking follows: invocations per instance, concurrent requests per model, or both."""
    concurrency_per_instance_target: int
    """Target of SageMakerVariantConcurrentRequestsPerModelHighResolution (requests in flight per
    model container; one container per instance here)."""
    max_concurrency_per_instance: int
    """Requests in flight one instance held within the latency objective, as make capacity measured
    it; 0 = not measured."""
    routing_strategy: RoutingStrategy
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
    expected_base_rps: float
    """Steady load the stack is sized for (requests/s); 0 = not declared."""
    expected_peak_rps: float
    """Peak load the stack must carry (requests/s); 0 = not declared."""
    region: str
    """``aws:region``."""
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
    def production(self) -> bool:
        return rules.is_production(self.environment.value)

    @property
    def follows_concurrency(self) -> bool:
        """The variant is autoscaled on ConcurrentRequestsPerModel (concurrency or both)."""
        return self.autoscaling and scaling.follows_concurrency(self.scaling_metric)

    @property
    def fleet_is_computable(self) -> bool:
        """The peak fleet can be computed (counts and batch size are in range)."""
        low, high = deployment.ROLLING_BATCH_PERCENT
        return (
            self.initial_instance_count >= 1
            and self.max_instances >= 1
            and low <= self.rolling_batch_percent <= high
        )

    @property
    def fleet_max(self) -> int:
        """The most instances the variant runs outside an update."""
        return self.max_instances if self.autoscaling else self.initial_instance_count

    @property
    def fleet_min(self) -> int:
        """The fewest instances the variant runs."""
        return self.min_instances if self.autoscaling else self.initial_instance_count

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
    def vcpus(self) -> int:
        return instance_type(self.instance_type).vcpus

    @property
    def supports_kms_volume_key(self) -> bool:
        """False for instance types with local NVMe storage, where CreateEndpointConfig refuses a KMS key."""
        return not fleet.has_local_nvme(self.instance_type)


def endpoint_name(project: str, stack: str) -> str:
    """A SageMaker endpoint name (``[a-zA-Z0-9-]``, at most 63) from the project and stack names."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{project}-{stack}").strip("-")
    return cleaned[: limits.ENDPOINT_NAME_MAX].rstrip("-")


def parse_settings(
    values: Mapping[str, Any],
    *,
    project_dir: Path,
    stack: str,
    project: str = PROJECT,
    declarations: Mapping[str, Declaration] | None = None,
) -> StackSettings:
    """Read and validate the configuration; raise :class:`StackConfigError` listing every problem.

    ``values`` holds qualified keys (``xgboost-endpoint:maxInstances``, ``aws:region``). A declared
    key that is absent takes Pulumi.yaml's default, as the CLI does."""
    if declarations is None:
        declarations = read_project(project_dir).declarations
    problems = undeclared_problems(values, declarations, project)
    reader = _Reader(_own_values(values, declarations, project), problems)
    k = keys
    environment = reader.enum(k.ENVIRONMENT, Environment)
    model_uri = reader.read(k.MODEL_URI, _string, "", "an s3:// URI or empty")
    model_dir_setting = reader.read(k.MODEL_DIR, _string, "", "a directory")
    settings = StackSettings(
        project_dir=project_dir,
        stack=stack,
        endpoint_name=endpoint_name(project, stack),
        environment=environment or Environment.DEV,
        availability_zones=tuple(reader.read(k.AVAILABILITY_ZONES, _string_list, [], "a list of zone names")),
        az_count=reader.integer(k.AZ_COUNT),
        vpc_cidr=reader.read(k.VPC_CIDR, _string, "", "an IPv4 block"),
        subnet_prefix_length=reader.integer(k.SUBNET_PREFIX_LENGTH),
        subnet_headroom_percent=reader.integer(k.SUBNET_HEADROOM_PERCENT),
        nat_gateway=reader.boolean(k.NAT_GATEWAY),
        instance_type=reader.read(k.INSTANCE_TYPE, _string, "", "an instance type"),
        initial_instance_count=reader.integer(k.INITIAL_INSTANCE_COUNT),
        autoscaling=reader.boolean(k.AUTOSCALING),
        min_instances=reader.integer(k.MIN_INSTANCES),
        max_instances=reader.integer(k.MAX_INSTANCES),
        invocations_per_instance_target=reader.integer(k.INVOCATIONS_PER_INSTANCE_TARGET),
        scaling_metric=reader.enum(k.SCALING_METRIC, ScalingMetric) or ScalingMetric.INVOCATIONS,
        concurrency_per_instance_target=reader.integer(k.CONCURRENCY_PER_INSTANCE_TARGET),
        max_concurrency_per_instance=reader.integer(k.MAX_CONCURRENCY_PER_INSTANCE),
        routing_strategy=reader.enum(k.ROUTING_STRATEGY, RoutingStrategy) or RoutingStrategy.RANDOM,
        scale_in_cooldown_seconds=reader.integer(k.SCALE_IN_COOLDOWN_SECONDS),
        scale_out_cooldown_seconds=reader.integer(k.SCALE_OUT_COOLDOWN_SECONDS),
        update_mode=reader.enum(k.UPDATE_MODE, UpdateMode) or UpdateMode.BLUE_GREEN,
        traffic_routing=reader.enum(k.TRAFFIC_ROUTING, TrafficRouting) or TrafficRouting.ALL_AT_ONCE,
        traffic_step_percent=reader.integer(k.TRAFFIC_STEP_PERCENT),
        traffic_wait_seconds=reader.integer(k.TRAFFIC_WAIT_SECONDS),
        termination_wait_seconds=reader.integer(k.TERMINATION_WAIT_SECONDS),
        maximum_execution_timeout_seconds=reader.integer(k.MAXIMUM_EXECUTION_TIMEOUT_SECONDS),
        auto_rollback=reader.boolean(k.AUTO_ROLLBACK),
        rolling_batch_percent=reader.integer(k.ROLLING_BATCH_PERCENT),
        rolling_wait_seconds=reader.integer(k.ROLLING_WAIT_SECONDS),
        check_live_quotas=reader.boolean(k.CHECK_LIVE_QUOTAS),
        quotas=_read_quotas(reader),
        expected_base_rps=float(reader.integer(k.EXPECTED_BASE_RPS)),
        expected_peak_rps=float(reader.integer(k.EXPECTED_PEAK_RPS)),
        region=_region(values.get(keys.AWS_REGION), problems),
        model_dir=None if model_uri else (project_dir / model_dir_setting),
        model_uri=model_uri or None,
        network_isolation=reader.boolean(k.NETWORK_ISOLATION),
        data_capture_percent=reader.integer(k.DATA_CAPTURE_PERCENT),
        alarm_emails=tuple(reader.read(k.ALARM_EMAILS, _string_list, [], "a list of e-mail addresses")),
        model_latency_p99_ms=reader.integer(k.MODEL_LATENCY_P99_MS),
        error_rate_percent=reader.integer(k.ERROR_RATE_PERCENT),
        client_error_rate_percent=reader.integer(k.CLIENT_ERROR_RATE_PERCENT),
        cpu_alarm_percent=reader.integer(k.CPU_ALARM_PERCENT),
        memory_alarm_percent=reader.integer(k.MEMORY_ALARM_PERCENT),
        fleet_at_max_minutes=reader.integer(k.FLEET_AT_MAX_MINUTES),
        api_latency_p99_ms=reader.integer(k.API_LATENCY_P99_MS),
        api_rate_limit=reader.integer(k.API_RATE_LIMIT),
        api_burst_limit=reader.integer(k.API_BURST_LIMIT),
        api_quota_per_day=reader.integer(k.API_QUOTA_PER_DAY),
        lambda_timeout_seconds=reader.integer(k.LAMBDA_TIMEOUT_SECONDS),
        lambda_memory_mb=reader.integer(k.LAMBDA_MEMORY_MB),
        log_retention_days=reader.integer(k.LOG_RETENTION_DAYS),
    )
    tag_problems = _default_tags_problems(values.get(keys.AWS_DEFAULT_TAGS))
    problems.extend(tag_problems)
    if not tag_problems:
        problems.extend(_production_problems(settings, values.get(keys.AWS_DEFAULT_TAGS)))
    if not problems:
        # Rules that combine settings only make sense once every setting has the right type.
        problems.extend(validate(settings))
    if problems:
        raise StackConfigError(problems)
    return settings


def parse_quotas(
    values: Mapping[str, Any],
    *,
    project: str = PROJECT,
    declarations: Mapping[str, Declaration],
) -> QuotaTable:
    """Only the quotas the stack declares (for the policy-pack config), read and checked exactly as
    :func:`parse_settings` reads them; raises :class:`StackConfigError` for a malformed value."""
    problems: list[Problem] = []
    reader = _Reader(_own_values(values, declarations, project), problems)
    table = _read_quotas(reader)
    if problems:
        raise StackConfigError(problems)
    return table


def parse_max_concurrency(
    values: Mapping[str, Any],
    *,
    project: str = PROJECT,
    declarations: Mapping[str, Declaration],
) -> int:
    """Only ``maxConcurrencyPerInstance`` (for the policy-pack config), read as :func:`parse_settings`
    reads it; raises :class:`StackConfigError` for a malformed value."""
    own = _own_values(values, declarations, project)
    if own.get(keys.MAX_CONCURRENCY_PER_INSTANCE) is None:
        return 0  # a project that does not declare it has not measured
    problems: list[Problem] = []
    measured = _Reader(own, problems).integer(keys.MAX_CONCURRENCY_PER_INSTANCE)
    if problems:
        raise StackConfigError(problems)
    return measured


def _own_values(
    values: Mapping[str, Any], declarations: Mapping[str, Declaration], project: str
) -> dict[str, Any]:
    """The project's keys, Pulumi.yaml's defaults under the stack's values. Every value is read as
    the CLI hands it to the program (a string; lists and objects as JSON), so the plan, the tools
    and `pulumi up` accept and refuse exactly the same stack files."""
    own: dict[str, Any] = {}
    for key, declaration in declarations.items():
        if declaration.has_default and declaration.default is not None:
            own[key] = config_string(declaration.default)
    for full_key, value in values.items():
        namespace, _, key = full_key.rpartition(":")
        if namespace == project:
            own[key] = None if value is None else config_string(value)
    return own


def _read_quotas(reader: _Reader) -> QuotaTable:
    per_type = reader.read(
        keys.ENDPOINT_INSTANCE_QUOTAS, _quota_object, {}, "an object of instance type -> whole number"
    )
    return QuotaTable(per_instance_type=per_type, total_instances=reader.integer(keys.TOTAL_INSTANCE_QUOTA))


def _region(raw: Any, problems: list[Problem]) -> str:
    """``aws:region``: a Region where SageMaker runs, or unset (the provider then takes AWS_REGION)."""
    if raw is None or raw == "":
        return ""
    fix = "set aws:region to a Region where SageMaker runs, such as eu-west-1"
    if not isinstance(raw, str) or _shown(raw) != repr(raw):
        problem = f"expected a string, got {_shown(raw)}"
        problems.append(Problem(key=keys.AWS_REGION, problem=problem, fix=fix))
        return ""
    if raw not in regions.sagemaker_regions():
        problems.append(
            Problem(key=keys.AWS_REGION, problem=f"{raw!r} is not a Region where SageMaker runs", fix=fix)
        )
        return ""
    return raw


def _default_tags_problems(raw: Any) -> list[Problem]:
    """``aws:defaultTags``: an object whose ``tags`` is an object of tag name -> string."""
    if raw is None:
        return []
    value = _decoded(raw) if isinstance(raw, str) else raw
    tags = value.get("tags") if isinstance(value, Mapping) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(tags, Mapping) and all(isinstance(v, str) for v in tags.values()):  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
        return []
    return [
        Problem(
            key=keys.AWS_DEFAULT_TAGS,
            problem=f"expected an object with tags: {{name: value}}, got {_shown(raw)}",
            fix="write aws:defaultTags as tags: with one string value per tag name",
        )
    ]


def environment_tag(default_tags: Any) -> str | None:
    """The ``environment`` tag of ``aws:defaultTags`` (an object, or its JSON), when set."""
    if isinstance(default_tags, str):
        try:
            default_tags = json.loads(default_tags)
        except json.JSONDecodeError:
            return None
    tags = default_tags.get("tags") if isinstance(default_tags, Mapping) else None
    tag = tags.get("environment") if isinstance(tags, Mapping) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return None if tag is None else str(tag)  # pyright: ignore[reportUnknownArgumentType]


def _production_problems(s: StackSettings, default_tags: Any) -> list[Problem]:
    """The policy pack judges production by the provider's ``environment`` tag, else the stack's
    name (:func:`stackcore.rules.stack_is_production`): the ``environment`` key must say the same."""
    tag = environment_tag(default_tags)
    if rules.stack_is_production(tag, s.stack) == s.production:
        return []
    judged = "production" if rules.stack_is_production(tag, s.stack) else "not production"
    reason = (
        f"the AWS provider's default tag environment is {tag!r}"
        if tag
        else f"the stack is named {s.stack!r} and has no aws:defaultTags environment tag"
    )
    return [
        Problem(
            key=keys.ENVIRONMENT,
            problem=f"{s.environment.value}, but {reason}, so the policy pack would judge the stack "
            f"{judged}: one layer would apply the production rules and the other not",
            fix=f"set aws:defaultTags.tags.environment to {s.environment.value}",
        )
    ]


def validate(s: StackSettings) -> list[Problem]:
    """Every rule the settings break; an empty list means deployable."""
    problems = _validate_api_bounds(s)
    if problems:
        # A figure past the API's bounds makes every rule that combines it meaningless (and its
        # arithmetic huge): report the bounds, and the checks that stand alone.
        return problems + _validate_model(s) + _validate_alarms_and_front_door(s)
    problems.extend(_validate_instance_type(s))
    problems.extend(_validate_fleet(s))
    problems.extend(_validate_update(s))
    problems.extend(_validate_network(s))

    # Quotas: the account must be able to run the peak fleet, or an update fails half-way.
    # An unknown type is reported above; its quota shortfall would only repeat it.
    if s.fleet_is_computable and s.instance_type in hosting_instance_types() and not problems:
        for shortfall in fleet.quota_shortfalls([s.variant_fleet], s.quotas):
            total = shortfall.quota_name.startswith("Number")
            key = keys.TOTAL_INSTANCE_QUOTA if total else keys.ENDPOINT_INSTANCE_QUOTAS
            problems.append(
                Problem(
                    key=key,
                    problem=shortfall.message(),
                    fix=f"declare the granted quota in {key} once AWS has raised it",
                )
            )

    problems.extend(_validate_model(s))
    problems.extend(_validate_alarms_and_front_door(s))
    problems.extend(_validate_expected_load(s))
    return problems


def _validate_api_bounds(s: StackSettings) -> list[Problem]:
    """Figures past what the AWS APIs take (botocore's models; unbounded integers are 32-bit)."""
    k = keys
    values = {
        k.INITIAL_INSTANCE_COUNT: s.initial_instance_count,
        k.MIN_INSTANCES: s.min_instances,
        k.MAX_INSTANCES: s.max_instances,
        k.INVOCATIONS_PER_INSTANCE_TARGET: s.invocations_per_instance_target,
        k.CONCURRENCY_PER_INSTANCE_TARGET: s.concurrency_per_instance_target,
        k.MAX_CONCURRENCY_PER_INSTANCE: s.max_concurrency_per_instance,
        k.SCALE_IN_COOLDOWN_SECONDS: s.scale_in_cooldown_seconds,
        k.SCALE_OUT_COOLDOWN_SECONDS: s.scale_out_cooldown_seconds,
        k.TOTAL_INSTANCE_QUOTA: s.quotas.total_instances,
        k.API_RATE_LIMIT: s.api_rate_limit,
        k.API_BURST_LIMIT: s.api_burst_limit,
        k.API_QUOTA_PER_DAY: s.api_quota_per_day,
        k.SUBNET_HEADROOM_PERCENT: s.subnet_headroom_percent,
        k.MODEL_LATENCY_P99_MS: s.model_latency_p99_ms,
        k.API_LATENCY_P99_MS: s.api_latency_p99_ms,
        k.FLEET_AT_MAX_MINUTES: s.fleet_at_max_minutes,
        k.ERROR_RATE_PERCENT: s.error_rate_percent,
        k.CLIENT_ERROR_RATE_PERCENT: s.client_error_rate_percent,
    }
    problems: list[Problem] = []
    for key, value in values.items():
        high, api = limits.UPPER_BOUNDS[key]
        if value > high:
            problems.append(
                Problem(
                    key=key,
                    problem=f"{value} is more than {api} takes ({high})",
                    fix=f"choose at most {high}",
                )
            )
    return problems


def _validate_instance_type(s: StackSettings) -> list[Problem]:
    if s.instance_type not in hosting_instance_types():
        from stackcore.instance_types import closest  # noqa: PLC0415

        suggestion = closest(s.instance_type)
        return [
            Problem(
                key=keys.INSTANCE_TYPE,
                problem=f"{s.instance_type!r} is not a SageMaker hosting instance type",
                fix=(f"did you mean {suggestion}? " if suggestion else "")
                + "use a ProductionVariantInstanceType such as ml.c5.xlarge or ml.m5.large",
            )
        ]
    if not known(s.instance_type):  # botocore knows a type the table does not: its facts are missing
        return [
            Problem(
                key=keys.INSTANCE_TYPE,
                problem=f"{s.instance_type} is new in botocore and the instance-type table has no "
                "figures for it",
                fix="add it to stackcore/instance_type_table.py, or use a listed type",
            )
        ]
    # burstable_in_production is the policy pack's (rules.OWNER): not a configuration error.
    problems = _finding(keys.INSTANCE_TYPE, rules.arm_type_for_amd64_image(s.instance_type))
    problems += _finding(keys.AUTOSCALING, rules.burstable_autoscaled(s.instance_type, s.autoscaling))
    return problems


def _validate_fleet(s: StackSettings) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    if s.initial_instance_count < 1:
        add(
            Problem(
                key=keys.INITIAL_INSTANCE_COUNT,
                problem=f"{s.initial_instance_count} instances",
                fix="set at least 1",
            )
        )
    if s.autoscaling:
        if s.min_instances < 1:
            add(
                Problem(
                    key=keys.MIN_INSTANCES,
                    problem=f"autoscaling minimum {s.min_instances} is below 1",
                    fix="set minInstances to 1 or more",
                )
            )
        if s.max_instances < s.min_instances:
            # The maximum is the figure out of order: initialInstanceCount is not to blame.
            add(
                Problem(
                    key=keys.MAX_INSTANCES,
                    problem=f"autoscaling maximum {s.max_instances} is below minInstances {s.min_instances}",
                    fix=f"set maxInstances to {s.min_instances} or more (or lower minInstances)",
                )
            )
        elif not s.min_instances <= s.initial_instance_count <= s.max_instances:
            add(
                Problem(
                    key=keys.INITIAL_INSTANCE_COUNT,
                    problem=f"min {s.min_instances} <= initial {s.initial_instance_count} <= "
                    f"max {s.max_instances} does not hold",
                    fix="choose minInstances <= initialInstanceCount <= maxInstances",
                )
            )
        problems.extend(_validate_concurrency_target(s))
    if s.max_concurrency_per_instance < 0:
        add(
            Problem(
                key=keys.MAX_CONCURRENCY_PER_INSTANCE,
                problem=f"{s.max_concurrency_per_instance} requests",
                fix="use 0 (not measured) or the in-flight requests make capacity measured",
            )
        )
    # With autoscaling off too: the invocations alarm and the dashboard use the target.
    if s.invocations_per_instance_target < 1:
        add(
            Problem(
                key=keys.INVOCATIONS_PER_INSTANCE_TARGET,
                problem=f"{s.invocations_per_instance_target}: the scaling target (invocations per "
                "instance per minute) must be positive, with or without autoscaling (the invocations "
                "alarm uses it)",
                fix="set it to the measured max RPS x 0.5 x 60 (make capacity derives it)",
            )
        )
    # zone_without_instance is the policy pack's (rules.OWNER): not a configuration error.
    for key, value in (
        (keys.SCALE_IN_COOLDOWN_SECONDS, s.scale_in_cooldown_seconds),
        (keys.SCALE_OUT_COOLDOWN_SECONDS, s.scale_out_cooldown_seconds),
    ):
        if value < 0:
            add(Problem(key=key, problem=f"{value} s", fix="use 0 or more seconds"))
    return problems


def _validate_concurrency_target(s: StackSettings) -> list[Problem]:
    """The concurrency target counts only when the variant scales on concurrency."""
    if not s.follows_concurrency:
        return []
    if s.concurrency_per_instance_target < 1:
        return [
            Problem(
                key=keys.CONCURRENCY_PER_INSTANCE_TARGET,
                problem=f"{s.concurrency_per_instance_target}: scalingMetric {s.scaling_metric.value} needs "
                "a target of 1 or more concurrent requests per instance",
                fix="set it to the in-flight requests measured at the invocations target's throughput "
                "(make capacity derives it)",
            )
        ]
    finding = rules.concurrency_target_beyond_capacity(
        s.concurrency_per_instance_target, s.max_concurrency_per_instance
    )
    return _finding(keys.CONCURRENCY_PER_INSTANCE_TARGET, finding)


def _validate_update(s: StackSettings) -> list[Problem]:
    problems: list[Problem] = []
    low_wait, high_wait = deployment.WAIT_SECONDS
    if s.update_mode is UpdateMode.ROLLING:
        problems += _finding(keys.UPDATE_MODE, rules.rolling_batch_of_one_instance(s.fleet_min))
        problems += _finding(
            keys.ROLLING_BATCH_PERCENT, rules.rolling_batch_out_of_range(s.rolling_batch_percent)
        )
        problems.extend(
            _outside_range(keys.ROLLING_WAIT_SECONDS, s.rolling_wait_seconds, low_wait, high_wait, " s")
        )
    else:
        step_problem = deployment.step_percent_problem(s.traffic_routing.value, s.traffic_step_percent)
        if step_problem is not None:
            low, high = deployment.TRAFFIC_STEP_PERCENT[s.traffic_routing.value]
            problems.append(
                Problem(key=keys.TRAFFIC_STEP_PERCENT, problem=step_problem, fix=f"choose {low}-{high}")
            )
        problems.extend(
            _outside_range(keys.TRAFFIC_WAIT_SECONDS, s.traffic_wait_seconds, low_wait, high_wait, " s")
        )
        problems.extend(
            _outside_range(
                keys.TERMINATION_WAIT_SECONDS, s.termination_wait_seconds, low_wait, high_wait, " s"
            )
        )
    low, high = deployment.MAXIMUM_EXECUTION_TIMEOUT_SECONDS
    timeout = s.maximum_execution_timeout_seconds
    problems.extend(_outside_range(keys.MAXIMUM_EXECUTION_TIMEOUT_SECONDS, timeout, low, high, " s"))
    # The rules below combine the figures above: only once each is in range.
    in_range = not problems
    if in_range:
        problems.extend(_validate_execution_timeout(s))
    # no_auto_rollback is the policy pack's (rules.OWNER): not a configuration error.
    if in_range and s.fleet_is_computable:
        problems.extend(_validate_deployment_time(s))
    return problems


def _validate_execution_timeout(s: StackSettings) -> list[Problem]:
    """SageMaker refuses a blue/green policy whose execution timeout does not exceed its waits."""
    if s.update_mode is not UpdateMode.BLUE_GREEN:
        return []
    waiting = blue_green_wait_seconds(s)
    if s.maximum_execution_timeout_seconds > waiting:
        return []
    waits = deployment.traffic_shift_waits(s.traffic_routing, s.traffic_step_percent)
    return [
        Problem(
            key=keys.MAXIMUM_EXECUTION_TIMEOUT_SECONDS,
            problem=f"{s.maximum_execution_timeout_seconds} s does not exceed the deployment's waits: "
            f"{waits} x trafficWaitSeconds {s.traffic_wait_seconds} s + terminationWaitSeconds "
            f"{s.termination_wait_seconds} s = {waiting} s, which SageMaker refuses",
            fix=f"set maximumExecutionTimeoutSeconds above {waiting} (and at most "
            f"{deployment.MAXIMUM_EXECUTION_TIMEOUT_SECONDS[1]}), or wait less",
        )
    ]


def blue_green_wait_seconds(s: StackSettings) -> int:
    """Seconds a blue/green deployment spends waiting: every traffic wait plus the termination wait."""
    return deployment.blue_green_wait_seconds(
        s.traffic_routing, s.traffic_step_percent, s.traffic_wait_seconds, s.termination_wait_seconds
    )


def worst_case_deployment(s: StackSettings) -> tuple[int, str]:
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


def _validate_deployment_time(s: StackSettings) -> list[Problem]:
    """An update the provider stops waiting for fails the `pulumi up` while SageMaker carries on,
    and the next `pulumi up` then meets an endpoint that is still Updating."""
    seconds, breakdown = worst_case_deployment(s)
    if seconds <= DEPLOYMENT_BUDGET_MINUTES * 60:
        return []
    rolling = s.update_mode is UpdateMode.ROLLING
    return [
        Problem(
            key=keys.ROLLING_WAIT_SECONDS if rolling else keys.TRAFFIC_WAIT_SECONDS,
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


def _validate_network(s: StackSettings) -> list[Problem]:
    problems = _validate_zones(s)
    try:
        vpc = ipaddress.ip_network(s.vpc_cidr, strict=True)
    except ValueError as error:
        problems.append(
            Problem(
                key=keys.VPC_CIDR,
                problem=f"{s.vpc_cidr!r} is not an IPv4 block ({error})",
                fix="use a block such as 10.40.0.0/16",
            )
        )
        return problems
    if not isinstance(vpc, ipaddress.IPv4Network) or not 16 <= vpc.prefixlen <= 28:
        problems.append(
            Problem(
                key=keys.VPC_CIDR,
                problem=f"{s.vpc_cidr} is not an IPv4 block from /16 to /28",
                fix="use a block such as 10.40.0.0/16",
            )
        )
        return problems
    for reserved, why in RESERVED_RANGES:
        if vpc.overlaps(ipaddress.IPv4Network(reserved)):
            problems.append(
                Problem(
                    key=keys.VPC_CIDR,
                    problem=f"{s.vpc_cidr} overlaps {reserved}, {why}",
                    fix="use a private block (10.0.0.0/8, 172.16.0.0/12 outside 172.17.0.0/16, or "
                    "192.168.0.0/16) such as 10.40.0.0/16",
                )
            )
    if not fleet.LARGEST_SUBNET_PREFIX <= s.subnet_prefix_length <= fleet.SMALLEST_SUBNET_PREFIX:
        problems.append(
            Problem(
                key=keys.SUBNET_PREFIX_LENGTH,
                problem=f"/{s.subnet_prefix_length}",
                fix="choose a prefix length from 16 to 28",
            )
        )
    elif s.subnet_headroom_percent < 0:
        problems.append(
            Problem(
                key=keys.SUBNET_HEADROOM_PERCENT, problem=f"{s.subnet_headroom_percent}%", fix="use 0 or more"
            )
        )
    elif s.fleet_is_computable and s.subnet_count >= 1:  # else the fleet is reported elsewhere
        problems.extend(_validate_addresses(s, vpc))
    return problems


def _validate_zones(s: StackSettings) -> list[Problem]:
    problems: list[Problem] = []
    if s.availability_zones:
        bad = [z for z in s.availability_zones if regions.zone_problem(z, s.region) is not None]
        shapeless = [z for z in bad if not regions.is_zone_name(z)]
        if shapeless:
            problems.append(
                Problem(
                    key=keys.AVAILABILITY_ZONES,
                    problem=f"{shapeless} are not zone names",
                    fix=f"list zones such as {s.region or 'eu-west-1'}a",
                )
            )
        for zone in bad:
            if zone not in shapeless:
                problems.append(
                    Problem(
                        key=keys.AVAILABILITY_ZONES,
                        problem=str(regions.zone_problem(zone, s.region)),
                        fix=f"list zones of {s.region} (aws:region), such as {s.region}a",
                    )
                )
        if len(set(s.availability_zones)) != len(s.availability_zones):
            problems.append(
                Problem(
                    key=keys.AVAILABILITY_ZONES, problem="a zone is listed twice", fix="list distinct zones"
                )
            )
    else:
        available = regions.zone_count(s.region)
        if available is not None and s.az_count > available:
            problems.append(
                Problem(
                    key=keys.AZ_COUNT,
                    problem=f"{s.az_count} zones, but {s.region} has {available}",
                    fix=f"set azCount to {available} or less",
                )
            )
    zone_key = keys.AVAILABILITY_ZONES if s.availability_zones else keys.AZ_COUNT
    problems += _finding(zone_key, rules.too_few_subnets(s.subnet_count))
    return problems


def _validate_addresses(s: StackSettings, vpc: ipaddress.IPv4Network) -> list[Problem]:
    """Each subnet holds its share of the peak fleet, and the VPC holds the subnets."""
    needed = s.addresses_per_subnet
    detail = (
        f"peak fleet {s.peak_instances} x 2 addresses over {s.subnet_count} subnets, "
        f"{len(INTERFACE_ENDPOINT_SERVICES)} VPC endpoint ENIs, {s.subnet_headroom_percent}% headroom, "
        "5 reserved"
    )
    finding = rules.subnet_too_small(needed, s.subnet_prefix_length, detail)
    if finding is not None:
        return _finding(keys.SUBNET_PREFIX_LENGTH, finding)
    subnets_needed = s.subnet_count + (1 if s.nat_gateway else 0)
    fits = 2 ** (s.subnet_prefix_length - vpc.prefixlen) if s.subnet_prefix_length >= vpc.prefixlen else 0
    if fits < subnets_needed:
        return [
            Problem(
                key=keys.VPC_CIDR,
                problem=f"{s.vpc_cidr} holds {fits} /{s.subnet_prefix_length} subnet(s), "
                f"the stack needs {subnets_needed}",
                fix="use a larger VPC block or a longer subnet prefix",
            )
        ]
    return []


def _validate_model(s: StackSettings) -> list[Problem]:
    problems: list[Problem] = []
    if s.model_uri is not None:
        if not _S3_MODEL_URI.match(s.model_uri):
            problems.append(
                Problem(
                    key=keys.MODEL_URI,
                    problem=f"{s.model_uri!r} is not an s3://bucket/key.tar.gz URI",
                    fix="give the S3 URI of a model.tar.gz, or leave it empty to use modelDir",
                )
            )
    elif s.model_dir is not None and not (s.model_dir / "xgboost-model").is_file():
        problems.append(
            Problem(
                key=keys.MODEL_DIR,
                problem=f"{s.model_dir} has no xgboost-model file",
                fix="run `make demo-model`, point modelDir at your model, or set modelUri",
            )
        )
    if not 0 <= s.data_capture_percent <= 100:
        problems.append(
            Problem(
                key=keys.DATA_CAPTURE_PERCENT,
                problem=f"{s.data_capture_percent}%",
                fix="choose 0 (off) to 100",
            )
        )
    return problems


def _validate_alarms_and_front_door(s: StackSettings) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    bad_emails = [e for e in s.alarm_emails if not _EMAIL.match(e)]
    if bad_emails:
        add(
            Problem(
                key=keys.ALARM_EMAILS, problem=f"{bad_emails} are not e-mail addresses", fix="list addresses"
            )
        )
    positive = {
        keys.MODEL_LATENCY_P99_MS: s.model_latency_p99_ms,
        keys.ERROR_RATE_PERCENT: s.error_rate_percent,
        keys.CLIENT_ERROR_RATE_PERCENT: s.client_error_rate_percent,
        keys.FLEET_AT_MAX_MINUTES: s.fleet_at_max_minutes,
        keys.API_LATENCY_P99_MS: s.api_latency_p99_ms,
        keys.API_RATE_LIMIT: s.api_rate_limit,
        keys.API_BURST_LIMIT: s.api_burst_limit,
        keys.API_QUOTA_PER_DAY: s.api_quota_per_day,
    }
    for key, value in positive.items():
        if value <= 0:
            add(Problem(key=key, problem=f"{value} is not positive", fix="use a positive figure"))
    for key, value in (
        (keys.CPU_ALARM_PERCENT, s.cpu_alarm_percent),
        (keys.MEMORY_ALARM_PERCENT, s.memory_alarm_percent),
    ):
        problems.extend(_outside_range(key, value, 1, 100, "%"))
    if not MIN_LAMBDA_TIMEOUT_SECONDS <= s.lambda_timeout_seconds < API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS:
        add(
            Problem(
                key=keys.LAMBDA_TIMEOUT_SECONDS,
                problem=f"{s.lambda_timeout_seconds} s; API Gateway gives up "
                f"after {API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS} s and the handler needs "
                f"{MIN_LAMBDA_TIMEOUT_SECONDS} s at least (connect, read, answer)",
                fix=f"choose {MIN_LAMBDA_TIMEOUT_SECONDS}-"
                f"{API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS - 1} seconds",
            )
        )
    low, high = limits.LAMBDA_MEMORY_MB
    problems.extend(_outside_range(keys.LAMBDA_MEMORY_MB, s.lambda_memory_mb, low, high, " MB"))
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        add(
            Problem(
                key=keys.LOG_RETENTION_DAYS,
                problem=f"{s.log_retention_days} is not a CloudWatch Logs retention",
                fix=f"choose one of {sorted(LOG_RETENTION_DAYS)}",
            )
        )
    return problems


def _validate_expected_load(s: StackSettings) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in (
        (keys.EXPECTED_BASE_RPS, s.expected_base_rps),
        (keys.EXPECTED_PEAK_RPS, s.expected_peak_rps),
    ):
        if value < 0 or not math.isfinite(value):
            problems.append(
                Problem(key=key, problem=f"{value} requests/s", fix="use 0 (not declared) or more")
            )
    if not problems and s.expected_peak_rps and s.expected_base_rps > s.expected_peak_rps:
        problems.append(
            Problem(
                key=keys.EXPECTED_PEAK_RPS,
                problem=f"peak {s.expected_peak_rps} requests/s is below the base {s.expected_base_rps}",
                fix="set expectedPeakRps to at least expectedBaseRps",
            )
        )
    return problems


# Reading: a wrongly typed value becomes a Problem, and reading goes on so that every problem is
# reported at once. Values come as YAML gives them (tools) or as strings (the Pulumi runtime:
# numbers and booleans as text, lists and objects as JSON); both are accepted, nothing else.

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.StrEnum)
_INTEGER = re.compile(r"^[+-]?\d+$")


def _shown(raw: Any) -> str:
    """A value for a message: an object or a list as such (the CLI hands them over as JSON text)."""
    value = _decoded(raw) if isinstance(raw, str) and raw.lstrip()[:1] in ("{", "[") else raw
    if isinstance(value, dict):
        return f"an object {json.dumps(value, sort_keys=True)}"
    if isinstance(value, list):
        return f"a list {json.dumps(value)}"
    return repr(raw)


def _string(raw: Any) -> str:
    if not isinstance(raw, str) or _shown(raw) != repr(raw):
        raise TypeError(f"expected a string, got {_shown(raw)}")
    return raw


def _decoded(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _string_list(raw: Any) -> list[str]:
    value = _decoded(raw)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):  # pyright: ignore[reportUnknownVariableType]
        raise TypeError(f"expected a list of strings, got {_shown(raw)}")
    return list(value)  # pyright: ignore[reportUnknownArgumentType]


def _quota_object(raw: Any) -> dict[str, int]:
    value = _decoded(raw)
    if not isinstance(value, dict):
        raise TypeError(f"expected an object of instance type -> count, got {_shown(raw)}")
    quotas: dict[str, int] = {}
    for instance_type_name, count in value.items():  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise TypeError(
                f"the quota for {instance_type_name} must be a whole number >= 0, got {count!r}"
                + (" (a string: drop the quotes)" if isinstance(count, str) else "")
            )
        if count > limits.INT32_MAX:
            raise TypeError(f"the quota for {instance_type_name} is {count}, past what an AWS quota holds")
        quotas[str(instance_type_name)] = count  # pyright: ignore[reportUnknownArgumentType]
    return quotas


def _integer(raw: Any) -> int:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | str)
        or (isinstance(raw, str) and not _INTEGER.match(raw))
    ):
        raise TypeError(f"{_shown(raw)} is not a whole number")
    return int(raw)


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise TypeError(f"{_shown(raw)} is not true or false")


class _Reader:
    def __init__(self, values: Mapping[str, Any], problems: list[Problem]) -> None:
        self.values = values
        self.problems = problems

    def read(self, key: str, convert: Callable[[Any], _T], fallback: _T, expected: str) -> _T:
        if key not in self.values or self.values[key] is None:
            self.problems.append(
                Problem(
                    key=key,
                    problem="missing (Pulumi.yaml declares no default)",
                    fix=f"set {PROJECT}:{key} to {expected}",
                )
            )
            return fallback
        try:
            return convert(self.values[key])
        except (TypeError, ValueError) as error:
            self.problems.append(
                Problem(key=key, problem=str(error), fix=f"set {PROJECT}:{key} to {expected}")
            )
            return fallback

    def integer(self, key: str) -> int:
        return self.read(key, _integer, 0, "a whole number")

    def boolean(self, key: str) -> bool:
        return self.read(key, _boolean, False, "true or false")

    def enum(self, key: str, kind: type[_E]) -> _E | None:
        reported = len(self.problems)
        raw = self.read(key, _string, "", "a string")
        if len(self.problems) > reported:
            return None
        try:
            return kind(raw)
        except ValueError:
            choices = ", ".join(m.value for m in kind)
            self.problems.append(
                Problem(key=key, problem=f"{raw!r} is not one of {choices}", fix=f"choose one of {choices}")
            )
            return None
