"""API Gateway policies: every method needs a key or an authorizer, every API a throttled usage plan."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import props, settings, topology
from policies.props import UNKNOWN

METHOD = "aws:apigateway/method:Method"
REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
_AUTHORIZERS = ("AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS")

METHOD_AUTH = "apigateway-method-api-key"
_METHOD_AUTH_SCHEMA = settings.schema()


def validate_method_auth(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != METHOD:
        return
    settings.resolve(METHOD_AUTH, _METHOD_AUTH_SCHEMA, args.get_config())
    http_method = props.text(args.props, "httpMethod")
    if http_method == "OPTIONS":
        return  # CORS preflight requests carry no API key by design.
    key_required = props.flag(args.props, "apiKeyRequired")
    authorization = props.text(args.props, "authorization")
    if key_required is UNKNOWN or authorization is UNKNOWN:
        return
    if key_required is True or authorization in _AUTHORIZERS:
        return
    report_violation(
        f"API method '{args.name}' ({http_method or '?'}) has authorization={authorization or 'NONE'} and no "
        "API key: anyone can invoke the endpoint and run up its cost; set apiKeyRequired=True (and attach "
        "the key to a throttled usage plan) or an authorizer (AWS_IAM, CUSTOM, COGNITO_USER_POOLS)",
        None,
    )


method_auth = ResourceValidationPolicy(
    name=METHOD_AUTH,
    description=(
        "API methods must require an API key or an authorizer: set apiKeyRequired=True or an authorization "
        "type."
    ),
    validate=validate_method_auth,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_METHOD_AUTH_SCHEMA,
)


USAGE_PLAN_THROTTLE = "apigateway-api-usage-plan-throttle"
_USAGE_PLAN_SCHEMA = settings.schema()


def _positive(value: object) -> bool:
    return isinstance(value, int) and value > 0


def _throttled(plan: PolicyResource) -> bool:
    rate = props.integer(plan.props, "throttleSettings", "rateLimit")
    burst = props.integer(plan.props, "throttleSettings", "burstLimit")
    if rate is UNKNOWN or burst is UNKNOWN:
        return True
    if _positive(rate) and _positive(burst):
        return True
    stages = props.items(plan.props, "apiStages")
    for stage in stages if isinstance(stages, list) else []:
        throttles = props.items(stage, "throttles")
        if isinstance(throttles, list) and any(_positive(props.integer(t, "rateLimit")) for t in throttles):
            return True
    return False


def _plans_for(api: PolicyResource, resources: list[PolicyResource]) -> list[PolicyResource]:
    plans: list[PolicyResource] = []
    for plan in topology.of_type(resources, USAGE_PLAN):
        sources = plan.property_dependencies.get("apiStages", [])
        stage_apis = [s for s in sources if s.resource_type == STAGE and topology.linked(s, api)]
        if any(s.urn == api.urn for s in sources) or stage_apis:
            plans.append(plan)
    return plans


def validate_usage_plan(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(USAGE_PLAN_THROTTLE, _USAGE_PLAN_SCHEMA, args.get_config())
    methods = topology.of_type(args.resources, METHOD)
    for api in topology.of_type(args.resources, REST_API):
        if not any(topology.linked(m, api) for m in methods):
            continue
        plans = _plans_for(api, args.resources)
        if not plans:
            report_violation(
                f"REST API '{api.name}' is in no usage plan: its API keys have no rate limit; add an "
                "aws.apigateway.UsagePlan with apiStages for its stage and throttleSettings (rateLimit, "
                "burstLimit)",
                api.urn,
            )
        elif not any(_throttled(p) for p in plans):
            names = ", ".join(p.name for p in plans)
            report_violation(
                f"usage plan(s) {names} of REST API '{api.name}' set no throttling: one client can exhaust "
                "the endpoint; set throttleSettings with rateLimit and burstLimit above 0",
                plans[0].urn,
            )


usage_plan = StackValidationPolicy(
    name=USAGE_PLAN_THROTTLE,
    description=(
        "Every REST API in front of the endpoint must sit under a usage plan with throttling: add a "
        "UsagePlan for its stage with throttleSettings."
    ),
    validate=validate_usage_plan,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_USAGE_PLAN_SCHEMA,
)

POLICIES = [method_auth, usage_plan]
