"""The endpoint as the stack describes it: endpoint, configuration, variants, scaling, subnets.

Built from CrossGuard's stack resources (``PolicyResource``), which the in-process runner builds
from the recorded graph. Resources are linked through property dependencies and dependencies
(URNs), never through names: in a real preview autonamed names and ids are unknown. Several
policies and the offline plan read this one view, so they can never disagree on what a variant's
peak fleet or a subnet's share is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pulumi_policy import PolicyResource

from policies import props
from policies.props import UNKNOWN
from stackcore import deployment
from stackcore.fleet import (
    ADDRESSES_PER_INSTANCE,
    UpdateMode,
    VariantFleet,
    addresses_needed_per_subnet,
    instances_per_subnet,
    rolling_batch_instances,
    subnet_size,
)

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SUBNET = "aws:ec2/subnet:Subnet"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
AWS_PROVIDER = "pulumi:providers:aws"

SAGEMAKER_NAMESPACE = "sagemaker"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
ROLLING_PERCENT_BOUNDS = deployment.ROLLING_BATCH_PERCENT


def property_dependencies(resource: PolicyResource, key: str, type_token: str) -> list[PolicyResource]:
    """Resources of ``type_token`` that the value of input ``key`` came from."""
    return [r for r in resource.property_dependencies.get(key, []) if r.resource_type == type_token]


def linked(resource: PolicyResource, other: PolicyResource) -> bool:
    """True when ``resource`` depends on ``other`` through any input or an explicit dependency."""
    if any(d.urn == other.urn for d in resource.dependencies):
        return True
    return any(d.urn == other.urn for deps in resource.property_dependencies.values() for d in deps)


def of_type(resources: Iterable[PolicyResource], type_token: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == type_token]


@dataclass(frozen=True, kw_only=True)
class Subnet:
    """A subnet the endpoint's model is placed in, with the other ENIs AWS puts there."""

    resource: PolicyResource
    cidr_block: str | None
    """None when not known before the update."""
    availability_zone: str | None
    other_enis: int
    """Interface VPC endpoints, Lambda functions in the VPC and NAT gateways placed in this subnet."""

    @property
    def prefix_length(self) -> int | None:
        if self.cidr_block is None:
            return None
        try:
            return ipaddress.ip_network(self.cidr_block, strict=False).prefixlen
        except ValueError:
            return None  # Not a CIDR block: AWS refuses it before any address is handed out.

    @property
    def size(self) -> int | None:
        prefix = self.prefix_length
        return None if prefix is None else subnet_size(prefix)


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One production variant of an endpoint configuration, with the scaling that applies to it."""

    name: str
    instance_type: str | None
    """None for serverless variants and when not known before the update."""
    initial_count: int | None
    serverless: bool
    scaling_targets: tuple[PolicyResource, ...] = ()
    scaling_policies: tuple[PolicyResource, ...] = ()

    @property
    def min_capacity(self) -> int | None:
        values = [
            v for t in self.scaling_targets if isinstance(v := props.integer(t.props, "minCapacity"), int)
        ]
        return min(values) if values else None

    @property
    def max_capacity(self) -> int | None:
        values = [
            v for t in self.scaling_targets if isinstance(v := props.integer(t.props, "maxCapacity"), int)
        ]
        return max(values) if values else None

    @property
    def max_instances(self) -> int | None:
        """The autoscaling maximum, or the fixed count without autoscaling (whichever is larger)."""
        counts = [c for c in (self.max_capacity, self.initial_count) if c is not None]
        return max(counts) if counts else None


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    resource: PolicyResource
    configuration: PolicyResource | None
    models: tuple[PolicyResource, ...]
    variants: tuple[Variant, ...]
    update_mode: UpdateMode
    rolling_batch_percent: int
    """Rolling batch as a percentage of the variant (5-50); the default when blue/green."""
    rolling_batch_note: str | None
    """Why the batch could not be read as configured, when it could not."""
    subnets: tuple[Subnet, ...]
    subnet_ids_declared: int | None
    """Length of the model's ``vpcConfig.subnets`` list when known (subnets may live outside the stack)."""
    alarms: tuple[PolicyResource, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.resource.name

    def fleets(self) -> list[VariantFleet]:
        """The variants the quota arithmetic can count (instance-backed, type and size known)."""
        fleets: list[VariantFleet] = []
        for variant in self.variants:
            if variant.serverless or variant.instance_type is None or variant.max_instances is None:
                continue
            if variant.max_instances < 1:
                continue
            fleets.append(
                VariantFleet(
                    resource_name=f"{self.name}/{variant.name}",
                    instance_type=variant.instance_type,
                    max_instances=variant.max_instances,
                    update_mode=self.update_mode,
                    rolling_batch_percent=self.rolling_batch_percent,
                )
            )
        return fleets

    @property
    def peak(self) -> int:
        return sum(f.peak for f in self.fleets())

    @property
    def subnet_count(self) -> int:
        """Subnets SageMaker spreads the fleet over."""
        return self.subnet_ids_declared or len(self.subnets)

    @property
    def availability_zones(self) -> set[str]:
        return {s.availability_zone for s in self.subnets if s.availability_zone is not None}


def _variants(configuration: PolicyResource | None) -> list[Variant]:
    if configuration is None:
        return []
    raw = props.items(configuration.props, "productionVariants")
    if not isinstance(raw, list):
        return []
    variants: list[Variant] = []
    for index, entry in enumerate(raw):
        name = props.text(entry, "variantName")
        instance_type = props.text(entry, "instanceType")
        count = props.integer(entry, "initialInstanceCount")
        serverless = props.get(entry, "serverlessConfig")
        variants.append(
            Variant(
                name=name if isinstance(name, str) else f"variant-{index}",
                instance_type=instance_type if isinstance(instance_type, str) else None,
                initial_count=count if isinstance(count, int) else None,
                serverless=serverless is not None and serverless is not UNKNOWN,
            )
        )
    return variants


def _update_mode(endpoint: PolicyResource, variants: Sequence[Variant]) -> tuple[UpdateMode, int, str | None]:
    """Update mode and rolling batch percentage from the endpoint's ``deploymentConfig``.

    With no deployment config SageMaker updates blue/green, all at once (AWS-FACTS.md).
    """
    rolling = props.mapping(endpoint.props, "deploymentConfig", "rollingUpdatePolicy")
    if not isinstance(rolling, Mapping):
        return UpdateMode.BLUE_GREEN, 20, None
    low, high = ROLLING_PERCENT_BOUNDS
    kind = props.text(rolling, "maximumBatchSize", "type")
    value = props.integer(rolling, "maximumBatchSize", "value")
    if not isinstance(value, int) or value < 1:
        return UpdateMode.ROLLING, high, "rolling batch size unknown: counted as 50% of the variant"
    if kind == "CAPACITY_PERCENT":
        return UpdateMode.ROLLING, min(max(value, low), high), None
    # INSTANCE_COUNT: the smallest percentage of the largest variant whose batch (stackcore.fleet
    # rounds up) holds that many instances, so the peak is counted with its arithmetic.
    largest = max((v.max_instances or 1 for v in variants), default=1)
    for percent in range(low, high + 1):
        if rolling_batch_instances(largest, percent) >= value:
            return UpdateMode.ROLLING, percent, None
    return (
        UpdateMode.ROLLING,
        high,
        (f"rolling batch of {value} instance(s) is over 50% of a variant of {largest}: AWS refuses it"),
    )


def _subnet(resource: PolicyResource, resources: Sequence[PolicyResource]) -> Subnet:
    cidr = props.text(resource.props, "cidrBlock")
    zone = props.text(resource.props, "availabilityZone")
    if not isinstance(zone, str):
        zone = props.text(resource.props, "availabilityZoneId")
    other = 0
    for endpoint in of_type(resources, VPC_ENDPOINT):
        kind = props.text(endpoint.props, "vpcEndpointType")
        if kind == "Interface" and resource in property_dependencies(endpoint, "subnetIds", SUBNET):
            other += 1
    for function in of_type(resources, LAMBDA_FUNCTION):
        if resource in property_dependencies(function, "vpcConfig", SUBNET):
            other += 1
    for gateway in of_type(resources, NAT_GATEWAY):
        if resource in property_dependencies(gateway, "subnetId", SUBNET):
            other += 1
    return Subnet(
        resource=resource,
        cidr_block=cidr if isinstance(cidr, str) else None,
        availability_zone=zone if isinstance(zone, str) else None,
        other_enis=other,
    )


def _variant_of(target: PolicyResource, variants: Sequence[Variant]) -> Variant | None:
    resource_id = props.text(target.props, "resourceId")
    if isinstance(resource_id, str) and "/variant/" in resource_id:
        wanted = resource_id.rsplit("/variant/", 1)[1]
        for variant in variants:
            if variant.name == wanted:
                return variant
    # In a preview the id embeds the endpoint's unknown autoname: with one variant there is no doubt.
    return variants[0] if len(variants) == 1 else None


def _named(
    resources: Sequence[PolicyResource], type_token: str, names: Sequence[object]
) -> list[PolicyResource]:
    """Resources of ``type_token`` whose fixed ``name`` input is one of ``names`` (known strings only)."""
    wanted = {n for n in names if isinstance(n, str)}
    return [r for r in of_type(resources, type_token) if props.text(r.props, "name") in wanted]


def predefined_metric_type(policy: PolicyResource) -> str | props.Unknown | None:
    """The predefined metric a target-tracking scaling policy follows (None: another kind of policy)."""
    return props.text(
        policy.props,
        "targetTrackingScalingPolicyConfiguration",
        "predefinedMetricSpecification",
        "predefinedMetricType",
    )


def _scales(scaling: PolicyResource, endpoint: PolicyResource, endpoint_name: str | None) -> bool:
    """A scalable target or policy on this endpoint: by dependency, or by a known fixed name."""
    if linked(scaling, endpoint):
        return True
    resource_id = props.text(scaling.props, "resourceId")
    return (
        endpoint_name is not None
        and isinstance(resource_id, str)
        and resource_id.startswith(f"endpoint/{endpoint_name}/variant/")
    )


def _watches(alarm: PolicyResource, endpoint: PolicyResource, endpoint_name: str | None) -> bool:
    """An alarm whose metric dimensions name this endpoint, by dependency or by a known fixed name."""
    for key in ("dimensions", "metricQueries"):
        if any(d.urn == endpoint.urn for d in alarm.property_dependencies.get(key, [])):
            return True
    if endpoint_name is None:
        return False
    names = [props.text(alarm.props, "dimensions", "EndpointName")]
    queries = props.items(alarm.props, "metricQueries")
    for query in queries if isinstance(queries, list) else []:
        names.append(props.text(query, "metric", "dimensions", "EndpointName"))
    return endpoint_name in names


def endpoints(resources: Sequence[PolicyResource]) -> list[Endpoint]:
    """Every SageMaker endpoint in the stack, with what it is linked to."""
    found: list[Endpoint] = []
    for resource in of_type(resources, ENDPOINT):
        configs = property_dependencies(resource, "endpointConfigName", ENDPOINT_CONFIGURATION) or _named(
            resources, ENDPOINT_CONFIGURATION, [props.text(resource.props, "endpointConfigName")]
        )
        configuration = configs[0] if configs else None
        models: tuple[PolicyResource, ...] = ()
        if configuration is not None:
            raw = props.items(configuration.props, "productionVariants")
            names = [props.text(v, "modelName") for v in raw] if isinstance(raw, list) else []
            models = tuple(
                property_dependencies(configuration, "productionVariants", MODEL)
                or _named(resources, MODEL, names)
            )
        variants = _variants(configuration)

        known_name = props.text(resource.props, "name")
        endpoint_name = known_name if isinstance(known_name, str) else None
        targets = [t for t in of_type(resources, SCALABLE_TARGET) if _scales(t, resource, endpoint_name)]
        policies = [
            p
            for p in of_type(resources, SCALING_POLICY)
            if _scales(p, resource, endpoint_name) or any(linked(p, t) for t in targets)
        ]
        with_scaling: list[Variant] = []
        for variant in variants:
            own_targets = tuple(t for t in targets if _variant_of(t, variants) is variant)
            own_policies = tuple(
                p
                for p in policies
                if _variant_of(p, variants) is variant or any(linked(p, t) for t in own_targets)
            )
            with_scaling.append(
                Variant(
                    name=variant.name,
                    instance_type=variant.instance_type,
                    initial_count=variant.initial_count,
                    serverless=variant.serverless,
                    scaling_targets=own_targets,
                    scaling_policies=own_policies,
                )
            )
        # After scaling is attached: a rolling batch is sized against the autoscaling maximum.
        mode, batch_percent, batch_note = _update_mode(resource, with_scaling)

        subnet_resources: list[PolicyResource] = []
        declared: int | None = None
        for model in models:
            for subnet in property_dependencies(model, "vpcConfig", SUBNET):
                if subnet not in subnet_resources:
                    subnet_resources.append(subnet)
            listed = props.items(model.props, "vpcConfig", "subnets")
            if isinstance(listed, list):
                declared = max(declared or 0, len(listed))
        alarms = tuple(a for a in of_type(resources, METRIC_ALARM) if _watches(a, resource, endpoint_name))
        found.append(
            Endpoint(
                resource=resource,
                configuration=configuration,
                models=models,
                variants=tuple(with_scaling),
                update_mode=mode,
                rolling_batch_percent=batch_percent,
                rolling_batch_note=batch_note,
                subnets=tuple(_subnet(s, resources) for s in subnet_resources),
                subnet_ids_declared=declared or None,
                alarms=alarms,
            )
        )
    return found


@dataclass(frozen=True, kw_only=True)
class SubnetDemand:
    """What one subnet must hold: the endpoints' shares of their peak fleets and the other ENIs."""

    subnet: Subnet
    endpoints: tuple[str, ...]
    instances: int
    """Peak instances placed in this subnet (its share of every endpoint using it)."""
    addresses_needed: int
    headroom_percent: int

    @property
    def fits(self) -> bool | None:
        size = self.subnet.size
        return None if size is None else self.addresses_needed <= size


def subnet_demands(
    found: Sequence[Endpoint], headroom_percent: int, extra_enis_per_subnet: int
) -> list[SubnetDemand]:
    """Addresses each subnet needs at the peak of an update, from stackcore.fleet's arithmetic."""
    users: dict[str, list[Endpoint]] = {}
    subnets: dict[str, Subnet] = {}
    for endpoint in found:
        for subnet in endpoint.subnets:
            users.setdefault(subnet.resource.urn, []).append(endpoint)
            subnets[subnet.resource.urn] = subnet
    demands: list[SubnetDemand] = []
    for urn, using in sorted(users.items(), key=lambda item: subnets[item[0]].resource.name):
        subnet = subnets[urn]
        sized = [e for e in using if e.peak > 0 and e.subnet_count > 0]
        if not sized:
            continue
        first, rest = sized[0], sized[1:]
        # Endpoints beyond the first share the subnet: their instances count as ENIs already there.
        others = sum(ADDRESSES_PER_INSTANCE * instances_per_subnet(e.peak, e.subnet_count) for e in rest)
        needed = addresses_needed_per_subnet(
            first.peak,
            first.subnet_count,
            other_enis_per_subnet=subnet.other_enis + extra_enis_per_subnet + others,
            headroom_percent=headroom_percent,
        )
        demands.append(
            SubnetDemand(
                subnet=subnet,
                endpoints=tuple(e.name for e in sized),
                instances=sum(instances_per_subnet(e.peak, e.subnet_count) for e in sized),
                addresses_needed=needed,
                headroom_percent=headroom_percent,
            )
        )
    return demands
