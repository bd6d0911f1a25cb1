"""Fleet, address and quota arithmetic, written once (the stack core).

The program's configuration validation, the CrossGuard policies, the offline plan and the
capacity tool all call these functions, so a figure can never
mean one thing at preview time and another under CrossGuard. Facts (sources in docs/settings.md):

- a VPC-attached endpoint takes at least two private IP addresses per instance;
- AWS reserves five addresses in every subnet;
- a blue/green update runs the old and the new fleet at once (2x the peak), a rolling update
  adds one batch on top of the fleet;
- burstable (``ml.t*``) instance types cannot be autoscaled.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The instance-type facts live in stackcore.instance_types; re-exported for the fleet's callers.
from stackcore.instance_types import has_local_nvme as has_local_nvme  # noqa: PLC0414 - re-exported
from stackcore.instance_types import is_arm as is_arm  # noqa: PLC0414 - re-exported
from stackcore.instance_types import is_burstable as is_burstable  # noqa: PLC0414 - re-exported

is_graviton = is_arm

ADDRESSES_PER_INSTANCE = 2
"""Private IP addresses a VPC-attached SageMaker endpoint instance takes (SageMaker guide,
endpoints in a VPC)."""

RESERVED_ADDRESSES_PER_SUBNET = 5
"""AWS keeps the network address, the router, DNS, one for future use and the broadcast address."""

SMALLEST_SUBNET_PREFIX = 28
"""AWS allows subnets from /16 to /28."""

LARGEST_SUBNET_PREFIX = 16

SECONDS_PER_MINUTE = 60


class UpdateMode(enum.StrEnum):
    """How an endpoint update replaces the fleet; it decides the extra capacity an update needs."""

    BLUE_GREEN = "blue-green"
    ROLLING = "rolling"


def rolling_batch_instances(max_instances: int, batch_percent: int) -> int:
    """Instances a rolling update adds at once: ``batch_percent`` of the fleet, at least one."""
    if not 5 <= batch_percent <= 50:
        raise ValueError(f"a rolling batch is 5-50% of the variant, got {batch_percent}%")
    return max(1, math.ceil(max_instances * batch_percent / 100))


def peak_instances(max_instances: int, mode: UpdateMode, rolling_batch_percent: int = 20) -> int:
    """Instances that run at once while an update is in flight with the fleet at its maximum."""
    if max_instances < 1:
        raise ValueError(f"an endpoint variant has at least one instance, got {max_instances}")
    if mode is UpdateMode.BLUE_GREEN:
        return 2 * max_instances
    return max_instances + rolling_batch_instances(max_instances, rolling_batch_percent)


def instances_per_subnet(peak: int, subnet_count: int) -> int:
    """The share of the peak fleet one subnet must be able to hold.

    SageMaker spreads instances over the subnets it is given but does not promise an even split,
    so each subnet is sized for the rounded-up share.
    """
    if subnet_count < 1:
        raise ValueError("an endpoint needs at least one subnet")
    return math.ceil(peak / subnet_count)


def addresses_needed_per_subnet(
    peak: int,
    subnet_count: int,
    other_enis_per_subnet: int = 0,
    headroom_percent: int = 0,
) -> int:
    """Addresses a subnet must have: its share of the fleet, other ENIs, headroom, AWS's five."""
    if other_enis_per_subnet < 0 or headroom_percent < 0:
        raise ValueError("ENI counts and headroom cannot be negative")
    used = ADDRESSES_PER_INSTANCE * instances_per_subnet(peak, subnet_count) + other_enis_per_subnet
    return math.ceil(used * (100 + headroom_percent) / 100) + RESERVED_ADDRESSES_PER_SUBNET


def subnet_size(prefix_length: int) -> int:
    """Total addresses in an IPv4 block of the given prefix length."""
    if not 0 <= prefix_length <= 32:
        raise ValueError(f"an IPv4 prefix length is 0-32, got /{prefix_length}")
    return 2 ** (32 - prefix_length)


def largest_prefix_holding(addresses: int) -> int:
    """The smallest subnet (largest prefix length, /28 at most) with at least ``addresses``."""
    for prefix in range(SMALLEST_SUBNET_PREFIX, LARGEST_SUBNET_PREFIX - 1, -1):
        if subnet_size(prefix) >= addresses:
            return prefix
    raise ValueError(f"{addresses} addresses do not fit in a /{LARGEST_SUBNET_PREFIX}, AWS's largest subnet")


@dataclass(frozen=True, kw_only=True)
class VariantFleet:
    """One production variant as the quota check sees it."""

    resource_name: str
    """Logical name of the endpoint configuration (or stack setting) the figures come from."""
    instance_type: str
    max_instances: int
    """The autoscaling maximum, or the fixed instance count without autoscaling."""
    update_mode: UpdateMode = UpdateMode.BLUE_GREEN
    rolling_batch_percent: int = 20

    @property
    def peak(self) -> int:
        return peak_instances(self.max_instances, self.update_mode, self.rolling_batch_percent)


@dataclass(frozen=True, kw_only=True)
class QuotaTable:
    """The SageMaker endpoint-instance quotas a stack assumes.

    AWS publishes no default table; a new account reportedly has 0 for almost every type and 2
    for ml.t2.medium, so that is the default, and a stack declares what its account really has.
    """

    per_instance_type: Mapping[str, int]
    """Quota ``"<type> for endpoint usage"``; a type that is absent has a quota of 0."""
    total_instances: int
    """Quota "Number of instances across active endpoints"."""

    def for_type(self, instance_type: str) -> int:
        return int(self.per_instance_type.get(instance_type, 0))


NEW_ACCOUNT_QUOTAS = QuotaTable(per_instance_type={"ml.t2.medium": 2}, total_instances=2)


@dataclass(frozen=True, kw_only=True)
class QuotaShortfall:
    """A quota that the peak fleet exceeds, phrased as the request to make."""

    quota_name: str
    needed: int
    quota: int
    variants: tuple[str, ...]

    @property
    def increase_by(self) -> int:
        return self.needed - self.quota

    def message(self) -> str:
        who = ", ".join(self.variants)
        return (
            f"peak fleet of {self.needed} instance(s) ({who}) exceeds the SageMaker quota "
            f"'{self.quota_name}' of {self.quota}: request an increase of {self.increase_by} "
            f"(to {self.needed}) in Service Quotas (service code 'sagemaker'), or lower the maximum "
            f"instance count or use a rolling update"
        )


def quota_shortfalls(fleets: Iterable[VariantFleet], quotas: QuotaTable) -> list[QuotaShortfall]:
    """Every quota the peak fleets exceed: per instance type, then the account-wide total."""
    fleets = list(fleets)
    by_type: dict[str, list[VariantFleet]] = {}
    for fleet in fleets:
        by_type.setdefault(fleet.instance_type, []).append(fleet)
    shortfalls: list[QuotaShortfall] = []
    for instance_type, members in sorted(by_type.items()):
        needed = sum(f.peak for f in members)
        quota = quotas.for_type(instance_type)
        if needed > quota:
            shortfalls.append(
                QuotaShortfall(
                    quota_name=f"{instance_type} for endpoint usage",
                    needed=needed,
                    quota=quota,
                    variants=tuple(f.resource_name for f in members),
                )
            )
    total = sum(f.peak for f in fleets)
    if total > quotas.total_instances:
        shortfalls.append(
            QuotaShortfall(
                quota_name="Number of instances across active endpoints",
                needed=total,
                quota=quotas.total_instances,
                variants=tuple(f.resource_name for f in fleets),
            )
        )
    return shortfalls


# Capacity arithmetic: AWS's formula for the per-minute target of SageMakerVariantInvocationsPerInstance.


SAFETY_FACTOR = 0.5
"""AWS's starting SAFETY_FACTOR in MAX_RPS x SAFETY_FACTOR x 60 (AWS-FACTS.md, autoscaling)."""


def invocations_per_instance_target(max_rps_per_instance: float, safety_factor: float = SAFETY_FACTOR) -> int:
    """Target for ``SageMakerVariantInvocationsPerInstance`` (per minute): MAX_RPS x SAFETY x 60."""
    if max_rps_per_instance <= 0:
        raise ValueError("the measured capacity of an instance must be positive")
    if not 0 < safety_factor <= 1:
        raise ValueError(f"the safety factor is in (0, 1], got {safety_factor}")
    return max(1, math.floor(max_rps_per_instance * safety_factor * SECONDS_PER_MINUTE))


def max_rps_from_invocations_target(target_per_minute: int, safety_factor: float = SAFETY_FACTOR) -> float:
    """The capacity of one instance that a per-minute target implies: AWS's formula inverted."""
    if target_per_minute < 1:
        raise ValueError("the scaling target must be positive")
    return target_per_minute / (safety_factor * SECONDS_PER_MINUTE)


def instances_for_load(load_rps: float, rps_per_instance: float) -> int:
    """Instances that carry ``load_rps`` when each carries ``rps_per_instance``; at least one."""
    if rps_per_instance <= 0:
        raise ValueError("the per-instance rate must be positive")
    if load_rps < 0:
        raise ValueError("a load cannot be negative")
    return max(1, math.ceil(load_rps / rps_per_instance))


def instances_surviving_az_loss(needed_instances: int, az_count: int) -> int:
    """The smallest fleet, spread evenly over ``az_count`` AZs, that keeps ``needed_instances``
    after the AZ with the most instances is lost. Never fewer than one instance per AZ."""
    if az_count < 1:
        raise ValueError("at least one Availability Zone")
    if needed_instances < 1:
        raise ValueError("at least one instance is needed")
    if az_count == 1:
        return needed_instances
    fleet = max(az_count, needed_instances)
    while fleet - math.ceil(fleet / az_count) < needed_instances:
        fleet += 1
    return fleet
