"""Network: private subnets over distinct zones sized for the peak fleet, no ingress, VPC endpoints."""

from __future__ import annotations

import ipaddress
import json

import pytest
from program_helpers import as_list, one

from components.context import AwsContext
from components.network import ENDPOINT_POLICIES, NetworkArgs, VpcEndpointAccess
from config import INTERFACE_ENDPOINT_SERVICES
from lib.evaluate import evaluate_stack
from stackcore import fleet


def test_prod_has_one_private_subnet_per_zone_in_three_zones(prod):
    subnets = prod.of_type("aws:ec2/subnet:Subnet")
    zones = [s.inputs["availabilityZone"] for s in subnets]
    assert sorted(zones) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_dev_spans_three_zones_like_prod(dev):
    zones = {s.inputs["availabilityZone"] for s in dev.of_type("aws:ec2/subnet:Subnet")}
    assert len(zones) == 3


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_subnet_holds_its_share_of_the_peak_fleet(stack, request):
    graph = request.getfixturevalue(stack)
    settings = graph.config
    autoscaled = settings["xgboost-endpoint:autoscaling"]
    maximum = (
        settings["xgboost-endpoint:maxInstances"]
        if autoscaled
        else settings["xgboost-endpoint:initialInstanceCount"]
    )
    mode = fleet.UpdateMode(settings["xgboost-endpoint:updateMode"])
    peak = fleet.peak_instances(maximum, mode, settings["xgboost-endpoint:rollingBatchPercent"])
    subnets = graph.of_type("aws:ec2/subnet:Subnet")
    needed = fleet.addresses_needed_per_subnet(
        peak,
        len(subnets),
        len(INTERFACE_ENDPOINT_SERVICES),
        settings["xgboost-endpoint:subnetHeadroomPercent"],
    )
    vpc = ipaddress.ip_network(one(graph, "aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    blocks = [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
    for block in blocks:
        assert block.num_addresses >= needed
        assert block.subnet_of(vpc)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])


def test_the_endpoint_security_group_has_no_ingress_and_only_https_out(prod):
    group = prod.named("network-endpoint-sg")
    assert "ingress" not in group.inputs
    vpc_cidr = one(prod, "aws:ec2/vpc:Vpc").inputs["cidrBlock"]
    for rule in group.inputs["egress"]:
        assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443)
        assert rule.get("cidrBlocks", [vpc_cidr]) == [vpc_cidr]


def test_the_default_security_group_is_emptied(prod):
    default = one(prod, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in default.inputs
    assert "egress" not in default.inputs


def test_vpc_endpoints_cover_what_the_private_endpoint_needs(prod):
    endpoints = {r.inputs["serviceName"]: r for r in prod.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    expected = {f"com.amazonaws.eu-west-1.{s}" for s in (*INTERFACE_ENDPOINT_SERVICES, "s3")}
    assert set(endpoints) == expected
    subnet_ids = sorted(s.outputs["id"] for s in prod.of_type("aws:ec2/subnet:Subnet"))
    for name, endpoint in endpoints.items():
        if name.endswith(".s3"):
            assert endpoint.inputs["vpcEndpointType"] == "Gateway"
            route_table = prod.named("network-private-rt")
            assert route_table.urn in endpoint.property_dependencies["routeTableIds"]
        else:
            assert endpoint.inputs["vpcEndpointType"] == "Interface"
            assert endpoint.inputs["privateDnsEnabled"] is True
            assert sorted(endpoint.inputs["subnetIds"]) == subnet_ids
            # reachable on 443 from inside the VPC only
            (group_urn,) = endpoint.property_dependencies["securityGroupIds"]
            (rule,) = prod.by_urn(group_urn).inputs["ingress"]
            assert rule["cidrBlocks"] == ["10.40.0.0/16"]
            assert (rule["fromPort"], rule["toPort"]) == (443, 443)


def test_no_nat_or_internet_gateway_unless_configured(prod):
    assert not prod.of_type("aws:ec2/natGateway:NatGateway")
    assert not prod.of_type("aws:ec2/internetGateway:InternetGateway")


def test_nat_gateway_on_request_routes_the_private_subnets_through_it():
    graph = evaluate_stack("prod", config_overrides={"natGateway": True})
    nat = one(graph, "aws:ec2/natGateway:NatGateway")
    route = one(graph, "aws:ec2/route:Route")
    assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    assert nat.urn in route.property_dependencies["natGatewayId"]
    assert graph.named("network-private-rt").urn in route.property_dependencies["routeTableId"]
    public = graph.named("network-public")
    assert public.inputs["cidrBlock"] == "10.40.3.0/24"
    assert len(graph.of_type("aws:ec2/subnet:Subnet")) == 4


def test_explicit_zones_are_used_as_given():
    graph = evaluate_stack(
        "prod",
        config_overrides={
            "availabilityZones": ["eu-west-1b", "eu-west-1c"],
            "minInstances": 2,
            "initialInstanceCount": 2,
        },
    )
    zones = sorted(s.inputs["availabilityZone"] for s in graph.of_type("aws:ec2/subnet:Subnet"))
    assert zones == ["eu-west-1b", "eu-west-1c"]


def _access() -> VpcEndpointAccess:
    context = AwsContext(account_id="123456789012", region="eu-west-1", partition="aws")  # type: ignore[arg-type]
    return VpcEndpointAccess(
        context=context,
        endpoint_arn="e",
        endpoint_log_group_arns=["l"],
        repository_arn="r",
        model_object_arn="m",
        data_capture_arn="d",
    )


def test_network_args_refuse_a_single_zone():
    with pytest.raises(ValueError, match="at least two subnets"):
        NetworkArgs(
            vpc_cidr="10.0.0.0/16",
            subnet_prefix_length=24,
            availability_zones=["eu-west-1a"],
            endpoint_access=_access(),
        )


def test_network_args_refuse_a_vpc_endpoint_without_a_written_policy():
    with pytest.raises(
        ValueError, match="no VPC endpoint policy is written for sqs: add one to ENDPOINT_POLICIES"
    ):
        NetworkArgs(
            vpc_cidr="10.0.0.0/16",
            subnet_prefix_length=24,
            interface_endpoint_services=["ecr.api", "sqs"],
            endpoint_access=_access(),
        )


def _endpoint_policies(graph) -> dict[str, dict[str, dict]]:
    """service suffix -> Sid -> statement, for every VPC endpoint of the stack."""
    found: dict[str, dict[str, dict]] = {}
    for endpoint in graph.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
        service = endpoint.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
        statements = json.loads(endpoint.inputs["policy"])["Statement"]
        found[service] = {s["Sid"]: s for s in statements}
    return found


def test_every_vpc_endpoint_has_a_policy_of_its_own(prod):
    policies = _endpoint_policies(prod)
    assert set(policies) == {*INTERFACE_ENDPOINT_SERVICES, "s3"} == set(ENDPOINT_POLICIES)
    for service, statements in policies.items():
        for sid, statement in statements.items():
            assert statement["Effect"] == "Allow", (service, sid)
            assert statement["Principal"] == "*", (service, sid)
            assert "*" not in as_list(statement["Action"]), (service, sid)
            assert not any(a.endswith(":*") for a in as_list(statement["Action"])), (service, sid)


def test_vpc_endpoint_policies_name_the_stacks_own_arns(prod):
    policies = _endpoint_policies(prod)
    account = {"StringEquals": {"aws:PrincipalAccount": "123456789012"}}
    endpoint = prod.named("endpoint-endpoint").outputs["arn"]
    assert policies["sagemaker.runtime"]["InvokeThisEndpoint"]["Resource"] == endpoint
    assert policies["sagemaker.runtime"]["InvokeThisEndpoint"]["Condition"] == account
    repository = prod.named("serving-image-repo").outputs["arn"]
    for ecr in ("ecr.api", "ecr.dkr"):
        pull = policies[ecr]["PullTheServingImage"]
        assert pull["Resource"] == repository
        assert pull["Action"] == [
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        ]
        assert policies[ecr]["LogInToEcr"]["Action"] == ["ecr:GetAuthorizationToken"]
    logs = policies["logs"]["WriteTheEndpointLogs"]["Resource"]
    assert logs == [
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/xgboost-endpoint-prod",
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/xgboost-endpoint-prod:log-stream:*",
    ]
    assert policies["sts"]["AssumeRolesOfThisAccount"]["Resource"] == "arn:aws:iam::123456789012:role/*"


def test_the_s3_gateway_lets_through_the_model_data_capture_and_ecr_layers_only(prod):
    s3 = _endpoint_policies(prod)["s3"]
    bucket = prod.named("model-artifact-bucket").outputs["arn"]
    assert s3["ReadTheModelArtifact"]["Action"] == ["s3:GetObject"]
    # prod brings its model from another bucket: the one object SageMaker downloads.
    model_uri = prod.config["xgboost-endpoint:modelUri"]
    assert s3["ReadTheModelArtifact"]["Resource"] == "arn:aws:s3:::" + model_uri.removeprefix("s3://")
    assert s3["WriteDataCapture"]["Resource"] == f"{bucket}/data-capture/*"
    assert "Condition" not in s3["ReadTheModelArtifact"]
    assert set(s3) == {"ReadTheModelArtifact", "WriteDataCapture", "PullImageLayers"}
    assert s3["PullImageLayers"] == {
        "Sid": "PullImageLayers",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject"],
        "Resource": "arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*",
    }


def test_dev_lets_sagemaker_read_the_model_it_uploaded_and_nothing_else_of_the_bucket(dev):
    s3 = _endpoint_policies(dev)["s3"]
    model = dev.named("model-artifact-model").outputs
    bucket = dev.named("model-artifact-bucket").outputs["arn"]
    assert s3["ReadTheModelArtifact"]["Resource"] == f"{bucket}/{model['key']}"
    assert model["key"].startswith("models/")
