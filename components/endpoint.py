"""The SageMaker side: a least-privilege execution role, the model in the VPC, an immutable,
auto-named endpoint configuration, the endpoint with its deployment guardrails, autoscaling, and
the endpoint's log group with the metric its container's shed requests make.

Provider traps this component is built around (../shared/AWS-FACTS.md):
- endpoint configurations are immutable and replaced on any change: they are auto-named, so a
  replacement is created under a new name, the endpoint is updated to it, and only then is the
  old one deleted; a new model (also auto-named) changes the configuration's ``modelName`` and so
  always leads to a new configuration;
- the scalable target can only be registered once the endpoint is in service: its resource id is
  built from the endpoint's ``name`` output, which records the dependency;
- an autoscaling target blocks an instance-type change: the target's identity is tied to the
  instance type, so both are replaced together; AWS still needs the target gone before the
  endpoint update, so the change is rolled out in two deployments (autoscaling off, then the type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import AwsContext, name_tag
from stackcore import endpoint_metrics, rules
from stackcore.deployment import TrafficRouting
from stackcore.fleet import UpdateMode
from stackcore.limits import ENDPOINT_NAME_MAX
from stackcore.scaling import RoutingStrategy, ScalingMetric, follows_concurrency, follows_invocations

sm = aws.sagemaker
scaling = aws.appautoscaling

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC_TYPE = endpoint_metrics.INVOCATIONS_PER_INSTANCE_METRIC_TYPE
CONCURRENCY_METRIC_TYPE = endpoint_metrics.CONCURRENCY_METRIC_TYPE


@dataclass(frozen=True, kw_only=True)
class EndpointArgs:
    context: AwsContext
    """Account, region and partition for the role's ARNs."""
    endpoint_name: str
    """Physical endpoint name, fixed so that alarms can name it before it exists (see __main__.py)."""
    variant_name: str = endpoint_metrics.VARIANT_NAME
    """Production variant; must stay the same across updates."""
    instance_type: str
    """SageMaker hosting instance type of the variant."""
    initial_instance_count: int
    """Instances the variant starts with (and keeps without autoscaling)."""
    autoscaling: bool
    """Register the variant with Application Auto Scaling."""
    min_instances: int = 1
    """Autoscaling minimum (>= 1)."""
    max_instances: int = 1
    """Autoscaling maximum."""
    invocations_per_instance_target: int = 600
    """SageMakerVariantInvocationsPerInstance target, per minute per instance."""
    scaling_metric: ScalingMetric = ScalingMetric.INVOCATIONS
    """The target-tracking policies: on invocations per instance, on concurrency, or both."""
    concurrency_per_instance_target: int = 4
    """SageMakerVariantConcurrentRequestsPerModelHighResolution target: requests in flight per model."""
    routing_strategy: RoutingStrategy = RoutingStrategy.RANDOM
    """How SageMaker picks the instance for each request."""
    scale_in_cooldown_seconds: int = 300
    """Seconds after a scale-in before the next one."""
    scale_out_cooldown_seconds: int = 60
    """Seconds after a scale-out before the next one."""
    update_mode: UpdateMode = UpdateMode.BLUE_GREEN
    """Blue/green (a second fleet, traffic shifted) or rolling (batches of the fleet)."""
    traffic_routing: TrafficRouting = TrafficRouting.ALL_AT_ONCE
    """Blue/green traffic shifting: all at once, canary or linear."""
    traffic_step_percent: int = 10
    """CANARY: first share of capacity; LINEAR: share per step."""
    traffic_wait_seconds: int = 300
    """Blue/green: seconds between shifting steps, while the rollback alarms are watched."""
    termination_wait_seconds: int = 300
    """Blue/green: seconds the old fleet is kept after all traffic moved."""
    maximum_execution_timeout_seconds: int = 3600
    """Longest a deployment may take before SageMaker rolls it back."""
    rolling_batch_percent: int = 20
    """Rolling: MaximumBatchSize as a percentage of the variant's capacity (5-50)."""
    rolling_wait_seconds: int = 300
    """Rolling: seconds between batches."""
    rollback_alarm_names: Sequence[str] = ()
    """Alarms that stop and roll back a deployment; empty disables auto-rollback. Plain, fixed
    names, never autonamed outputs: the provider replaces the endpoint when this list changes."""
    rollback_alarm_arns: Sequence[pulumi.Input[str]] = ()
    """Their ARNs, for the role's ``cloudwatch:DescribeAlarms``."""
    image_uri: pulumi.Input[str]
    """Digest-pinned serving image."""
    repository_arn: pulumi.Input[str]
    """ECR repository the role may pull from."""
    model_data_url: pulumi.Input[str]
    """``s3://`` URL of model.tar.gz."""
    model_object_arn: pulumi.Input[str]
    """ARN of that object: the only one the role may read."""
    kms_key_arn: pulumi.Input[str]
    """The stack's key (volumes, data capture, the endpoint's log group)."""
    log_retention_days: int = 30
    """Retention of the endpoint's log group (a value CloudWatch Logs accepts; settings check it)."""
    volume_kms: bool = True
    """Encrypt the instances' volumes with the key; False for NVMe (``*d``) types, which refuse it."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets of the model's VPC configuration."""
    subnet_arns: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Their ARNs, for ``ec2:CreateNetworkInterface``."""
    security_group_id: pulumi.Input[str]
    """Security group of the endpoint's instances."""
    security_group_arn: pulumi.Input[str]
    """Its ARN, for ``ec2:CreateNetworkInterface``."""
    vpc_arn: pulumi.Input[str]
    """The VPC the role may create and delete ENIs in."""
    network_isolation: bool = True
    """Run the container with no network access (it needs none)."""
    data_capture_percent: int = 0
    """0 turns data capture off."""
    data_capture_uri: pulumi.Input[str] | None = None
    """``s3://`` prefix for captured requests and responses."""
    data_capture_arn: pulumi.Input[str] | None = None
    """ARN pattern of the captured objects, for ``s3:PutObject``."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Extra container environment."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.endpoint_name) <= ENDPOINT_NAME_MAX:
            raise ValueError(f"an endpoint name is 1-{ENDPOINT_NAME_MAX} characters: {self.endpoint_name!r}")
        if self.initial_instance_count < 1:
            raise ValueError("an endpoint variant needs at least one instance")
        if self.autoscaling:
            burstable = rules.burstable_autoscaled(self.instance_type, autoscaling=True)
            if burstable is not None:
                raise ValueError(str(burstable))
            if not 1 <= self.min_instances <= self.initial_instance_count <= self.max_instances:
                raise ValueError("autoscaling needs 1 <= min <= initial <= max instances")
            if follows_concurrency(self.scaling_metric) and self.concurrency_per_instance_target < 1:
                raise ValueError("a concurrency target is 1 or more requests in flight")
        rolling_batch = rules.rolling_batch_out_of_range(self.rolling_batch_percent)
        if self.update_mode is UpdateMode.ROLLING and rolling_batch is not None:
            raise ValueError(str(rolling_batch))
        if self.data_capture_percent and (self.data_capture_uri is None or self.data_capture_arn is None):
            raise ValueError("data capture needs a destination")
        if len(self.rollback_alarm_names) != len(self.rollback_alarm_arns):
            raise ValueError("give an ARN for every rollback alarm")


class Endpoint(pulumi.ComponentResource):
    """Execution role, model, endpoint configuration, endpoint and its autoscaling, and the
    endpoint's log group with its shed-requests metric filter."""

    endpoint_name: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    variant_name: pulumi.Output[str]

    def __init__(self, name: str, args: EndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("xgboost-endpoint:sagemaker:Endpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(
            f"{name}-role",
            description=f"SageMaker execution role of endpoint {args.endpoint_name}",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": args.context.account_id}},
                        }
                    ],
                }
            ),
            tags=name_tag(f"{name}-role"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy", role=role.id, policy=execution_policy(args), opts=child
        )

        model = sm.Model(
            f"{name}-model",
            execution_role_arn=role.arn,
            primary_container=sm.ModelPrimaryContainerArgs(
                image=args.image_uri,
                model_data_url=args.model_data_url,
                environment=dict(args.environment) or None,
            ),
            vpc_config=sm.ModelVpcConfigArgs(
                subnets=args.subnet_ids, security_group_ids=[args.security_group_id]
            ),
            enable_network_isolation=args.network_isolation,
            tags=name_tag(f"{name}-model"),
            # CreateModel checks that the role can pull the image: the policy must be in place.
            # Retained on delete for the same reason as the configuration below: after an
            # auto-rollback the old model is the one serving.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy], retain_on_delete=True),
        )

        config = sm.EndpointConfiguration(
            f"{name}-config",
            production_variants=[
                sm.EndpointConfigurationProductionVariantArgs(
                    variant_name=args.variant_name,
                    model_name=model.name,
                    instance_type=args.instance_type,
                    # Every update brings the new fleet up at this count, not at the autoscaled
                    # size: UpdateEndpoint's RetainAllVariantProperties defaults to false and
                    # pulumi-aws has no argument for it. Keep it near the usual fleet (README).
                    initial_instance_count=args.initial_instance_count,
                    initial_variant_weight=1.0,
                    # Given even for RANDOM (SageMaker's default), so the configuration says what
                    # it does; a change of strategy replaces the configuration like any field.
                    routing_configs=[
                        sm.EndpointConfigurationProductionVariantRoutingConfigArgs(
                            routing_strategy=args.routing_strategy.value
                        )
                    ],
                )
            ],
            kms_key_arn=args.kms_key_arn if args.volume_kms else None,
            data_capture_config=_data_capture(args),
            tags=name_tag(f"{name}-config"),
            # Never deleted by Pulumi: when SageMaker auto-rolls an update back, the provider
            # still reports success (it waits for InService, which a rolled-back endpoint is;
            # terraform-provider-aws #48997), and Pulumi would then delete the old configuration,
            # the one the endpoint is serving from. Configurations and models are free metadata;
            # README ("Known limits") says how to clean old ones up.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        # The endpoint's log group, created by the stack rather than by SageMaker on first write, so
        # that it is encrypted with the stack's key and kept for the stack's retention. Its name is
        # the one SageMaker writes to (a fixed name, like the endpoint's); the endpoint depends on it.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=endpoint_metrics.endpoint_log_group_name(args.endpoint_name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=name_tag(f"{name}-logs"),
            opts=child,
        )
        # One datapoint per shed request (the container's access log, "shed": true), 0 for every
        # other log line, so the metric exists and reads 0 while the endpoint serves. No dimensions:
        # the line does not carry the endpoint's name; the namespace does (endpoint_metrics).
        aws.cloudwatch.LogMetricFilter(
            f"{name}-shed-requests",
            log_group_name=log_group.name,
            pattern=endpoint_metrics.SHED_FILTER_PATTERN,
            metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                name=endpoint_metrics.SHED_REQUESTS,
                namespace=endpoint_metrics.serving_namespace(args.endpoint_name),
                value="1",
                default_value="0",
                unit="Count",
            ),
            opts=child,
        )

        endpoint = sm.Endpoint(
            f"{name}-endpoint",
            # A fixed name (not autonaming) breaks the alarm <-> rollback cycle; the endpoint is
            # updated in place when its configuration changes. Its rollback configuration is ForceNew:
            # the alarm names are fixed (monitoring.py) so that only turning autoRollback on or off
            # replaces it (README, "Known limits").
            name=args.endpoint_name,
            endpoint_config_name=config.name,
            deployment_config=deployment_config(args),
            tags=name_tag(f"{name}-endpoint"),
            opts=pulumi.ResourceOptions(
                parent=self,
                # SageMaker reads the rollback alarms with the role's cloudwatch:DescribeAlarms:
                # the policy (and through its ARNs, the alarms) must exist before a deployment. The
                # log group must exist before the first instance writes, or SageMaker creates its own.
                depends_on=[role_policy, log_group],
                # No custom_timeouts: the provider's endpoint resource has no Timeouts block and
                # waits a fixed 60 minutes for InService, whatever Pulumi asks. config.validate
                # refuses deployment settings that could take longer.
            ),
        )

        if args.autoscaling:
            target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="sagemaker",
                scalable_dimension=SCALABLE_DIMENSION,
                resource_id=pulumi.Output.concat("endpoint/", endpoint.name, "/variant/", args.variant_name),
                min_capacity=args.min_instances,
                max_capacity=args.max_instances,
                tags=name_tag(f"{name}-scaling-target"),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # The registration belongs to one instance type: a type change replaces the
                    # configuration and, through this trigger, the target (deregistered before it
                    # registers again). Pulumi deregisters it only after the endpoint update, which
                    # AWS refuses while the variant is autoscaled: such a change takes two
                    # deployments, autoscaling off first (README, "Known limits").
                    replacement_trigger=args.instance_type,
                    delete_before_replace=True,
                ),
            )
            # Both policies on one target when both metrics are followed: Application Auto Scaling
            # scales out when either asks and in only when both allow. Each keeps its logical
            # name whatever the other does, so switching metrics adds or removes one policy.
            if follows_invocations(args.scaling_metric):
                _target_tracking_policy(
                    f"{name}-scaling-policy",
                    target,
                    metric_type=INVOCATIONS_METRIC_TYPE,
                    target_value=float(args.invocations_per_instance_target),
                    args=args,
                    opts=child,
                )
            if follows_concurrency(args.scaling_metric):
                _target_tracking_policy(
                    f"{name}-concurrency-scaling-policy",
                    target,
                    metric_type=CONCURRENCY_METRIC_TYPE,
                    target_value=float(args.concurrency_per_instance_target),
                    args=args,
                    opts=child,
                )

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.endpoint_config_name = config.name
        self.model_name = model.name
        self.role_arn = role.arn
        self.variant_name = pulumi.Output.from_input(args.variant_name)
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "model_name": self.model_name,
                "role_arn": self.role_arn,
                "variant_name": self.variant_name,
                "log_group_name": self.log_group_name,
            }
        )


def _target_tracking_policy(
    name: str,
    target: aws.appautoscaling.Target,
    *,
    metric_type: str,
    target_value: float,
    args: EndpointArgs,
    opts: pulumi.ResourceOptions,
) -> aws.appautoscaling.Policy:
    """A target-tracking policy on one of the variant's predefined metrics. No ``resource_label``:
    Application Auto Scaling takes one only for ALBRequestCountPerTarget (botocore's model)."""
    return scaling.Policy(
        name,
        policy_type="TargetTrackingScaling",
        service_namespace=target.service_namespace,
        scalable_dimension=target.scalable_dimension,
        resource_id=target.resource_id,
        target_tracking_scaling_policy_configuration=scaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
            target_value=target_value,
            predefined_metric_specification=scaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                predefined_metric_type=metric_type
            ),
            # The stack's cooldowns, the same for each policy.
            scale_in_cooldown=args.scale_in_cooldown_seconds,
            scale_out_cooldown=args.scale_out_cooldown_seconds,
        ),
        opts=opts,
    )


def endpoint_arn(context: AwsContext, endpoint_name: str) -> pulumi.Output[str]:
    """The ARN SageMaker gives an endpoint of this name (it lower-cases the name in ARNs)."""
    return context.arn("sagemaker", f"endpoint/{endpoint_name.lower()}")


def endpoint_log_group_arns(context: AwsContext, endpoint_name: str) -> list[pulumi.Output[str]]:
    """The log group SageMaker writes the endpoint's container logs to, and its streams (one per
    instance, named by SageMaker, hence the ``*``)."""
    log_group = f"log-group:{endpoint_metrics.endpoint_log_group_name(endpoint_name)}"
    return [context.arn("logs", log_group), context.arn("logs", f"{log_group}:log-stream:*")]


def deployment_config(args: EndpointArgs) -> sm.EndpointDeploymentConfigArgs:
    rollback = (
        sm.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
            alarms=[
                sm.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(alarm_name=alarm)
                for alarm in args.rollback_alarm_names
            ]
        )
        if args.rollback_alarm_names
        else None
    )
    if args.update_mode is UpdateMode.ROLLING:
        return sm.EndpointDeploymentConfigArgs(
            rolling_update_policy=sm.EndpointDeploymentConfigRollingUpdatePolicyArgs(
                maximum_batch_size=sm.EndpointDeploymentConfigRollingUpdatePolicyMaximumBatchSizeArgs(
                    type="CAPACITY_PERCENT", value=args.rolling_batch_percent
                ),
                wait_interval_in_seconds=args.rolling_wait_seconds,
                maximum_execution_timeout_in_seconds=args.maximum_execution_timeout_seconds,
                # Roll back all at once: a bad model should leave as fast as possible.
                rollback_maximum_batch_size=sm.EndpointDeploymentConfigRollingUpdatePolicyRollbackMaximumBatchSizeArgs(
                    type="CAPACITY_PERCENT", value=100
                ),
            ),
            auto_rollback_configuration=rollback,
        )
    step = sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
        type="CAPACITY_PERCENT", value=args.traffic_step_percent
    )
    linear = sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs(
        type="CAPACITY_PERCENT", value=args.traffic_step_percent
    )
    routing = sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
        type=args.traffic_routing.value,
        wait_interval_in_seconds=args.traffic_wait_seconds,
        canary_size=step if args.traffic_routing is TrafficRouting.CANARY else None,
        linear_step_size=linear if args.traffic_routing is TrafficRouting.LINEAR else None,
    )
    return sm.EndpointDeploymentConfigArgs(
        blue_green_update_policy=sm.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=args.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=args.maximum_execution_timeout_seconds,
        ),
        auto_rollback_configuration=rollback,
    )


def _data_capture(args: EndpointArgs) -> sm.EndpointConfigurationDataCaptureConfigArgs | None:
    if not args.data_capture_percent or args.data_capture_uri is None:
        return None
    return sm.EndpointConfigurationDataCaptureConfigArgs(
        enable_capture=True,
        initial_sampling_percentage=args.data_capture_percent,
        destination_s3_uri=args.data_capture_uri,
        kms_key_id=args.kms_key_arn,
        capture_options=[
            sm.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Input"),
            sm.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(capture_mode="Output"),
        ],
        capture_content_type_header=sm.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
            csv_content_types=["text/csv"],
            json_content_types=["application/json", "application/jsonlines"],
        ),
    )


def execution_policy(args: EndpointArgs) -> pulumi.Output[str]:
    """The execution role's only policy: this artifact, this repository, these logs, this key."""
    ctx = args.context
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadTheModelArtifact",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": args.model_object_arn,
        },
        {
            "Sid": "PullTheServingImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Resource": args.repository_arn,
        },
        # GetAuthorizationToken has no resource-level permissions: "*" is the only valid resource.
        {"Sid": "LogInToEcr", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "WriteTheEndpointLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            "Resource": endpoint_log_group_arns(ctx, args.endpoint_name),
        },
        {
            "Sid": "UseTheStackKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": args.kms_key_arn,
        },
        {
            "Sid": "GrantTheKeyToEndpointVolumes",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": args.kms_key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        # Describe* calls have no resource-level permissions: "*" is the only valid resource.
        {
            "Sid": "DescribeTheNetwork",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeDhcpOptions",
            ],
            "Resource": "*",
        },
        {
            "Sid": "AttachInstancesToTheSubnets",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": pulumi.Output.all(args.subnet_arns, args.security_group_arn).apply(
                lambda parts: [*parts[0], parts[1]]
            ),
        },
        # The ENIs do not exist yet, so their ARNs cannot be named; the condition keeps them to this VPC.
        {
            "Sid": "ManageTheEndpointEnis",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            "Resource": ctx.arn("ec2", "network-interface/*"),
            "Condition": {"ArnEquals": {"ec2:Vpc": args.vpc_arn}},
        },
    ]
    if args.rollback_alarm_names:
        statements.append(
            {
                "Sid": "WatchTheRollbackAlarms",
                "Effect": "Allow",
                "Action": "cloudwatch:DescribeAlarms",
                "Resource": list(args.rollback_alarm_arns),
            }
        )
    if args.data_capture_percent and args.data_capture_arn is not None:
        statements.append(
            {
                "Sid": "WriteDataCapture",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": args.data_capture_arn,
            }
        )
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})
