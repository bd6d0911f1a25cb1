"""The API front door: a regional REST API with ``POST /predict`` behind an API key, a usage
plan, and the Lambda from ``lambda/handler.py`` that calls the endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.context import name_tag
from stackcore.limits import API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS as API_GATEWAY_TIMEOUT_SECONDS
from stackcore.limits import LAMBDA_HANDLER_RESERVED_SECONDS as HANDLER_RESERVED_SECONDS
from stackcore.limits import MIN_LAMBDA_TIMEOUT_SECONDS as MIN_TIMEOUT_SECONDS

HANDLER_FILE = "handler.py"
HANDLER = "handler.handler"
ENDPOINT_NAME_VARIABLE = "SAGEMAKER_ENDPOINT_NAME"
READ_TIMEOUT_VARIABLE = "SAGEMAKER_READ_TIMEOUT_SECONDS"
RUNTIME = "python3.12"
STAGE = "v1"

# One JSON object per request: what a user needs to find a request and what it cost.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "apiKeyId": "$context.identity.apiKeyId",
        "method": "$context.httpMethod",
        "path": "$context.resourcePath",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "responseLength": "$context.responseLength",
    },
    separators=(",", ":"),
)


BINARY_MEDIA_TYPES = ("application/x-recordio-protobuf", "application/octet-stream")
"""Payload types API Gateway must pass to the Lambda (and back) as binary."""


@dataclass(frozen=True, kw_only=True)
class FrontDoorArgs:
    lambda_dir: Path
    """Directory holding ``handler.py``; only that file is packaged."""
    endpoint_name: pulumi.Input[str]
    """Passed to the function as SAGEMAKER_ENDPOINT_NAME."""
    endpoint_arn: pulumi.Input[str]
    """The only resource the function may invoke."""
    timeout_seconds: int
    """Lambda timeout, below API Gateway's 29 s integration timeout; the handler's read timeout
    is derived from it."""
    memory_mb: int = 256
    """Lambda memory (and with it CPU)."""
    log_retention_days: int = 30
    """Retention of the function's and the access logs' log groups."""
    log_group_prefix: str
    """Name prefix of both log groups (``/<project>/<stack>/``), the one the key policy allows."""
    kms_key_arn: pulumi.Input[str]
    """The stack's key, which encrypts both log groups."""
    rate_limit: float
    """Steady requests per second for the stage and the usage plan."""
    burst_limit: int
    """Burst for the stage and the usage plan."""
    quota_per_day: int
    """Requests per day the API key may make."""

    def __post_init__(self) -> None:
        if not MIN_TIMEOUT_SECONDS <= self.timeout_seconds < API_GATEWAY_TIMEOUT_SECONDS:
            raise ValueError(
                f"the Lambda must answer before API Gateway's {API_GATEWAY_TIMEOUT_SECONDS} s timeout"
            )
        if self.rate_limit <= 0 or self.burst_limit <= 0 or self.quota_per_day <= 0:
            raise ValueError("throttles and quotas must be positive")


class FrontDoor(pulumi.ComponentResource):
    """Lambda, its role and logs, the REST API, stage, usage plan and API key."""

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    api_id: pulumi.Output[str]
    api_name: pulumi.Output[str]
    stage_name: pulumi.Output[str]
    url: pulumi.Output[str]
    """``https://.../v1/predict``."""
    api_key_id: pulumi.Output[str]
    api_key_value: pulumi.Output[str]
    """Secret."""

    def __init__(self, name: str, args: FrontDoorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:api:FrontDoor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        function_logs = aws.cloudwatch.LogGroup(
            f"{name}-function-logs",
            name_prefix=f"{args.log_group_prefix}{name}-function-",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=name_tag(f"{name}-function-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-function-role",
            description="The front door's Lambda: invoke one endpoint, write its own logs",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=name_tag(f"{name}-function-role"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-function-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "InvokeThisEndpoint",
                            "Effect": "Allow",
                            "Action": "sagemaker:InvokeEndpoint",
                            "Resource": args.endpoint_arn,
                        },
                        {
                            "Sid": "WriteOwnLogs",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": pulumi.Output.concat(function_logs.arn, ":*"),
                        },
                        {
                            "Sid": "SendTraces",
                            "Effect": "Allow",
                            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                            # X-Ray's write actions have no resource-level permissions.
                            "Resource": "*",
                        },
                    ],
                }
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-function",
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            code=pulumi.AssetArchive({HANDLER_FILE: pulumi.FileAsset(str(args.lambda_dir / HANDLER_FILE))}),
            timeout=args.timeout_seconds,
            memory_size=args.memory_mb,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    ENDPOINT_NAME_VARIABLE: args.endpoint_name,
                    READ_TIMEOUT_VARIABLE: str(args.timeout_seconds - HANDLER_RESERVED_SECONDS),
                }
            ),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=function_logs.name
            ),
            tags=name_tag(f"{name}-function"),
            # Without its policy the first invocations could neither log nor reach the endpoint.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

        api = aws.apigateway.RestApi(
            f"{name}-api",
            description="POST /predict: the XGBoost model behind an API key",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            api_key_source="HEADER",
            # Without these, API Gateway treats a recordio-protobuf body as text and corrupts it, and a
            # binary answer the handler base64-encodes reaches the client as base64 text.
            binary_media_types=list(BINARY_MEDIA_TYPES),
            tags=name_tag(f"{name}-api"),
            opts=child,
        )
        predict = aws.apigateway.Resource(
            f"{name}-predict",
            rest_api=api.id,
            parent_id=api.root_resource_id,
            path_part="predict",
            opts=child,
        )
        method = aws.apigateway.Method(
            f"{name}-predict-post",
            rest_api=api.id,
            resource_id=predict.id,
            http_method="POST",
            authorization="NONE",
            api_key_required=True,
            opts=child,
        )
        integration = aws.apigateway.Integration(
            f"{name}-predict-integration",
            rest_api=api.id,
            resource_id=predict.id,
            http_method=method.http_method,
            type="AWS_PROXY",
            integration_http_method="POST",
            uri=function.invoke_arn,
            timeout_milliseconds=API_GATEWAY_TIMEOUT_SECONDS * 1000,
            opts=child,
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=api.id,
            # A new deployment whenever the route or its integration changes.
            triggers={
                "redeployment": pulumi.Output.json_dumps(
                    [predict.id, method.id, integration.id, integration.uri]
                )
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[method, integration]),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name_prefix=f"{args.log_group_prefix}{name}-access-",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=name_tag(f"{name}-access-logs"),
            opts=child,
        )
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=api.id,
            deployment=deployment.id,
            stage_name=STAGE,
            xray_tracing_enabled=True,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn, format=ACCESS_LOG_FORMAT
            ),
            tags=name_tag(f"{name}-stage"),
            opts=child,
        )
        aws.apigateway.MethodSettings(
            f"{name}-method-settings",
            rest_api=api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                metrics_enabled=True,
                logging_level="ERROR",
                # Request and response bodies are the clients' data: never in the logs.
                data_trace_enabled=False,
                throttling_rate_limit=args.rate_limit,
                throttling_burst_limit=args.burst_limit,
            ),
            opts=child,
        )
        plan = aws.apigateway.UsagePlan(
            f"{name}-usage-plan",
            description="Throttle and daily quota of the predict API's keys",
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=api.id, stage=stage.stage_name)],
            quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(limit=args.quota_per_day, period="DAY"),
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=args.rate_limit, burst_limit=args.burst_limit
            ),
            tags=name_tag(f"{name}-usage-plan"),
            opts=child,
        )
        key = aws.apigateway.ApiKey(
            f"{name}-api-key",
            description="Key of the predict API",
            enabled=True,
            tags=name_tag(f"{name}-api-key"),
            opts=child,
        )
        aws.apigateway.UsagePlanKey(
            f"{name}-usage-plan-key", key_id=key.id, key_type="API_KEY", usage_plan_id=plan.id, opts=child
        )
        aws.lambda_.Permission(
            f"{name}-invoke-permission",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            # Only this API's POST /predict, from any stage of it.
            source_arn=pulumi.Output.concat(api.execution_arn, "/*/POST/predict"),
            opts=child,
        )

        self.function_name = function.name
        self.function_arn = function.arn
        self.api_id = api.id
        self.api_name = api.name
        self.stage_name = stage.stage_name
        self.url = pulumi.Output.concat(stage.invoke_url, "/predict")
        self.api_key_id = key.id
        self.api_key_value = pulumi.Output.secret(key.value)
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "api_id": self.api_id,
                "api_name": self.api_name,
                "stage_name": self.stage_name,
                "url": self.url,
                "api_key_id": self.api_key_id,
                "api_key_value": self.api_key_value,
            }
        )
