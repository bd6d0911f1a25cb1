"""EC2 policies: the subnets an endpoint uses must hold its peak fleet's addresses, no security
group admits the whole internet, and every VPC endpoint carries a policy narrower than full access."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import cidrs, iam_documents, props, settings, topology
from policies.props import UNKNOWN
from stackcore import rules
from stackcore.fleet import ADDRESSES_PER_INSTANCE, RESERVED_ADDRESSES_PER_SUBNET

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
        subnet = demand.subnet
        if subnet.prefix_length is None:
            continue
        detail = (
            f"{demand.instances} peak instance(s) of {', '.join(demand.endpoints)} x "
            f"{ADDRESSES_PER_INSTANCE} IPs + {subnet.other_enis} other ENI(s) + "
            f"{demand.headroom_percent}% headroom + {RESERVED_ADDRESSES_PER_SUBNET} reserved by AWS"
        )
        finding = rules.subnet_too_small(demand.addresses_needed, subnet.prefix_length, detail)
        if finding is not None:
            where = f"subnet '{subnet.resource.name}' ({subnet.cidr_block})"
            report_violation(f"{where}: {finding}", subnet.resource.urn)


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

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

OPEN_INGRESS = "ec2-security-group-open-ingress"
_OPEN_INGRESS_SCHEMA = settings.schema()


def _blocks(rule: Any, *keys: str) -> list[str]:
    """The CIDR blocks under ``keys`` (a list or a single string each); unknown ones are left out."""
    found: list[str] = []
    for key in keys:
        listed = props.items(rule, key)
        values = listed if isinstance(listed, list) else [props.get(rule, key)]
        found.extend(v for v in values if isinstance(v, str))
    return found


def _ports(rule: Any, protocol_key: str) -> str:
    protocol = props.text(rule, protocol_key)
    low, high = props.integer(rule, "fromPort"), props.integer(rule, "toPort")
    if protocol in ("-1", "all"):
        return "all ports"
    ports = f"{low}" if low == high else f"{low}-{high}"
    return f"{protocol or '?'} {ports}"


def _ingress_rules(args: ResourceValidationArgs) -> list[tuple[str, list[str]]]:
    """(which rule and ports, its source blocks) for every ingress rule the resource declares."""
    if args.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        rules = props.items(args.props, "ingress")
        return [
            (f"ingress rule #{i} ({_ports(r, 'protocol')})", _blocks(r, "cidrBlocks", "ipv6CidrBlocks"))
            for i, r in enumerate(rules if isinstance(rules, list) else [])
        ]
    if args.resource_type == SECURITY_GROUP_RULE and props.text(args.props, "type") == "ingress":
        return [
            (f"rule ({_ports(args.props, 'protocol')})", _blocks(args.props, "cidrBlocks", "ipv6CidrBlocks"))
        ]
    if args.resource_type == INGRESS_RULE:
        return [(f"rule ({_ports(args.props, 'ipProtocol')})", _blocks(args.props, "cidrIpv4", "cidrIpv6"))]
    return []


def validate_open_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(OPEN_INGRESS, _OPEN_INGRESS_SCHEMA, args.get_config())
    for where, blocks in _ingress_rules(args):
        world = cidrs.open_to_the_world(blocks)
        if world:
            report_violation(
                f"{where} of '{args.name}' admits {', '.join(world)}, the whole internet: allow only the "
                "VPC's CIDR block, a prefix list or a source security group",
                None,
            )


open_ingress = ResourceValidationPolicy(
    name=OPEN_INGRESS,
    description=(
        "Security groups must not admit ingress from 0.0.0.0/0 or ::/0: allow the VPC's CIDR block, a prefix "
        "list or a source security group instead."
    ),
    validate=validate_open_ingress,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_OPEN_INGRESS_SCHEMA,
)


VPC_ENDPOINT_POLICY = "aws:ec2/vpcEndpointPolicy:VpcEndpointPolicy"
ENDPOINT_POLICY = "ec2-vpc-endpoint-policy"
_ENDPOINT_POLICY_SCHEMA = settings.schema()
# Gateway Load Balancer endpoints take no policy; absent, the type is Gateway.
_POLICY_TYPES = ("Interface", "Gateway")


def _endpoint_documents(endpoint: PolicyResource, resources: Sequence[PolicyResource]) -> list[object]:
    """The endpoint's own policy and those of VpcEndpointPolicy resources attached to it."""
    found: list[object] = []
    own = props.get(endpoint.props, "policy")
    if own is not None:
        found.append(own)
    for attached in topology.of_type(resources, VPC_ENDPOINT_POLICY):
        if endpoint in topology.property_dependencies(attached, "vpcEndpointId", topology.VPC_ENDPOINT):
            found.append(props.get(attached.props, "policy"))
    return found


def validate_endpoint_policy(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(ENDPOINT_POLICY, _ENDPOINT_POLICY_SCHEMA, args.get_config())
    for endpoint in topology.of_type(args.resources, topology.VPC_ENDPOINT):
        kind = props.text(endpoint.props, "vpcEndpointType") or "Gateway"
        if kind not in _POLICY_TYPES:
            continue
        service = props.text(endpoint.props, "serviceName")
        label = f"VPC endpoint '{endpoint.name}' ({service if isinstance(service, str) else kind})"
        documents = _endpoint_documents(endpoint, args.resources)
        if not documents:
            report_violation(
                f"{label} has no endpoint policy, so AWS applies the default one, which lets any principal "
                "do anything to any resource through it: set policy to a document that allows only the "
                "actions and ARNs that go through it (e.g. ECR pulls from the repository, the model object)",
                endpoint.urn,
            )
            continue
        for document in documents:
            if document is UNKNOWN or document is None:
                continue
            full = iam_documents.full_access_statements(props.plain(document))
            if full:
                report_violation(
                    f"{label} has a policy whose {', '.join(full)} lets any principal do anything to any "
                    "resource, like the default policy: allow only the actions and ARNs that go through it",
                    endpoint.urn,
                )


endpoint_policy = StackValidationPolicy(
    name=ENDPOINT_POLICY,
    description=(
        "Interface and gateway VPC endpoints must carry a policy narrower than the default full access: "
        "allow only the actions and ARNs that go through them."
    ),
    validate=validate_endpoint_policy,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_ENDPOINT_POLICY_SCHEMA,
)

POLICIES = [subnet_addresses, open_ingress, endpoint_policy]
