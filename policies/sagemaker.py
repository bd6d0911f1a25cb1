"""SageMaker policies: quotas, availability, encryption, network placement, scaling, rollback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import props, settings, topology
from policies.props import UNKNOWN
from stackcore import deployment, endpoint_metrics, rules
from stackcore.fleet import QuotaTable, UpdateMode, has_local_nvme, is_burstable, quota_shortfalls


def _describe_fleet(endpoint: topology.Endpoint) -> str:
    parts = []
    for variant in endpoint.variants:
        fleet = next((f for f in endpoint.fleets() if f.resource_name.endswith(f"/{variant.name}")), None)
        if fleet is None:
            continue
        update = (
            "blue/green update runs both fleets"
            if fleet.update_mode is UpdateMode.BLUE_GREEN
            else f"rolling update adds a {fleet.rolling_batch_percent}% batch"
        )
        parts.append(
            f"variant '{variant.name}' {fleet.instance_type} max {fleet.max_instances} -> peak {fleet.peak} "
            f"({update})"
        )
    return "; ".join(parts)


# sagemaker-endpoint-instance-quota

INSTANCE_QUOTA = "sagemaker-endpoint-instance-quota"
_QUOTA_SCHEMA = settings.schema(**settings.QUOTA_PROPERTIES)


def validate_instance_quota(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = settings.resolve(INSTANCE_QUOTA, _QUOTA_SCHEMA, args.get_config())
    quotas = QuotaTable(
        per_instance_type=config[settings.ENDPOINT_INSTANCE_QUOTAS],
        total_instances=config[settings.TOTAL_INSTANCE_QUOTA],
    )
    found = topology.endpoints(args.resources)
    fleets = [fleet for endpoint in found for fleet in endpoint.fleets()]
    by_fleet = {f"{e.name}/{v.name}": e for e in found for v in e.variants}
    for shortfall in quota_shortfalls(fleets, quotas):
        involved = [by_fleet[name] for name in shortfall.variants if name in by_fleet]
        detail = " | ".join(f"endpoint '{e.name}': {_describe_fleet(e)}" for e in dict.fromkeys(involved))
        urn = involved[0].resource.urn if len(set(involved)) == 1 else None
        report_violation(f"{shortfall.message()}. Fleet: {detail}.", urn)


instance_quota = StackValidationPolicy(
    name=INSTANCE_QUOTA,
    description=(
        "The peak endpoint fleet during an update must fit the account's SageMaker instance quotas: request "
        "an increase, lower the autoscaling maximum, or switch to a rolling update."
    ),
    validate=validate_instance_quota,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_QUOTA_SCHEMA,
)


# sagemaker-model-subnet-azs (every stack: AWS wants two subnets in distinct AZs even for one instance)

SUBNET_AZS = "sagemaker-model-subnet-azs"
_SUBNET_AZS_SCHEMA = settings.schema()


def validate_subnet_azs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(SUBNET_AZS, _SUBNET_AZS_SCHEMA, args.get_config())
    for endpoint in topology.endpoints(args.resources):
        if not endpoint.models or (endpoint.subnet_ids_declared is None and not endpoint.subnets):
            continue  # No VPC placement: sagemaker-model-vpc-config reports that.
        model = endpoint.models[0]
        finding = rules.too_few_subnets(endpoint.subnet_count)
        if finding is not None:
            report_violation(f"model '{model.name}' of endpoint '{endpoint.name}': {finding}", model.urn)
            continue
        zones = endpoint.availability_zones
        known = all(s.availability_zone is not None for s in endpoint.subnets)
        if known and endpoint.subnets and len(zones) < 2:
            report_violation(
                f"model '{model.name}' of endpoint '{endpoint.name}' has its {len(endpoint.subnets)} subnets "
                f"all in {', '.join(sorted(zones))}: place them in at least two different Availability Zones",
                model.urn,
            )


subnet_azs = StackValidationPolicy(
    name=SUBNET_AZS,
    description=(
        "An endpoint's model must sit in at least two subnets in distinct Availability Zones: add a private "
        "subnet in another AZ to its vpcConfig."
    ),
    validate=validate_subnet_azs,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SUBNET_AZS_SCHEMA,
)


# sagemaker-variant-instance-count-az (production)

INSTANCE_COUNT_AZ = "sagemaker-variant-instance-count-az"
_INSTANCE_COUNT_AZ_SCHEMA = settings.schema()
NOT_PRODUCTION = "not a production stack"


def validate_instance_count_az(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(INSTANCE_COUNT_AZ, _INSTANCE_COUNT_AZ_SCHEMA, args.get_config())
    if not settings.stack_is_production(args.resources):
        args.not_applicable(NOT_PRODUCTION)
    for endpoint in topology.endpoints(args.resources):
        for variant in endpoint.variants:
            counts = [c for c in (variant.initial_count, variant.min_capacity) if c is not None]
            if variant.serverless or not counts:
                continue
            finding = rules.zone_without_instance(
                min(counts), len(endpoint.availability_zones), production=True
            )
            if finding is not None:
                report_violation(
                    f"endpoint '{endpoint.name}' variant '{variant.name}' (initial "
                    f"{variant.initial_count}, minimum {variant.min_capacity}): {finding}",
                    endpoint.resource.urn,
                )


instance_count_az = StackValidationPolicy(
    name=INSTANCE_COUNT_AZ,
    description=(
        "A production variant needs at least one instance per Availability Zone, initially and at the "
        "autoscaling minimum: raise the initial count and the minimum capacity."
    ),
    validate=validate_instance_count_az,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_INSTANCE_COUNT_AZ_SCHEMA,
)


# sagemaker-variant-instance-type-burstable (production)

BURSTABLE_TYPE = "sagemaker-variant-instance-type-burstable"
_BURSTABLE_TYPE_SCHEMA = settings.schema()


def validate_burstable_type(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != topology.ENDPOINT_CONFIGURATION:
        return
    settings.resolve(BURSTABLE_TYPE, _BURSTABLE_TYPE_SCHEMA, args.get_config())
    if not settings.is_production(args.urn, args.provider):
        args.not_applicable(NOT_PRODUCTION)
    variants = props.items(args.props, "productionVariants")
    if not isinstance(variants, list):
        return
    for variant in variants:
        instance_type = props.text(variant, "instanceType")
        if not isinstance(instance_type, str):
            continue
        finding = rules.burstable_in_production(instance_type, production=True)
        if finding is not None:
            name = props.text(variant, "variantName")
            report_violation(
                f"endpoint configuration '{args.name}' variant '{name if isinstance(name, str) else '?'}': "
                f"{finding}",
                None,
            )


burstable_type = ResourceValidationPolicy(
    name=BURSTABLE_TYPE,
    description=(
        "Production endpoints must not use burstable (ml.t*) instance types: choose a compute or "
        "general-purpose type such as ml.c5.large."
    ),
    validate=validate_burstable_type,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_BURSTABLE_TYPE_SCHEMA,
)


# sagemaker-endpoint-config-kms-key

KMS_KEY = "sagemaker-endpoint-config-kms-key"
_KMS_KEY_SCHEMA = settings.schema()


def validate_kms_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != topology.ENDPOINT_CONFIGURATION:
        return
    settings.resolve(KMS_KEY, _KMS_KEY_SCHEMA, args.get_config())
    variants = props.items(args.props, "productionVariants")
    types = [
        t
        for v in (variants if isinstance(variants, list) else [])
        if isinstance(t := props.text(v, "instanceType"), str)
    ]
    nvme = [t for t in types if has_local_nvme(t)]
    key = props.get(args.props, "kmsKeyArn")
    has_key = key is UNKNOWN or (isinstance(key, str) and key != "")
    if nvme and has_key:
        report_violation(
            f"endpoint configuration '{args.name}' sets kmsKeyArn but {', '.join(sorted(set(nvme)))} has "
            "local NVMe storage, which AWS encrypts in hardware and for which CreateEndpointConfig refuses "
            "a KMS key: remove kmsKeyArn or choose a type without local storage",
            None,
        )
    elif not nvme and not has_key and types:
        report_violation(
            f"endpoint configuration '{args.name}' has no kmsKeyArn: the instances' storage volumes are not "
            "encrypted with a key you control; set kmsKeyArn to a customer-managed KMS key",
            None,
        )


kms_key = ResourceValidationPolicy(
    name=KMS_KEY,
    description=(
        "An endpoint configuration must encrypt its storage with a KMS key (except NVMe '*d' types, where "
        "AWS refuses one): set kmsKeyArn to a customer-managed key."
    ),
    validate=validate_kms_key,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_KMS_KEY_SCHEMA,
)


# sagemaker-model-vpc-config

MODEL_VPC = "sagemaker-model-vpc-config"
_MODEL_VPC_SCHEMA = settings.schema()


def validate_model_vpc(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != topology.MODEL:
        return
    settings.resolve(MODEL_VPC, _MODEL_VPC_SCHEMA, args.get_config())
    vpc = props.get(args.props, "vpcConfig")
    if vpc is UNKNOWN:
        return
    subnets = props.items(vpc, "subnets")
    groups = props.items(vpc, "securityGroupIds")
    if vpc is None or subnets == [] or subnets is None:
        report_violation(
            f"model '{args.name}' has no vpcConfig subnets: its endpoint would run outside your VPC; set "
            "vpcConfig with private subnets in at least two AZs and a security group",
            None,
        )
    elif groups == [] or groups is None:
        report_violation(
            f"model '{args.name}' has vpcConfig without securityGroupIds: add a security group that allows "
            "only what the endpoint needs",
            None,
        )


model_vpc = ResourceValidationPolicy(
    name=MODEL_VPC,
    description=(
        "A SageMaker model must run in your VPC: set vpcConfig with private subnets and a security group."
    ),
    validate=validate_model_vpc,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_MODEL_VPC_SCHEMA,
)


# sagemaker-model-network-isolation

NETWORK_ISOLATION = "sagemaker-model-network-isolation"
_NETWORK_ISOLATION_SCHEMA = settings.schema()


def validate_network_isolation(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != topology.MODEL:
        return
    settings.resolve(NETWORK_ISOLATION, _NETWORK_ISOLATION_SCHEMA, args.get_config())
    isolated = props.flag(args.props, "enableNetworkIsolation")
    if isolated is UNKNOWN or isolated is True:
        return
    found = "does not set enableNetworkIsolation" if isolated is None else "has enableNetworkIsolation=False"
    report_violation(
        f"model '{args.name}' {found}: the serving container could reach the network; set "
        "enableNetworkIsolation=True (the XGBoost container needs no outbound calls)",
        None,
    )


network_isolation = ResourceValidationPolicy(
    name=NETWORK_ISOLATION,
    description="A SageMaker model must run with network isolation: set enableNetworkIsolation=True.",
    validate=validate_network_isolation,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_NETWORK_ISOLATION_SCHEMA,
)


# sagemaker-endpoint-autoscaling-policy

AUTOSCALING = "sagemaker-endpoint-autoscaling-policy"
_VARIANT_METRICS = " or ".join(endpoint_metrics.VARIANT_SCALING_METRIC_TYPES)
_AUTOSCALING_SCHEMA = settings.schema()


def validate_autoscaling(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(AUTOSCALING, _AUTOSCALING_SCHEMA, args.get_config())
    for endpoint in topology.endpoints(args.resources):
        for variant in endpoint.variants:
            # Burstable types cannot be autoscaled at all (appautoscaling-target-burstable-variant),
            # and serverless variants scale themselves.
            if variant.serverless or variant.instance_type is None or is_burstable(variant.instance_type):
                continue
            where = f"endpoint '{endpoint.name}' variant '{variant.name}' ({variant.instance_type})"
            targets = [
                t
                for t in variant.scaling_targets
                if props.text(t.props, "scalableDimension") in (topology.VARIANT_DIMENSION, UNKNOWN)
            ]
            if not targets:
                report_violation(
                    f"{where} has no autoscaling target: register an aws.appautoscaling.Target on "
                    f"'{topology.VARIANT_DIMENSION}' with min and max capacity",
                    endpoint.resource.urn,
                )
                continue
            for policy in variant.scaling_policies:
                # A customized metric, step scaling or a type not known before the update is not judged.
                metric_type = topology.predefined_metric_type(policy)
                if not isinstance(metric_type, str):
                    continue
                finding = rules.metric_not_for_a_variant(metric_type)
                if finding is None:
                    continue
                report_violation(f"scaling policy '{policy.name}' on {where}: {finding}", policy.urn)
            if not variant.scaling_policies:
                report_violation(
                    f"{where} has a scalable target but no scaling policy: add a target-tracking "
                    f"aws.appautoscaling.Policy on {_VARIANT_METRICS}",
                    endpoint.resource.urn,
                )


autoscaling = StackValidationPolicy(
    name=AUTOSCALING,
    description=(
        "Every instance-backed endpoint variant must be autoscaled: add an appautoscaling Target and a "
        "target-tracking Policy on invocations per instance or high-resolution concurrency (either counts)."
    ),
    validate=validate_autoscaling,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_AUTOSCALING_SCHEMA,
)


# sagemaker-endpoint-deployment-rollback (production)

DEPLOYMENT_ROLLBACK = "sagemaker-endpoint-deployment-rollback"
ALLOWED_UPDATE_MODES = "allowedUpdateModes"
_DEPLOYMENT_ROLLBACK_SCHEMA = settings.schema(
    **{
        ALLOWED_UPDATE_MODES: {
            "type": "array",
            "items": {"type": "string", "enum": [m.value for m in UpdateMode]},
            # The brief for production is blue/green (the old fleet stays until the new one is
            # proven); a team short of quota may accept rolling updates here, after review.
            "default": [UpdateMode.BLUE_GREEN.value],
            "description": "Update modes accepted in production: blue-green, and rolling if allowed.",
        }
    }
)


def validate_deployment_rollback(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != topology.ENDPOINT:
        return
    config = settings.resolve(DEPLOYMENT_ROLLBACK, _DEPLOYMENT_ROLLBACK_SCHEMA, args.get_config())
    if not settings.is_production(args.urn, args.provider):
        args.not_applicable(NOT_PRODUCTION)
    allowed = [UpdateMode(m) for m in config[ALLOWED_UPDATE_MODES] if m in {u.value for u in UpdateMode}]
    wanted = " or ".join(m.value for m in allowed) or "blue-green"
    deployment = props.get(args.props, "deploymentConfig")
    if deployment is UNKNOWN:
        return
    blue_green = props.get(deployment, "blueGreenUpdatePolicy")
    rolling = props.get(deployment, "rollingUpdatePolicy")
    mode = (
        UpdateMode.ROLLING
        if rolling is not None
        else UpdateMode.BLUE_GREEN
        if blue_green is not None
        else None
    )
    if mode is None or mode not in allowed:
        found = "no update policy" if mode is None else f"a {mode.value} update"
        report_violation(
            f"endpoint '{args.name}' has {found} in its deploymentConfig: set a {wanted} update policy so "
            "that a bad model is shifted in gradually and rolled back (a reviewed exception: add the mode "
            f"to '{ALLOWED_UPDATE_MODES}' in the pack config)",
            None,
        )
    if blue_green is not None and blue_green is not UNKNOWN:
        for problem in _blue_green_problems(blue_green):
            report_violation(f"endpoint '{args.name}' {problem}", None)
    alarms = props.items(deployment, "autoRollbackConfiguration", "alarms")
    if alarms is UNKNOWN:
        return
    finding = rules.no_auto_rollback(bool(alarms), production=True)
    if finding is not None:
        report_violation(f"endpoint '{args.name}': {finding}", None)


_STEP_SIZE_KEYS = {deployment.CANARY: "canarySize", deployment.LINEAR: "linearStepSize"}


def _blue_green_problems(policy: Mapping[str, Any]) -> list[str]:
    """Step sizes and an execution timeout SageMaker would refuse (stackcore/deployment.py)."""
    routing_config = props.get(policy, "trafficRoutingConfiguration")
    routing = props.text(routing_config, "type")
    if not isinstance(routing, str):
        return []
    problems: list[str] = []
    step: int | None = 1  # ALL_AT_ONCE has no step size and one wait
    step_key = _STEP_SIZE_KEYS.get(routing)
    if step_key is not None:
        size = props.get(routing_config, step_key)
        value = props.integer(size, "value")
        # INSTANCE_COUNT steps depend on the fleet size: only percentages are judged here.
        step = value if isinstance(value, int) and props.text(size, "type") == "CAPACITY_PERCENT" else None
        wrong = deployment.step_percent_problem(routing, step) if step is not None else None
        if wrong is not None:
            low, high = deployment.TRAFFIC_STEP_PERCENT[routing]
            problems.append(f"shifts traffic in steps of {wrong}: set {step_key}.value to {low}-{high}")
    wait = props.integer(routing_config, "waitIntervalInSeconds")
    termination = props.integer(policy, "terminationWaitInSeconds")
    timeout = props.integer(policy, "maximumExecutionTimeoutInSeconds")
    termination = 0 if termination is None else termination  # the provider's default
    if (
        step is None
        or step < 1
        or not isinstance(wait, int)
        or not isinstance(termination, int)
        or not isinstance(timeout, int)
    ):
        return problems  # unknown until the update, or reported above
    waiting = deployment.blue_green_wait_seconds(routing, step, wait, termination)
    if timeout <= waiting:
        problems.append(
            f"has maximumExecutionTimeoutInSeconds {timeout}, which does not exceed its traffic and "
            f"termination waits ({waiting} s) as SageMaker requires: raise it above {waiting} or wait less"
        )
    return problems


deployment_rollback = ResourceValidationPolicy(
    name=DEPLOYMENT_ROLLBACK,
    description=(
        "A production endpoint must update through a guarded (blue/green) deployment with auto-rollback "
        "alarms: set deploymentConfig with an update policy and autoRollbackConfiguration."
    ),
    validate=validate_deployment_rollback,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_DEPLOYMENT_ROLLBACK_SCHEMA,
)

POLICIES = [
    instance_quota,
    subnet_azs,
    instance_count_az,
    burstable_type,
    kms_key,
    model_vpc,
    network_isolation,
    autoscaling,
    deployment_rollback,
]
