"""A happy-path stack as the engine would record it, and helpers to change one thing in a graph.

Type tokens and camelCase inputs are those of pulumi-aws 7. Inputs that come from other
resources (ids, ARNs, autonamed names) are None with a property dependency, as in a preview.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lib.graph import RecordedResource, ResourceGraph

PROJECT = "xgboost-endpoint"
ACCOUNT = "123456789012"
ENDPOINT_ARN = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/serving"
BUCKET_ARN = "arn:aws:s3:::artifact-bucket-1234567"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _endpoint_policy(action: str, resource: str) -> str:
    """A VPC endpoint policy letting the account's principals do one thing to one resource."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": action,
                    "Resource": resource,
                    "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
                }
            ],
        }
    )


@dataclass
class GraphBuilder:
    stack: str
    resources: list[RecordedResource] = field(default_factory=list)

    def urn(self, type_token: str, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{PROJECT}::{type_token}::{name}"

    def add(
        self,
        type_token: str,
        name: str,
        inputs: Mapping[str, Any],
        *,
        deps: Mapping[str, Sequence[RecordedResource]] | None = None,
        depends_on: Sequence[RecordedResource] = (),
    ) -> RecordedResource:
        property_dependencies = {k: tuple(r.urn for r in v) for k, v in (deps or {}).items()}
        dependencies = tuple(
            dict.fromkeys(
                [*(u for v in property_dependencies.values() for u in v), *(r.urn for r in depends_on)]
            )
        )
        resource = RecordedResource(
            type=type_token,
            name=name,
            urn=self.urn(type_token, name),
            custom=True,
            inputs=dict(inputs),
            dependencies=dependencies,
            property_dependencies=property_dependencies,
        )
        self.resources.append(resource)
        return resource

    def graph(self, config: Mapping[str, Any] | None = None) -> ResourceGraph:
        return ResourceGraph(
            project=PROJECT, stack=self.stack, resources=tuple(self.resources), config=dict(config or {})
        )


def happy_graph(stack: str = "prod", *, instance_type: str = "ml.c5.large") -> ResourceGraph:
    """A stack every policy passes: 3 AZs, /24 subnets, VPC endpoints with policies, KMS on the bucket,
    topic and logs, a blocked public access, isolation, scaling, alarms, rollback."""
    b = GraphBuilder(stack)
    vpc = b.add("aws:ec2/vpc:Vpc", "net-vpc", {"cidrBlock": "10.0.0.0/16", "enableDnsHostnames": True})
    subnets = [
        b.add(
            "aws:ec2/subnet:Subnet",
            f"net-private-{zone}",
            {"cidrBlock": f"10.0.{index}.0/24", "availabilityZone": f"eu-west-1{zone}", "vpcId": None},
            deps={"vpcId": [vpc]},
        )
        for index, zone in enumerate("abc")
    ]
    group = b.add(
        "aws:ec2/securityGroup:SecurityGroup", "net-endpoint-sg", {"vpcId": None}, deps={"vpcId": [vpc]}
    )
    vpce_group = b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        "net-vpce-sg",
        {
            "vpcId": None,
            "ingress": [
                {"protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["10.0.0.0/16"]}
            ],
        },
        deps={"vpcId": [vpc]},
    )
    b.add(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "net-sagemaker-runtime",
        {
            "vpcEndpointType": "Interface",
            "serviceName": "com.amazonaws.eu-west-1.sagemaker.runtime",
            "subnetIds": [None, None, None],
            "securityGroupIds": [None],
            "vpcId": None,
            "privateDnsEnabled": True,
            "policy": _endpoint_policy("sagemaker:InvokeEndpoint", ENDPOINT_ARN),
        },
        deps={"subnetIds": subnets, "securityGroupIds": [vpce_group], "vpcId": [vpc]},
    )
    route_table = b.add(
        "aws:ec2/routeTable:RouteTable", "net-private-rt", {"vpcId": None}, deps={"vpcId": [vpc]}
    )
    b.add(
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "net-s3",
        {
            "vpcEndpointType": "Gateway",
            "serviceName": "com.amazonaws.eu-west-1.s3",
            "routeTableIds": [None],
            "vpcId": None,
            "policy": _endpoint_policy("s3:GetObject", f"{BUCKET_ARN}/models/*"),
        },
        deps={"routeTableIds": [route_table], "vpcId": [vpc]},
    )
    key = b.add("aws:kms/key:Key", "serving-key", {"enableKeyRotation": True})
    bucket = b.add("aws:s3/bucket:Bucket", "artifact-bucket", {})
    b.add(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "artifact-public-access",
        {"bucket": None, **dict.fromkeys(PUBLIC_ACCESS_FLAGS, True)},
        deps={"bucket": [bucket]},
    )
    b.add(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "artifact-encryption",
        {
            "bucket": None,
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": KEY_ARN,
                    },
                    "bucketKeyEnabled": True,
                }
            ],
        },
        deps={"bucket": [bucket], "rules": [key]},
    )
    topic = b.add(
        "aws:sns/topic:Topic", "alarm-topic", {"kmsMasterKeyId": None}, deps={"kmsMasterKeyId": [key]}
    )
    b.add(
        "aws:cloudwatch/logGroup:LogGroup",
        "api-handler-logs-group",
        {"retentionInDays": 30.0, "kmsKeyId": None},
        deps={"kmsKeyId": [key]},
    )
    role = b.add("aws:iam/role:Role", "serving-execution-role", {"assumeRolePolicy": "{}"})
    repo = b.add(
        "aws:ecr/repository:Repository",
        "image-repo",
        {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "IMMUTABLE"},
    )
    model = b.add(
        "aws:sagemaker/model:Model",
        "serving-model",
        {
            "executionRoleArn": None,
            "primaryContainer": {"image": None, "modelDataUrl": "s3://models/xgboost/model.tar.gz"},
            "vpcConfig": {"subnets": [None, None, None], "securityGroupIds": [None]},
            "enableNetworkIsolation": True,
        },
        deps={"executionRoleArn": [role], "primaryContainer": [repo], "vpcConfig": [*subnets, group]},
    )
    config = b.add(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "serving-config",
        {
            "productionVariants": [
                {
                    "variantName": "AllTraffic",
                    "modelName": None,
                    "instanceType": instance_type,
                    "initialInstanceCount": 3.0,
                    "initialVariantWeight": 1.0,
                }
            ],
            "kmsKeyArn": None,
        },
        deps={"productionVariants": [model], "kmsKeyArn": [key]},
    )
    alarms = []
    endpoint_urn = b.urn("aws:sagemaker/endpoint:Endpoint", "serving-endpoint")
    # Alarms are declared before the endpoint in some programs; link them after it exists.
    endpoint = b.add(
        "aws:sagemaker/endpoint:Endpoint",
        "serving-endpoint",
        {
            "endpointConfigName": None,
            "deploymentConfig": {
                "blueGreenUpdatePolicy": {
                    "trafficRoutingConfiguration": {
                        "type": "CANARY",
                        "waitIntervalInSeconds": 300.0,
                        "canarySize": {"type": "CAPACITY_PERCENT", "value": 10.0},
                    },
                    "terminationWaitInSeconds": 600.0,
                },
                "autoRollbackConfiguration": {"alarms": [{"alarmName": None}, {"alarmName": None}]},
            },
        },
        deps={"endpointConfigName": [config]},
    )
    assert endpoint.urn == endpoint_urn
    for metric in ("Invocation5XXErrors", "ModelLatency"):
        alarms.append(
            b.add(
                "aws:cloudwatch/metricAlarm:MetricAlarm",
                f"serving-{metric.lower()}-alarm",
                {
                    "namespace": "AWS/SageMaker",
                    "metricName": metric,
                    "dimensions": {"EndpointName": None, "VariantName": "AllTraffic"},
                    "comparisonOperator": "GreaterThanThreshold",
                    "evaluationPeriods": 3.0,
                    "period": 60.0,
                    "statistic": "Average",
                    "threshold": 1.0,
                    "alarmActions": [None],
                },
                deps={"dimensions": [endpoint], "alarmActions": [topic]},
            )
        )
    target = b.add(
        "aws:appautoscaling/target:Target",
        "serving-scaling-target",
        {
            "serviceNamespace": "sagemaker",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "resourceId": None,
            "minCapacity": 3.0,
            "maxCapacity": 6.0,
        },
        deps={"resourceId": [endpoint]},
    )
    b.add(
        "aws:appautoscaling/policy:Policy",
        "serving-scaling-policy",
        {
            "policyType": "TargetTrackingScaling",
            "serviceNamespace": "sagemaker",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "resourceId": None,
            "targetTrackingScalingPolicyConfiguration": {
                "targetValue": 600.0,
                "predefinedMetricSpecification": {
                    "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
            },
        },
        deps={"resourceId": [target]},
    )
    lambda_role = b.add("aws:iam/role:Role", "api-handler-role", {"assumeRolePolicy": "{}"})
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "api-handler-invoke",
        {
            "role": None,
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["sagemaker:InvokeEndpoint"],
                            "Resource": ENDPOINT_ARN,
                        }
                    ],
                }
            ),
        },
        deps={"role": [lambda_role]},
    )
    b.add(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "api-handler-logs",
        {"role": None, "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
        deps={"role": [lambda_role]},
    )
    function = b.add(
        "aws:lambda/function:Function",
        "api-handler",
        {
            "runtime": "python3.11",
            "handler": "handler.handler",
            "role": None,
            "environment": {"variables": {"SAGEMAKER_ENDPOINT_NAME": None}},
        },
        deps={"role": [lambda_role], "environment": [endpoint]},
    )
    api = b.add("aws:apigateway/restApi:RestApi", "api", {"endpointConfiguration": {"types": "REGIONAL"}})
    resource = b.add(
        "aws:apigateway/resource:Resource",
        "api-invocations",
        {"restApi": None, "parentId": None, "pathPart": "invocations"},
        deps={"restApi": [api], "parentId": [api]},
    )
    method = b.add(
        "aws:apigateway/method:Method",
        "api-invocations-post",
        {
            "restApi": None,
            "resourceId": None,
            "httpMethod": "POST",
            "authorization": "NONE",
            "apiKeyRequired": True,
        },
        deps={"restApi": [api], "resourceId": [resource]},
    )
    integration = b.add(
        "aws:apigateway/integration:Integration",
        "api-invocations-integration",
        {"restApi": None, "resourceId": None, "httpMethod": "POST", "type": "AWS_PROXY", "uri": None},
        deps={"restApi": [api], "resourceId": [resource], "uri": [function]},
    )
    deployment = b.add(
        "aws:apigateway/deployment:Deployment",
        "api-deployment",
        {"restApi": None},
        deps={"restApi": [api]},
        depends_on=[method, integration],
    )
    stage = b.add(
        "aws:apigateway/stage:Stage",
        "api-stage",
        {"restApi": None, "deployment": None, "stageName": "v1"},
        deps={"restApi": [api], "deployment": [deployment]},
    )
    b.add(
        "aws:apigateway/usagePlan:UsagePlan",
        "api-usage-plan",
        {
            "apiStages": [{"apiId": None, "stage": None}],
            "throttleSettings": {"rateLimit": 100.0, "burstLimit": 200.0},
        },
        deps={"apiStages": [api, stage]},
    )
    return b.graph(config={"xgboost-endpoint:instanceType": instance_type})


# Changing one thing.


def mutate(graph: ResourceGraph, name: str, change: Callable[[dict[str, Any]], None]) -> ResourceGraph:
    """A copy of ``graph`` where ``change`` has edited the inputs of the resource named ``name``."""
    target = graph.named(name)
    inputs = copy.deepcopy(_plain(target.inputs))
    change(inputs)
    edited = replace(target, inputs=inputs)
    return replace(graph, resources=tuple(edited if r.urn == target.urn else r for r in graph.resources))


def mutate_type(
    graph: ResourceGraph, type_token: str, change: Callable[[dict[str, Any]], None]
) -> ResourceGraph:
    for resource in graph.of_type(type_token):
        graph = mutate(graph, resource.name, change)
    return graph


def remove(graph: ResourceGraph, *names: str) -> ResourceGraph:
    """Drop resources (and the links to them), as if the program never declared them."""
    gone = {graph.named(n).urn for n in names}
    kept = []
    for r in graph.resources:
        if r.urn in gone:
            continue
        deps = {k: tuple(u for u in v if u not in gone) for k, v in r.property_dependencies.items()}
        kept.append(
            replace(
                r, property_dependencies=deps, dependencies=tuple(u for u in r.dependencies if u not in gone)
            )
        )
    return replace(graph, resources=tuple(kept))


def relink(graph: ResourceGraph, name: str, key: str, *sources: str) -> ResourceGraph:
    """Make input ``key`` of ``name`` come from exactly ``sources`` (by logical name)."""
    target = graph.named(name)
    urns = tuple(graph.named(s).urn for s in sources)
    deps = {**target.property_dependencies, key: urns}
    edited = replace(
        target, property_dependencies=deps, dependencies=tuple(dict.fromkeys([*target.dependencies, *urns]))
    )
    return replace(graph, resources=tuple(edited if r.urn == target.urn else r for r in graph.resources))


def rename_stack(graph: ResourceGraph, stack: str) -> ResourceGraph:
    old = f"urn:pulumi:{graph.stack}::"
    new = f"urn:pulumi:{stack}::"

    def fix(urn: str) -> str:
        return urn.replace(old, new, 1)

    resources = tuple(
        replace(
            r,
            urn=fix(r.urn),
            parent=fix(r.parent) if r.parent else None,
            dependencies=tuple(fix(u) for u in r.dependencies),
            property_dependencies={k: tuple(fix(u) for u in v) for k, v in r.property_dependencies.items()},
            provider=fix(r.provider) if r.provider else None,
        )
        for r in graph.resources
    )
    return replace(graph, stack=stack, resources=resources)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


HAPPY_QUOTAS = {"endpointInstanceQuotas": {"ml.c5.large": 12}, "totalInstanceQuota": 12}
"""The quotas the happy graph's fleet needs: 6 instances at most, doubled during blue/green."""
HAPPY_PACK_CONFIG = {"sagemaker-endpoint-instance-quota": HAPPY_QUOTAS}
