"""Each guardrail once: a pure function from facts to a finding (what is wrong, and the fix).

The stack's configuration validation (stackcore.settings) maps a finding to the key to change;
the policy pack (policies/) maps the same finding to the resource that breaks it.

Which layer refuses a rule is decided here, once (:data:`OWNER`, and docs/settings.md "Who refuses
what"): the configuration refuses what AWS would refuse or what cannot work (exit 2 from the plan,
found before any resource exists); the policy pack owns the organisation's guardrails, the
production rules, and judges the resources whoever wrote them (exit 1). A rule the pack owns is
never reported as a configuration error, so a stack is refused once, by one layer, for one reason.
The pack also carries the configuration's rules as policies, for resources the program did not
write; for the program's own stacks the configuration refuses them first.

"Production" has one meaning, :func:`stack_is_production`: the ``environment`` tag of the AWS
provider's default tags when it is set, else the stack's name, is ``prod`` or ``production``. The
pack reads the tag and the stack name from the resources; the configuration requires its
``environment`` key to say the same, so both layers judge the same stack the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from stackcore import deployment, endpoint_metrics, fleet
from stackcore.instance_types import is_arm, is_burstable

PRODUCTION_ENVIRONMENTS = ("prod", "production")
"""Environment names that mean production, for the configuration and the policy pack alike."""

MIN_SUBNETS = 2
"""SageMaker refuses a VPC-attached endpoint with fewer than two subnets in distinct AZs."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A broken guardrail: what is wrong and what to change."""

    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}. Fix: {self.fix}"


class Owner(enum.StrEnum):
    """The layer that refuses a rule."""

    CONFIG = "configuration (exit 2)"
    PACK = "policy pack (exit 1)"


def is_production(environment: str | None) -> bool:
    return environment is not None and environment.lower() in PRODUCTION_ENVIRONMENTS


def stack_environment(environment_tag: str | None, stack: str) -> str:
    """The environment a stack is judged as: the provider's ``environment`` tag, else its name."""
    return environment_tag if environment_tag else stack


def stack_is_production(environment_tag: str | None, stack: str) -> bool:
    """The one meaning of production, for the configuration and the policy pack alike."""
    return is_production(stack_environment(environment_tag, stack))


def burstable_in_production(instance_type: str, production: bool) -> Finding | None:
    if not (production and is_burstable(instance_type)):
        return None
    return Finding(
        message=f"{instance_type} is burstable: it throttles to its CPU baseline when credits run out "
        "and cannot be autoscaled",
        fix="use a non-burstable type in production, such as ml.c5.xlarge or ml.m5.large",
    )


def burstable_autoscaled(instance_type: str, autoscaling: bool) -> Finding | None:
    if not (autoscaling and is_burstable(instance_type)):
        return None
    return Finding(
        message=f"{instance_type} is burstable and Application Auto Scaling refuses burstable variants "
        "(RegisterScalableTarget)",
        fix="turn autoscaling off (autoscaling: false) or use a non-burstable type such as ml.c5.xlarge",
    )


def is_variant_scaling_metric(predefined_metric_type: str) -> bool:
    """Either metric a stack may scale on counts as "the variant autoscales"."""
    return predefined_metric_type in endpoint_metrics.VARIANT_SCALING_METRIC_TYPES


def metric_not_for_a_variant(predefined_metric_type: str) -> Finding | None:
    """A target-tracking policy on a predefined metric that does not measure an instance-backed
    variant (another service's, a serverless variant's or an inference component's) never moves it."""
    if is_variant_scaling_metric(predefined_metric_type):
        return None
    return Finding(
        message=f"it tracks {predefined_metric_type}, which measures no instance-backed endpoint variant, "
        "so it never scales one",
        fix="track " + " or ".join(endpoint_metrics.VARIANT_SCALING_METRIC_TYPES) + " (either counts)",
    )


def concurrency_target_beyond_capacity(target: float, measured_capacity: float) -> Finding | None:
    """A concurrency target above what one instance was measured to hold within the latency
    objective: target tracking would keep every instance past its limit before adding one.
    ``measured_capacity`` 0 means not measured (nothing to judge)."""
    if measured_capacity <= 0 or target <= measured_capacity:
        return None
    return Finding(
        message=f"a target of {target:g} concurrent requests per instance is more than the "
        f"{measured_capacity:g} one instance was measured to hold within the latency objective",
        fix=f"set the target (concurrencyPerInstanceTarget) to {measured_capacity:g} or less: make capacity "
        "derives it, and maxConcurrencyPerInstance beside it",
    )


def arm_type_for_amd64_image(instance_type: str) -> Finding | None:
    if not is_arm(instance_type):
        return None
    return Finding(
        message=f"{instance_type} is an Arm (Graviton) type and the serving image is built for "
        "linux/amd64 only: the endpoint would fail to start after provisioning",
        fix="use an x86_64 type such as ml.c5.xlarge or ml.m5.large",
    )


def zone_without_instance(fewest_instances: int, zones: int, production: bool) -> Finding | None:
    """Production keeps at least one instance in every zone, so losing a zone never empties it.

    ``zones`` counts at least :data:`MIN_SUBNETS`: SageMaker spreads over two zones at least."""
    zones = max(zones, MIN_SUBNETS)
    if not production or fewest_instances >= zones:
        return None
    return Finding(
        message=f"production runs as few as {fewest_instances} instance(s) over {zones} Availability "
        "Zones, so a zone has none",
        fix=f"keep at least {zones} instances (the initial count and the autoscaling minimum)",
    )


def too_few_subnets(subnets: int) -> Finding | None:
    if subnets >= MIN_SUBNETS:
        return None
    return Finding(
        message=f"{subnets} subnet(s); SageMaker needs at least two subnets in distinct Availability Zones, "
        "even for one instance",
        fix="place it in two or more subnets in distinct Availability Zones (azCount: 2 or more)",
    )


def no_auto_rollback(auto_rollback: bool, production: bool) -> Finding | None:
    if not production or auto_rollback:
        return None
    return Finding(
        message="a production update would not roll back on the latency and error alarms",
        fix="set autoRollback: true (deploymentConfig.autoRollbackConfiguration with the alarms)",
    )


def rolling_batch_out_of_range(batch_percent: int) -> Finding | None:
    low, high = deployment.ROLLING_BATCH_PERCENT
    if low <= batch_percent <= high:
        return None
    return Finding(
        message=f"{batch_percent}% is outside SageMaker's {low}-{high}% of the variant",
        fix=f"choose {low}-{high}",
    )


def rolling_batch_of_one_instance(smallest_fleet: int) -> Finding | None:
    if smallest_fleet != 1:
        return None
    return Finding(
        message="a rolling batch must be 5-50% of the variant, and with 1 instance a batch of one is 100%",
        fix="use blue-green (ALL_AT_ONCE for no traffic shifting) or run at least 2 instances",
    )


def subnet_too_small(addresses_needed: int, prefix_length: int, detail: str) -> Finding | None:
    """Each subnet holds its share of the peak fleet at two addresses per instance."""
    available = fleet.subnet_size(prefix_length)
    if addresses_needed <= available:
        return None
    largest = fleet.subnet_size(fleet.LARGEST_SUBNET_PREFIX)
    fix = (
        "use /{0} subnets or larger (subnetPrefixLength {0} or less)".format(
            fleet.largest_prefix_holding(addresses_needed)
        )
        if addresses_needed <= largest
        else f"even a /{fleet.LARGEST_SUBNET_PREFIX} ({largest} addresses) is too small: lower the "
        "peak fleet (the maximum instance count) or spread it over more zones"
    )
    return Finding(
        message=f"a /{prefix_length} has {available} addresses but each subnet needs "
        f"{addresses_needed} ({detail})",
        fix=fix,
    )


OWNER: dict[str, Owner] = {
    "burstable_in_production": Owner.PACK,
    "zone_without_instance": Owner.PACK,
    "no_auto_rollback": Owner.PACK,
    "burstable_autoscaled": Owner.CONFIG,
    "arm_type_for_amd64_image": Owner.CONFIG,
    "too_few_subnets": Owner.CONFIG,
    "rolling_batch_out_of_range": Owner.CONFIG,
    "rolling_batch_of_one_instance": Owner.CONFIG,
    "subnet_too_small": Owner.CONFIG,
    # An instance cannot hold it: refused by the configuration; the pack carries it too, for
    # policies the program did not write (appautoscaling-policy-concurrency-capacity).
    "concurrency_target_beyond_capacity": Owner.CONFIG,
    # The program only emits the two variant metrics: a guardrail on resources others write.
    "metric_not_for_a_variant": Owner.PACK,
    "quota_shortfalls": Owner.CONFIG,  # stackcore.fleet.quota_shortfalls: the text is QuotaShortfall.message
}
"""Which layer refuses each guardrail above (see the module docstring)."""
