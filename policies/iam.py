"""IAM policies: the front door's Lambda role grants named actions only, and no policy document
grants endpoint invocation or data actions on resources it does not name."""

from __future__ import annotations

from collections.abc import Iterator
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

from policies import iam_documents, props, settings, topology
from policies.props import UNKNOWN

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"

LAMBDA_WILDCARDS = "iam-lambda-role-wildcard-actions"
ALLOWED_MANAGED_POLICIES = "allowedManagedPolicies"
_SCHEMA = settings.schema(
    **{
        ALLOWED_MANAGED_POLICIES: {
            "type": "array",
            "items": {"type": "string"},
            "default": [
                "service-role/AWSLambdaBasicExecutionRole",
                "service-role/AWSLambdaVPCAccessExecutionRole",
            ],
            "description": "AWS-managed policies (the part after ':policy/') a Lambda role may carry.",
        }
    }
)


def _documents(role: PolicyResource, resources: list[PolicyResource]) -> Iterator[tuple[str, Any]]:
    """(where, policy document) for every policy on the role whose document is in the stack."""
    inline = props.items(role.props, "inlinePolicies")
    for index, entry in enumerate(inline if isinstance(inline, list) else []):
        yield f"inline policy #{index} of role '{role.name}'", props.get(entry, "policy")
    for policy in topology.of_type(resources, ROLE_POLICY):
        if role in topology.property_dependencies(policy, "role", ROLE):
            yield f"role policy '{policy.name}'", props.get(policy.props, "policy")
    for attachment in topology.of_type(resources, ROLE_POLICY_ATTACHMENT):
        if role in topology.property_dependencies(attachment, "role", ROLE):
            for managed in topology.property_dependencies(attachment, "policyArn", MANAGED_POLICY):
                yield f"policy '{managed.name}'", props.get(managed.props, "policy")


def _managed_arns(
    role: PolicyResource, resources: list[PolicyResource]
) -> Iterator[tuple[PolicyResource, str]]:
    for attachment in topology.of_type(resources, ROLE_POLICY_ATTACHMENT):
        if role not in topology.property_dependencies(attachment, "role", ROLE):
            continue
        if topology.property_dependencies(attachment, "policyArn", MANAGED_POLICY):
            continue
        arn = props.text(attachment.props, "policyArn")
        if isinstance(arn, str):
            yield attachment, arn


def wildcard_actions(document: Any) -> list[str]:
    """Actions with a ``*`` (or a ``NotAction``) in the Allow statements of a policy document."""
    found: list[str] = []
    for statement in iam_documents.statements(document) or []:
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            found.append(f"NotAction {statement['NotAction']}")
        actions, _ = iam_documents.strings(statement.get("Action"))
        found.extend(a for a in actions if "*" in a)
    return found


def validate_lambda_wildcards(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = settings.resolve(LAMBDA_WILDCARDS, _SCHEMA, args.get_config())
    allowed: list[str] = config[ALLOWED_MANAGED_POLICIES]
    roles: list[PolicyResource] = []
    for function in topology.of_type(args.resources, topology.LAMBDA_FUNCTION):
        roles.extend(r for r in topology.property_dependencies(function, "role", ROLE) if r not in roles)
    for role in roles:
        for where, document in _documents(role, args.resources):
            if document is UNKNOWN or document is None:
                continue
            wildcards = wildcard_actions(props.plain(document))
            if wildcards:
                report_violation(
                    f"{where} on Lambda role '{role.name}' allows wildcard action(s) {', '.join(wildcards)}: "
                    "list the exact actions the function calls (e.g. sagemaker:InvokeEndpoint on the "
                    "endpoint's ARN)",
                    role.urn,
                )
        for attachment, arn in _managed_arns(role, args.resources):
            name = arn.split(":policy/", 1)[-1]
            if name not in allowed:
                report_violation(
                    f"attachment '{attachment.name}' gives Lambda role '{role.name}' the managed policy "
                    f"{name}, whose actions this pack cannot check: use an inline policy with exact actions, "
                    f"or add it to '{ALLOWED_MANAGED_POLICIES}' in the pack config after review",
                    attachment.urn,
                )


lambda_wildcards = StackValidationPolicy(
    name=LAMBDA_WILDCARDS,
    description=(
        "Lambda execution roles must grant named actions, never wildcards: list the exact actions such as "
        "sagemaker:InvokeEndpoint on exact ARNs."
    ),
    validate=validate_lambda_wildcards,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_SCHEMA,
)

DATA_WILDCARD_RESOURCE = "iam-policy-data-action-wildcard-resource"
_DATA_WILDCARD_SCHEMA = settings.schema()
_DOCUMENT_HOLDERS = (ROLE_POLICY, MANAGED_POLICY, USER_POLICY, GROUP_POLICY)


def _stack_documents(args: ResourceValidationArgs) -> list[tuple[str, object]]:
    """(where, document) for every IAM policy document the resource itself holds."""
    if args.resource_type in _DOCUMENT_HOLDERS:
        kind = "managed policy" if args.resource_type == MANAGED_POLICY else "policy"
        return [(f"{kind} '{args.name}'", props.get(args.props, "policy"))]
    if args.resource_type == ROLE:
        inline = props.items(args.props, "inlinePolicies")
        return [
            (f"inline policy #{index} of role '{args.name}'", props.get(entry, "policy"))
            for index, entry in enumerate(inline if isinstance(inline, list) else [])
        ]
    return []


def validate_data_wildcard_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    settings.resolve(DATA_WILDCARD_RESOURCE, _DATA_WILDCARD_SCHEMA, args.get_config())
    for where, document in _stack_documents(args):
        if document is UNKNOWN or document is None:
            continue  # Built from other resources' outputs: only known during the update.
        for grant in iam_documents.wildcard_grants(props.plain(document)) or []:
            report_violation(
                f"{grant.statement} of {where} allows {', '.join(grant.actions)} on "
                f"{', '.join(grant.resources)}, which names no single resource: list the exact ARNs "
                "(the endpoint's ARN for sagemaker:InvokeEndpoint, the bucket's objects for s3, the key's "
                "ARN for kms)",
                None,
            )


data_wildcard_resource = ResourceValidationPolicy(
    name=DATA_WILDCARD_RESOURCE,
    description=(
        "IAM policies must not allow endpoint invocation or S3 and KMS data actions on wildcard resources: "
        "name the exact endpoint, object and key ARNs."
    ),
    validate=validate_data_wildcard_resource,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=_DATA_WILDCARD_SCHEMA,
)

POLICIES = [lambda_wildcards, data_wildcard_resource]
