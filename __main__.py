"""xgboost-endpoint: an XGBoost model on a private, autoscaled, observed SageMaker endpoint.

Settings in (config.py), components composed, outputs exported. The order breaks one cycle:
blue/green auto-rollback needs the alarms' names, and the alarms need the endpoint's name. The
endpoint gets a fixed name (``<project>-<stack>``, unique per stack), so the front door and the
alarms are created first, naming it, and the endpoint is created last with its rollback alarms.
"""

from pathlib import Path

import pulumi

import config
from components.context import AwsContext, log_group_prefix
from components.encryption import Encryption, EncryptionArgs
from components.endpoint import Endpoint, EndpointArgs, endpoint_arn, endpoint_log_group_arns
from components.front_door import FrontDoor, FrontDoorArgs
from components.image import ServingImage, ServingImageArgs
from components.model_artifact import ModelArtifact, ModelArtifactArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs, VpcEndpointAccess
from stackcore import endpoint_metrics

PROJECT_DIR = Path(__file__).resolve().parent
VARIANT = endpoint_metrics.VARIANT_NAME

settings = config.load(PROJECT_DIR)
aws_context = AwsContext.lookup()

encryption = Encryption(
    "encryption",
    EncryptionArgs(
        context=aws_context,
        log_group_prefix=log_group_prefix(),
        endpoint_log_group=endpoint_metrics.endpoint_log_group_name(settings.endpoint_name),
    ),
)

artifact = ModelArtifact(
    "model-artifact",
    ModelArtifactArgs(
        kms_key_arn=encryption.key_arn,
        partition=aws_context.partition,
        model_dir=settings.model_dir,
        model_uri=settings.model_uri,
        build_dir=PROJECT_DIR / "build" / "model-artifacts",
    ),
)

image = ServingImage(
    "serving-image",
    ServingImageArgs(
        project_dir=PROJECT_DIR, context_dir=PROJECT_DIR / "container", kms_key_arn=encryption.key_arn
    ),
)

network = Network(
    "network",
    NetworkArgs(
        vpc_cidr=settings.vpc_cidr,
        subnet_prefix_length=settings.subnet_prefix_length,
        availability_zones=settings.availability_zones,
        az_count=settings.az_count,
        interface_endpoint_services=config.INTERFACE_ENDPOINT_SERVICES,
        nat_gateway=settings.nat_gateway,
        endpoint_access=VpcEndpointAccess(
            context=aws_context,
            endpoint_arn=endpoint_arn(aws_context, settings.endpoint_name),
            endpoint_log_group_arns=endpoint_log_group_arns(aws_context, settings.endpoint_name),
            repository_arn=image.repository_arn,
            model_object_arn=artifact.model_object_arn,
            data_capture_arn=artifact.data_capture_arn,
        ),
    ),
)

front_door = FrontDoor(
    "front-door",
    FrontDoorArgs(
        lambda_dir=PROJECT_DIR / "lambda",
        endpoint_name=settings.endpoint_name,
        endpoint_arn=endpoint_arn(aws_context, settings.endpoint_name),
        timeout_seconds=settings.lambda_timeout_seconds,
        memory_mb=settings.lambda_memory_mb,
        log_retention_days=settings.log_retention_days,
        log_group_prefix=log_group_prefix(),
        kms_key_arn=encryption.key_arn,
        rate_limit=settings.api_rate_limit,
        burst_limit=settings.api_burst_limit,
        quota_per_day=settings.api_quota_per_day,
    ),
)

monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        endpoint_name=settings.endpoint_name,
        variant_name=VARIANT,
        instance_type=settings.instance_type,
        kms_key_arn=encryption.key_arn,
        alarm_emails=settings.alarm_emails,
        model_latency_p99_ms=settings.model_latency_p99_ms,
        error_rate_percent=settings.error_rate_percent,
        client_error_rate_percent=settings.client_error_rate_percent,
        cpu_percent=settings.cpu_alarm_percent,
        memory_percent=settings.memory_alarm_percent,
        invocations_per_instance_target=settings.invocations_per_instance_target,
        concurrency_per_instance_target=(
            settings.concurrency_per_instance_target if settings.follows_concurrency else None
        ),
        autoscaling=settings.autoscaling,
        max_instances=settings.fleet_max,
        fleet_at_max_minutes=settings.fleet_at_max_minutes,
        function_name=front_door.function_name,
        api_name=front_door.api_name,
        stage_name=front_door.stage_name,
        api_latency_p99_ms=settings.api_latency_p99_ms,
    ),
)

endpoint = Endpoint(
    "endpoint",
    EndpointArgs(
        context=aws_context,
        endpoint_name=settings.endpoint_name,
        variant_name=VARIANT,
        instance_type=settings.instance_type,
        initial_instance_count=settings.initial_instance_count,
        autoscaling=settings.autoscaling,
        min_instances=settings.min_instances,
        max_instances=settings.max_instances,
        invocations_per_instance_target=settings.invocations_per_instance_target,
        scaling_metric=settings.scaling_metric,
        concurrency_per_instance_target=settings.concurrency_per_instance_target,
        routing_strategy=settings.routing_strategy,
        scale_in_cooldown_seconds=settings.scale_in_cooldown_seconds,
        scale_out_cooldown_seconds=settings.scale_out_cooldown_seconds,
        update_mode=settings.update_mode,
        traffic_routing=settings.traffic_routing,
        traffic_step_percent=settings.traffic_step_percent,
        traffic_wait_seconds=settings.traffic_wait_seconds,
        termination_wait_seconds=settings.termination_wait_seconds,
        maximum_execution_timeout_seconds=settings.maximum_execution_timeout_seconds,
        rolling_batch_percent=settings.rolling_batch_percent,
        rolling_wait_seconds=settings.rolling_wait_seconds,
        rollback_alarm_names=monitoring.rollback_alarm_names if settings.auto_rollback else (),
        rollback_alarm_arns=monitoring.rollback_alarm_arns if settings.auto_rollback else (),
        image_uri=image.image_uri,
        repository_arn=image.repository_arn,
        model_data_url=artifact.model_data_url,
        model_object_arn=artifact.model_object_arn,
        kms_key_arn=encryption.key_arn,
        log_retention_days=settings.log_retention_days,
        volume_kms=settings.supports_kms_volume_key,
        subnet_ids=network.subnet_ids,
        subnet_arns=network.subnet_arns,
        security_group_id=network.security_group_id,
        security_group_arn=network.security_group_arn,
        vpc_arn=network.vpc_arn,
        network_isolation=settings.network_isolation,
        data_capture_percent=settings.data_capture_percent,
        data_capture_uri=artifact.data_capture_uri,
        data_capture_arn=artifact.data_capture_arn,
    ),
)

pulumi.export("endpointName", endpoint.endpoint_name)
pulumi.export("apiUrl", front_door.url)
pulumi.export("apiKeyId", front_door.api_key_id)
pulumi.export("apiKeyValue", front_door.api_key_value)
pulumi.export("alarmTopicArn", monitoring.topic_arn)
pulumi.export("dashboardName", monitoring.dashboard_name)
pulumi.export("imageUri", image.image_uri)
pulumi.export("modelDataUrl", artifact.model_data_url)
