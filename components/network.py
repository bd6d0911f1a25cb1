"""The endpoint's private network: a VPC, one private subnet per Availability Zone sized from
the peak fleet, a security group with no ingress, and VPC endpoints so that nothing needs the
internet (no NAT unless asked for), each with a policy that lets through only the stack's own
calls instead of the default full access."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import AwsContext, name_tag
from stackcore import fleet, rules

HTTPS = 443
S3_GATEWAY_SERVICE = "s3"


@dataclass(frozen=True, kw_only=True)
class VpcEndpointAccess:
    """What may pass through the VPC endpoints: the calls the endpoint and its clients in the VPC
    make to this stack's resources, and nothing else."""

    context: AwsContext
    """Account, region and partition of the stack."""
    endpoint_arn: pulumi.Input[str]
    """The SageMaker endpoint callers in the VPC may invoke (through ``sagemaker.runtime``)."""
    endpoint_log_group_arns: Sequence[pulumi.Input[str]]
    """The endpoint's log group and streams (through ``logs``)."""
    repository_arn: pulumi.Input[str]
    """The image repository the endpoint pulls from (through ``ecr.api`` and ``ecr.dkr``)."""
    model_object_arn: pulumi.Input[str]
    """The model artifact SageMaker downloads (through the S3 gateway)."""
    data_capture_arn: pulumi.Input[str]
    """The data-capture objects the endpoint writes (through the S3 gateway)."""


def _allow(
    sid: str, actions: list[str], resources: pulumi.Input[Any], account: pulumi.Input[str] | None
) -> dict[str, Any]:
    """An endpoint-policy statement. Endpoint policies name the principal; ``*`` here means "any
    caller that reaches the endpoint", narrowed to the stack's account where the caller is ours."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": actions,
        "Resource": resources,
    }
    if account is not None:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalAccount": account}}
    return statement


def _ecr_pull(access: VpcEndpointAccess) -> list[dict[str, Any]]:
    account = access.context.account_id
    return [
        # GetAuthorizationToken has no resource-level permissions: "*" is the only valid resource.
        _allow("LogInToEcr", ["ecr:GetAuthorizationToken"], "*", account),
        _allow(
            "PullTheServingImage",
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            access.repository_arn,
            account,
        ),
    ]


def _invoke(access: VpcEndpointAccess) -> list[dict[str, Any]]:
    return [
        _allow(
            "InvokeThisEndpoint", ["sagemaker:InvokeEndpoint"], access.endpoint_arn, access.context.account_id
        )
    ]


def _logs(access: VpcEndpointAccess) -> list[dict[str, Any]]:
    return [
        _allow(
            "WriteTheEndpointLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            list(access.endpoint_log_group_arns),
            access.context.account_id,
        )
    ]


def _sts(access: VpcEndpointAccess) -> list[dict[str, Any]]:
    ctx = access.context
    return [
        # GetCallerIdentity has no resource-level permissions: "*" is the only valid resource.
        _allow("WhoAmI", ["sts:GetCallerIdentity"], "*", ctx.account_id),
        # The execution role is created after the network (its policy names the subnets), so its
        # ARN cannot be named here: roles of this account, called by this account, only.
        _allow(
            "AssumeRolesOfThisAccount",
            ["sts:AssumeRole"],
            pulumi.Output.concat("arn:", ctx.partition, ":iam::", ctx.account_id, ":role/*"),
            ctx.account_id,
        ),
    ]


def _s3(access: VpcEndpointAccess) -> list[dict[str, Any]]:
    ctx = access.context
    # ECR keeps image layers in this AWS-owned bucket; GetDownloadUrlForLayer hands out URLs into it.
    layers = pulumi.Output.concat(
        "arn:", ctx.partition, ":s3:::prod-", ctx.region, "-starport-layer-bucket/*"
    )
    # No account condition on the gateway: S3 is reached by SageMaker's own agents on the instances
    # and through ECR's presigned layer URLs, as in the SageMaker guide's endpoint policy; the exact
    # object ARNs are the limit.
    return [
        _allow("ReadTheModelArtifact", ["s3:GetObject"], access.model_object_arn, None),
        _allow("WriteDataCapture", ["s3:PutObject"], access.data_capture_arn, None),
        _allow("PullImageLayers", ["s3:GetObject"], layers, None),
    ]


ENDPOINT_POLICIES: dict[str, Callable[[VpcEndpointAccess], list[dict[str, Any]]]] = {
    "sagemaker.runtime": _invoke,
    "ecr.api": _ecr_pull,
    "ecr.dkr": _ecr_pull,
    "logs": _logs,
    "sts": _sts,
    S3_GATEWAY_SERVICE: _s3,
}
"""The endpoint policy of each VPC endpoint service the network can create."""


def endpoint_policy(service: str, access: VpcEndpointAccess) -> pulumi.Output[str]:
    """The policy document of the VPC endpoint for ``service`` (``ecr.api``, ``s3``, ...)."""
    return pulumi.Output.json_dumps(
        {"Version": "2012-10-17", "Statement": ENDPOINT_POLICIES[service](access)}
    )


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    vpc_cidr: str
    """IPv4 block of the VPC."""
    subnet_prefix_length: int
    """Prefix length of each private subnet; config.py checked it holds the peak fleet."""
    availability_zones: Sequence[str] = ()
    """Explicit zones; empty means the first ``az_count`` zones the region reports."""
    az_count: int = 3
    """Zones to use when ``availability_zones`` is empty."""
    interface_endpoint_services: Sequence[str] = ()
    """Services behind interface VPC endpoints, e.g. ``ecr.api`` (``com.amazonaws.<region>.`` is added)."""
    nat_gateway: bool = False
    """Add a public subnet, an internet gateway and a NAT gateway for outbound internet access."""
    endpoint_access: VpcEndpointAccess
    """What the VPC endpoints' policies let through."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.interface_endpoint_services if s not in ENDPOINT_POLICIES]
        if unknown:
            raise ValueError(
                f"no VPC endpoint policy is written for {', '.join(unknown)}: add one to ENDPOINT_POLICIES"
            )
        too_few = rules.too_few_subnets(self.subnet_count)
        if too_few is not None:
            raise ValueError(str(too_few))
        if len(set(self.availability_zones)) != len(self.availability_zones):
            raise ValueError(f"Availability Zones must be distinct: {list(self.availability_zones)}")
        if not fleet.LARGEST_SUBNET_PREFIX <= self.subnet_prefix_length <= fleet.SMALLEST_SUBNET_PREFIX:
            raise ValueError(f"subnets are /16 to /28, got /{self.subnet_prefix_length}")
        if len(self.subnet_cidrs) < self.subnet_count + (1 if self.nat_gateway else 0):
            raise ValueError(f"{self.vpc_cidr} cannot hold the subnets the network needs")

    @property
    def subnet_count(self) -> int:
        return len(self.availability_zones) or self.az_count

    @property
    def subnet_cidrs(self) -> list[str]:
        """The first blocks of the VPC: the private subnets, then the public one (with NAT)."""
        vpc = ipaddress.ip_network(self.vpc_cidr)
        wanted = self.subnet_count + (1 if self.nat_gateway else 0)
        if self.subnet_prefix_length < vpc.prefixlen:
            return []
        blocks = vpc.subnets(new_prefix=self.subnet_prefix_length)
        return [str(block) for block in itertools.islice(blocks, wanted)]


class Network(pulumi.ComponentResource):
    """VPC, private subnets over several zones, endpoint security group and VPC endpoints."""

    vpc_id: pulumi.Output[str]
    vpc_arn: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]
    subnet_arns: pulumi.Output[list[str]]
    security_group_id: pulumi.Output[str]
    """Security group of the endpoint's instances: no ingress rules at all."""
    security_group_arn: pulumi.Output[str]
    availability_zones: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region_output().region
        zones = self._zones(args)
        cidrs = args.subnet_cidrs

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # Interface endpoints answer on the services' public names only with private DNS.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=name_tag(f"{name}-vpc"),
            opts=child,
        )
        # A new VPC's default security group allows all traffic between its members: empty it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags=name_tag(f"{name}-default-sg"), opts=child
        )

        private_routes = aws.ec2.RouteTable(
            f"{name}-private-rt", vpc_id=vpc.id, tags=name_tag(f"{name}-private-rt"), opts=child
        )
        subnets: list[aws.ec2.Subnet] = []
        for index in range(args.subnet_count):
            subnet_name = f"{name}-private-{index + 1}"
            subnet = aws.ec2.Subnet(
                subnet_name,
                vpc_id=vpc.id,
                cidr_block=cidrs[index],
                availability_zone=zones[index],
                map_public_ip_on_launch=False,
                tags=name_tag(subnet_name),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{subnet_name}-rt", subnet_id=subnet.id, route_table_id=private_routes.id, opts=child
            )
            subnets.append(subnet)

        if args.nat_gateway:
            self._nat(name, vpc, cidrs[args.subnet_count], zones[0], private_routes)

        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            description="SageMaker endpoint instances: no ingress; HTTPS out to the VPC endpoints and S3",
            vpc_id=vpc.id,
            egress=self._endpoint_egress(args, region),
            tags=name_tag(f"{name}-endpoint-sg"),
            opts=child,
        )
        if args.interface_endpoint_services:
            vpce_sg = aws.ec2.SecurityGroup(
                f"{name}-vpce-sg",
                description="Interface VPC endpoints: HTTPS from inside the VPC only",
                vpc_id=vpc.id,
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        description="HTTPS from the VPC",
                        protocol="tcp",
                        from_port=HTTPS,
                        to_port=HTTPS,
                        cidr_blocks=[args.vpc_cidr],
                    )
                ],
                tags=name_tag(f"{name}-vpce-sg"),
                opts=child,
            )
            for service in args.interface_endpoint_services:
                role = service.replace(".", "-")
                aws.ec2.VpcEndpoint(
                    f"{name}-{role}",
                    vpc_id=vpc.id,
                    service_name=pulumi.Output.concat("com.amazonaws.", region, ".", service),
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in subnets],
                    security_group_ids=[vpce_sg.id],
                    policy=endpoint_policy(service, args.endpoint_access),
                    tags=name_tag(f"{name}-{role}"),
                    opts=child,
                )
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=pulumi.Output.concat("com.amazonaws.", region, f".{S3_GATEWAY_SERVICE}"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_routes.id],
            policy=endpoint_policy(S3_GATEWAY_SERVICE, args.endpoint_access),
            tags=name_tag(f"{name}-s3"),
            opts=child,
        )

        self.vpc_id = vpc.id
        self.vpc_arn = vpc.arn
        self.subnet_ids = pulumi.Output.all(*[s.id for s in subnets])
        self.subnet_arns = pulumi.Output.all(*[s.arn for s in subnets])
        self.security_group_id = endpoint_sg.id
        self.security_group_arn = endpoint_sg.arn
        self.availability_zones = pulumi.Output.all(*zones)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_arn": self.vpc_arn,
                "subnet_ids": self.subnet_ids,
                "subnet_arns": self.subnet_arns,
                "security_group_id": self.security_group_id,
                "security_group_arn": self.security_group_arn,
                "availability_zones": self.availability_zones,
            }
        )

    @staticmethod
    def _zones(args: NetworkArgs) -> list[pulumi.Input[str]]:
        if args.availability_zones:
            return list(args.availability_zones)
        found = aws.get_availability_zones_output(state="available").names

        def pick(names: list[str], index: int) -> str:
            if len(names) < args.az_count:
                raise ValueError(
                    f"the region has {len(names)} available zones, the stack asks for "
                    f"{args.az_count} (azCount)"
                )
            return names[index]

        return [found.apply(lambda names, i=i: pick(names, i)) for i in range(args.az_count)]

    @staticmethod
    def _endpoint_egress(
        args: NetworkArgs, region: pulumi.Output[str]
    ) -> list[aws.ec2.SecurityGroupEgressArgs]:
        s3_prefix_list = aws.ec2.get_managed_prefix_list_output(
            name=pulumi.Output.concat("com.amazonaws.", region, ".s3")
        ).id
        rules = [
            aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS to the interface VPC endpoints",
                protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                cidr_blocks=[args.vpc_cidr],
            ),
            aws.ec2.SecurityGroupEgressArgs(
                description="HTTPS to S3 through the gateway endpoint",
                protocol="tcp",
                from_port=HTTPS,
                to_port=HTTPS,
                prefix_list_ids=[s3_prefix_list],
            ),
        ]
        if args.nat_gateway:
            rules.append(
                aws.ec2.SecurityGroupEgressArgs(
                    description="HTTPS to the internet through the NAT gateway (natGateway: true)",
                    protocol="tcp",
                    from_port=HTTPS,
                    to_port=HTTPS,
                    cidr_blocks=["0.0.0.0/0"],
                )
            )
        return rules

    def _nat(
        self,
        name: str,
        vpc: aws.ec2.Vpc,
        cidr: str,
        zone: pulumi.Input[str],
        private_routes: aws.ec2.RouteTable,
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=name_tag(f"{name}-igw"), opts=child)
        public = aws.ec2.Subnet(
            f"{name}-public",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            map_public_ip_on_launch=False,
            tags=name_tag(f"{name}-public"),
            opts=child,
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=name_tag(f"{name}-public-rt"),
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-rt-assoc", subnet_id=public.id, route_table_id=public_routes.id, opts=child
        )
        eip = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags=name_tag(f"{name}-nat-ip"), opts=child)
        nat = aws.ec2.NatGateway(
            f"{name}-nat",
            allocation_id=eip.id,
            subnet_id=public.id,
            tags=name_tag(f"{name}-nat"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
        )
        aws.ec2.Route(
            f"{name}-private-default-route",
            route_table_id=private_routes.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
            opts=child,
        )
