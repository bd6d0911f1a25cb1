"""EC2 policies: the subnets an endpoint uses must hold its peak fleet's addresses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from lib.fleet import ADDRESSES_PER_INSTANCE, RESERVED_ADDRESSES_PER_SUBNET, largest_prefix_holding
from policies import settings, topology

SUBNET_ADDRESSES = "ec2-subnet-endpoint-addresses"
HEADROOM_PERCENT = "headroomPercent"
EXTRA_ENIS_PER_SUBNET = "extraEnisPerSubnet"
_SCHEMA = settings.schema(
    **{
        HEADROOM_PERCENT: {
            "type": "integer",
            "minimum": 0,
            "default": 10,
            "description": "Spare addresses on top of the endpoint's and other ENIs' needs, in percent.",
        },
        EXTRA_ENIS_PER_SUBNET: {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "ENIs placed in each subnet by things outside this stack (other stacks, "
            "services).",
        },
    }
)


def subnet_demands(
    resources: Sequence[PolicyResource], given: Mapping[str, Any] | None
) -> list[topology.SubnetDemand]:
    """What every endpoint subnet must hold, with this policy's settings (the offline plan prints it)."""
    config = settings.resolve(SUBNET_ADDRESSES, _SCHEMA, given)
    return topology.subnet_demands(
        topology.endpoints(resources), config[HEADROOM_PERCENT], config[EXTRA_ENIS_PER_SUBNET]
    )


def validate_subnet_addresses(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for demand in subnet_demands(args.resources, args.get_config()):
        size = demand.subnet.size
        if size is None or demand.addresses_needed <= size:
            continue
        subnet = demand.subnet
        report_violation(
            f"subnet '{subnet.resource.name}' ({subnet.cidr_block}, {size} addresses) needs "
            f"{demand.addresses_needed}: {demand.instances} peak instance(s) of "
            f"{', '.join(demand.endpoints)} x {ADDRESSES_PER_INSTANCE} IPs + {subnet.other_enis} other "
            f"ENI(s) + {demand.headroom_percent}% headroom + {RESERVED_ADDRESSES_PER_SUBNET} reserved by "
            f"AWS; use a /{largest_prefix_holding(demand.addresses_needed)} or larger, spread over more "
            "subnets, or lower the autoscaling maximum",
            subnet.resource.urn,
        )


subnet_addresses = StackValidationPolicy(
    name=SUBNET_ADDRESSES,
    description=(
        "Each subnet of an endpoint must hold its share of the peak fleet (two IPs per instance, both "
        "fleets during blue/green) plus other ENIs and headroom: enlarge the subnet or add subnets."
    ),
    validate=validate_subnet_addresses,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SCHEMA,
)

POLICIES = [subnet_addresses]
