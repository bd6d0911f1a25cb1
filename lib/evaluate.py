"""Evaluate the Pulumi program under mocks and record its resource graph.

:func:`evaluate_stack` reads ``Pulumi.yaml``'s defaults and ``Pulumi.<stack>.yaml`` the way the
CLI would, runs ``__main__.py`` with ``pulumi.runtime.set_mocks`` (no CLI, no credentials), and
returns a :class:`lib.graph.ResourceGraph`: every resource with its inputs as the engine received
them (camelCase), its parent, dependencies and property dependencies, the stack's exports and
the configuration. The program's tests, the policy pack's tests, the offline plan and the
benchmark all call it; it can be called many times in one process.

The mocks answer like AWS would: ids of the right shape, ARNs built from the account, region and
name, autonamed physical names (``<logical name>-<7 hex>``).
"""

from __future__ import annotations

import hashlib
import runpy
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config

from lib.graph import RecordedResource, ResourceGraph
from stackcore.layering import config_string, read_stack_values

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"
"""The account the mocks pretend to be (AWS's documentation example account)."""
DEFAULT_REGION = "us-east-1"

_lock = threading.Lock()


@dataclass(frozen=True)
class Secret:
    """An export the program marked secret; the value is kept for tests, never printed by tools."""

    value: Any

    def __repr__(self) -> str:
        return "Secret(***)"


def load_stack_config(
    stack: str, project_dir: Path | None = None, config_overrides: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The project name and the stack's configuration as the CLI would give it to the program:
    ``Pulumi.yaml`` defaults, then ``Pulumi.<stack>.yaml``, then the overrides (the stack core's
    layering). Keys are fully qualified (``project:key``, ``aws:region``); an override without a
    namespace is the project's. Undeclared keys are left for the program's configuration to refuse."""
    stack_values = read_stack_values(project_dir or REPO_ROOT, stack, config_overrides, check_keys=False)
    return stack_values.project, dict(stack_values.values)


def evaluate_stack(
    stack: str,
    *,
    config_overrides: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
) -> ResourceGraph:
    """Run the program for ``stack`` under mocks and return what it registered.

    A configuration error raises the program's ``config.ConfigError`` unchanged.
    """
    root = (project_dir or REPO_ROOT).resolve()
    project, values = load_stack_config(stack, root, config_overrides)
    region = str(values.get("aws:region") or DEFAULT_REGION)
    monitor = RecordingMonitor(AwsMocks(region=region))
    exports: dict[str, Any] = {}

    with _lock:  # the Pulumi runtime's settings are process-wide
        # The program imports its own modules (config, components) as the CLI's working directory
        # allows; a previous evaluation's copies stay cached, so evaluate one project per process.
        added_to_path = str(root) not in sys.path
        if added_to_path:
            sys.path.insert(0, str(root))
        settings.ROOT.set(None)
        set_all_config({key: config_string(value) for key, value in values.items()})
        pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)

        @pulumi.runtime.test
        def run() -> pulumi.Output[Any]:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")
            stack_resource = settings.get_root_resource()
            outputs: dict[str, Any] = dict(getattr(stack_resource, "outputs", {}))
            return pulumi.Output.from_input(_resolve_exports(outputs, exports))

        try:
            with warnings.catch_warnings():
                # pulumi_aws warns about its own deprecated classes while its service modules load
                # (the program uses none of them); the noise would bury a warning that matters.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws\.")
                run()
        finally:
            settings.ROOT.set(None)
            if added_to_path:
                sys.path.remove(str(root))

    return ResourceGraph(
        project=project,
        stack=stack,
        resources=tuple(monitor.recorded),
        exports=exports,
        config=values,
    )


async def _resolve_exports(outputs: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, value in outputs.items():
        output = pulumi.Output.from_input(value)
        resolved = await output.future()
        into[key] = Secret(resolved) if await output.is_secret() else resolved




class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps what the engine would see: parent, dependencies, options."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
        response = super().RegisterResource(request)
        inputs = _unwrap_secrets(rpc.deserialize_properties(request.object))
        outputs: dict[str, Any] = {}
        registration = self.resources.get(response.urn)
        if registration is not None:
            outputs = _unwrap_secrets({"id": registration.id, **dict(registration.state)})
        timeouts = request.customTimeouts
        self.recorded.append(
            RecordedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                custom=bool(request.custom),
                inputs=inputs,
                outputs=outputs,
                parent=request.parent or None,
                dependencies=tuple(request.dependencies),
                property_dependencies={
                    key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                provider=request.provider or None,
                protect=bool(request.protect),
                delete_before_replace=bool(request.deleteBeforeReplace),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=tuple(request.ignoreChanges),
                custom_timeouts={
                    op: value
                    for op, value in (
                        ("create", timeouts.create),
                        ("update", timeouts.update),
                        ("delete", timeouts.delete),
                    )
                    if value
                },
            )
        )
        return response


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:  # the SDK's own secret marker
            return _unwrap_secrets(value.get("value"))
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


# The mocks: outputs as AWS would return them, keyed on the resource type.

_AUTONAMED = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:ecr/repository:Repository": "name",
    "aws:iam/role:Role": "name",
    "aws:iam/rolePolicy:RolePolicy": "name",
    "aws:sagemaker/model:Model": "name",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": "name",
    "aws:sagemaker/endpoint:Endpoint": "name",
    "aws:appautoscaling/policy:Policy": "name",
    "aws:sns/topic:Topic": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:lambda/function:Function": "name",
    "aws:apigateway/restApi:RestApi": "name",
    "aws:apigateway/usagePlan:UsagePlan": "name",
    "aws:apigateway/apiKey:ApiKey": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
}

_EC2_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("rtbassoc", "route-table-association"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce", "vpc-endpoint"),
    "aws:ec2/internetGateway:InternetGateway": ("igw", "internet-gateway"),
    "aws:ec2/eip:Eip": ("eipalloc", "elastic-ip"),
    "aws:ec2/natGateway:NatGateway": ("nat", "natgateway"),
    "aws:ec2/route:Route": ("r", "route"),
}


def _hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


class AwsMocks(pulumi.runtime.Mocks):
    """Realistic outputs for the resource types and invokes the program uses."""

    def __init__(self, *, region: str, account_id: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account = account_id

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        region, account = self.region, self.account
        function = args.token
        if function == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": account,
                "arn": f"arn:aws:iam::{account}:user/deployer",
                "userId": "AIDAMOCK",
                "id": account,
            }
        if function == "aws:index/getRegion:getRegion":
            return {
                "region": region,
                "name": region,
                "id": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            }
        if function == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }
        if function == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{letter}" for letter in "abc"]
            return {
                "names": names,
                "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)],
                "id": region,
                "groupNames": [region],
            }
        if function == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = args.args.get("registryId") or account
            return {
                "userName": "AWS",
                "password": "mock-ecr-password",
                "authorizationToken": "QVdTOm1vY2s=",
                "proxyEndpoint": f"https://{registry}.dkr.ecr.{region}.amazonaws.com",
                "expiresAt": "2030-01-01T00:00:00Z",
                "id": region,
                "registryId": registry,
            }
        if function == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
            return {
                "id": "pl-6da54004",
                "name": args.args.get("name", ""),
                "addressFamily": "IPv4",
                "arn": f"arn:aws:ec2:{region}:aws:prefix-list/pl-6da54004",
                "entries": [],
                "maxEntries": 0,
                "ownerId": "AWS",
                "tags": {},
                "version": 1,
            }
        raise NotImplementedError(f"the mocks do not answer {function}: add it to lib/evaluate.py")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        typ, name = args.typ, args.name
        out: dict[str, Any] = dict(args.inputs)
        if not args.custom:  # a component: the engine stores nothing for it
            return f"{name}-component", out
        prop = _AUTONAMED.get(typ)
        if prop and not out.get(prop):
            # Autonaming, or a name_prefix plus a unique suffix as the provider does.
            out[prop] = f"{out.get('namePrefix') or name + '-'}{_hex(typ, name, length=7)}"
        if typ in _EC2_ID_PREFIX:
            prefix, arn_kind = _EC2_ID_PREFIX[typ]
            resource_id = f"{prefix}-{_hex(typ, name)}"
            out["arn"] = f"arn:aws:ec2:{self.region}:{self.account}:{arn_kind}/{resource_id}"
            out.setdefault("ownerId", self.account)
            return resource_id, out
        handler = _TYPE_HANDLERS.get(typ)
        if handler is not None:
            return handler(self, name, out)
        resource_id = str(out.get(prop)) if prop else f"{name}-{_hex(typ, name, length=8)}"
        return resource_id, out

    def _arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        region = self.region if regional else ""
        owner = self.account if account else ""
        return f"arn:aws:{service}:{region}:{owner}:{resource}"

    # One method per type (see _TYPE_HANDLERS): (logical name, outputs so far) -> (id, outputs).

    def _key_kms(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key_id = str(uuid.UUID(_hex("kms", name, length=32)))
        out.update(keyId=key_id, arn=self._arn("kms", f"key/{key_id}"))
        return key_id, out

    def _bucket_s3(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        bucket = out["bucket"]
        out.update(
            arn=f"arn:aws:s3:::{bucket}",
            region=self.region,
            bucketDomainName=f"{bucket}.s3.amazonaws.com",
            bucketRegionalDomainName=f"{bucket}.s3.{self.region}.amazonaws.com",
        )
        return bucket, out

    def _bucketobjectv2_s3(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out.update(etag=_hex("etag", name, length=32), versionId=_hex("version", name, length=32))
        out["arn"] = f"arn:aws:s3:::{out.get('bucket')}/{out.get('key')}"
        return str(out.get("key")), out

    def _repository_ecr(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        repo = out["name"]
        out.update(
            arn=self._arn("ecr", f"repository/{repo}"),
            registryId=self.account,
            repositoryUrl=f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{repo}",
        )
        return repo, out

    def _image_index(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        digest = "sha256:" + _hex("image", name, *map(str, out.get("tags", [])), length=64)
        tags = out.get("tags") or [name]
        # The provider's `ref` is one tag with the build's digest appended: `repo:tag@digest`.
        out.update(digest=digest, ref=f"{tags[0]}@{digest}")
        return digest, out

    def _role_iam(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out.update(
            arn=f"arn:aws:iam::{self.account}:role/{out['name']}", uniqueId="AROA" + _hex(name).upper()
        )
        return out["name"], out

    def _rolepolicy_iam(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return f"{out.get('role')}:{out['name']}", out

    def _model_sagemaker(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn("sagemaker", f"model/{out['name'].lower()}")
        return out["name"], out

    def _endpointconfiguration_sagemaker(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn("sagemaker", f"endpoint-config/{out['name'].lower()}")
        return out["name"], out

    def _endpoint_sagemaker(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn("sagemaker", f"endpoint/{out['name'].lower()}")
        return out["name"], out

    def _target_appautoscaling(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn(
            "application-autoscaling", f"scalable-target/{_hex('target', name, length=32)}"
        )
        return str(out.get("resourceId")), out

    def _policy_appautoscaling(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn(
            "autoscaling",
            f"scalingPolicy:{_hex('policy', name, length=32)}:resource/sagemaker/"
            f"{out.get('resourceId')}:policyName/{out['name']}",
        )
        out["alarmArns"] = []
        return out["name"], out

    def _topic_sns(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = self._arn("sns", out["name"])
        out.update(arn=arn, owner=self.account)
        return arn, out

    def _topicsubscription_sns(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = f"{out.get('topic')}:{_hex('subscription', name, length=32)}"
        out["arn"] = arn
        return arn, out

    def _metricalarm_cloudwatch(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn("cloudwatch", f"alarm:{out['name']}")
        return out["name"], out

    def _dashboard_cloudwatch(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["dashboardArn"] = self._arn("cloudwatch", f"dashboard/{out.get('dashboardName')}", regional=False)
        return str(out.get("dashboardName")), out

    def _loggroup_cloudwatch(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        out["arn"] = self._arn("logs", f"log-group:{out['name']}")
        return out["name"], out

    def _function_lambda(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        arn = self._arn("lambda", f"function:{out['name']}")
        out.update(
            arn=arn,
            qualifiedArn=f"{arn}:$LATEST",
            version="$LATEST",
            invokeArn=f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{arn}/invocations",
        )
        return out["name"], out

    def _permission_lambda(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return f"{name}-{_hex('permission', name, length=8)}", out

    def _restapi_apigateway(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        api_id = _hex("api", name, length=10)
        out.update(
            rootResourceId=_hex("root", name, length=10),
            executionArn=self._arn("execute-api", api_id),
            arn=f"arn:aws:apigateway:{self.region}::/restapis/{api_id}",
            createdDate="2026-11-26T00:00:00Z",
        )
        return api_id, out

    def _stage_apigateway(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        api, stage = out.get("restApi"), out.get("stageName")
        out.update(
            invokeUrl=f"https://{api}.execute-api.{self.region}.amazonaws.com/{stage}",
            executionArn=self._arn("execute-api", f"{api}/{stage}"),
            arn=f"arn:aws:apigateway:{self.region}::/restapis/{api}/stages/{stage}",
        )
        return f"ags-{api}-{stage}", out

    def _apikey_apigateway(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key_id = _hex("apikey", name, length=10)
        out.update(
            value=_hex("apikey-value", name, length=40),
            arn=f"arn:aws:apigateway:{self.region}::/apikeys/{key_id}",
        )
        return key_id, out

    def _usageplan_apigateway(self, name: str, out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        plan_id = _hex("usageplan", name, length=6)
        out["arn"] = f"arn:aws:apigateway:{self.region}::/usageplans/{plan_id}"
        return plan_id, out


_TYPE_HANDLERS: dict[str, Callable[[AwsMocks, str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "aws:kms/key:Key": AwsMocks._key_kms,
    "aws:s3/bucket:Bucket": AwsMocks._bucket_s3,
    "aws:s3/bucketObjectv2:BucketObjectv2": AwsMocks._bucketobjectv2_s3,
    "aws:ecr/repository:Repository": AwsMocks._repository_ecr,
    "docker-build:index:Image": AwsMocks._image_index,
    "aws:iam/role:Role": AwsMocks._role_iam,
    "aws:iam/rolePolicy:RolePolicy": AwsMocks._rolepolicy_iam,
    "aws:sagemaker/model:Model": AwsMocks._model_sagemaker,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": AwsMocks._endpointconfiguration_sagemaker,
    "aws:sagemaker/endpoint:Endpoint": AwsMocks._endpoint_sagemaker,
    "aws:appautoscaling/target:Target": AwsMocks._target_appautoscaling,
    "aws:appautoscaling/policy:Policy": AwsMocks._policy_appautoscaling,
    "aws:sns/topic:Topic": AwsMocks._topic_sns,
    "aws:sns/topicSubscription:TopicSubscription": AwsMocks._topicsubscription_sns,
    "aws:cloudwatch/metricAlarm:MetricAlarm": AwsMocks._metricalarm_cloudwatch,
    "aws:cloudwatch/dashboard:Dashboard": AwsMocks._dashboard_cloudwatch,
    "aws:cloudwatch/logGroup:LogGroup": AwsMocks._loggroup_cloudwatch,
    "aws:lambda/function:Function": AwsMocks._function_lambda,
    "aws:lambda/permission:Permission": AwsMocks._permission_lambda,
    "aws:apigateway/restApi:RestApi": AwsMocks._restapi_apigateway,
    "aws:apigateway/stage:Stage": AwsMocks._stage_apigateway,
    "aws:apigateway/apiKey:ApiKey": AwsMocks._apikey_apigateway,
    "aws:apigateway/usagePlan:UsagePlan": AwsMocks._usageplan_apigateway,
}
"""Resource types whose outputs need more than their inputs and an id (ARNs, URLs, generated values)."""
