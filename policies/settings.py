"""Policy configuration: one schema per policy, with the defaults applied from that schema.

CrossGuard passes a policy the object configured for it in the pack config
(``--policy-pack-config``); the in-process runner passes the same objects. Defaults live once,
in each schema's ``default``, and :func:`resolve` applies them in both settings, so a policy
never sees a missing key and the offline plan never disagrees with a preview.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyProviderResource, PolicyResource

from policies import props
from policies.props import UNKNOWN
from stackcore import rules
from stackcore.fleet import NEW_ACCOUNT_QUOTAS

ENFORCEMENT_LEVEL_KEY = "enforcementLevel"


class PolicyConfigError(ValueError):
    """A policy-pack configuration value that cannot be used; the message names it and the fix."""


ENDPOINT_INSTANCE_QUOTAS = "endpointInstanceQuotas"
TOTAL_INSTANCE_QUOTA = "totalInstanceQuota"
QUOTA_PROPERTIES: dict[str, dict[str, Any]] = {
    ENDPOINT_INSTANCE_QUOTAS: {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 0},
        "default": dict(NEW_ACCOUNT_QUOTAS.per_instance_type),
        "description": "Quota '<type> for endpoint usage' per instance type; an absent type has 0.",
    },
    TOTAL_INSTANCE_QUOTA: {
        "type": "integer",
        "minimum": 0,
        "default": NEW_ACCOUNT_QUOTAS.total_instances,
        "description": "Quota 'Number of instances across active endpoints'.",
    },
}


def schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=dict(properties))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "array": (list, tuple),
    "object": (dict, Mapping),
    "integer": (int, float),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
}


def _check(policy_name: str, key: str, value: Any, spec: Mapping[str, Any]) -> Any:
    expected = spec.get("type")
    where = f"policy-pack config '{policy_name}.{key}'"
    if expected is None:
        return value
    kinds = _JSON_TYPES[expected]
    if isinstance(value, bool) and expected != "boolean":
        raise PolicyConfigError(
            f"{where} must be {expected}, got {value!r}: fix the value in the pack config"
        )
    if not isinstance(value, kinds):
        raise PolicyConfigError(
            f"{where} must be {expected}, got {value!r}: fix the value in the pack config"
        )
    if expected == "integer":
        if not float(value).is_integer():
            raise PolicyConfigError(f"{where} must be a whole number, got {value!r}")
        value = int(value)
    allowed = spec.get("enum")
    if allowed is not None and value not in allowed:
        raise PolicyConfigError(f"{where} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    minimum = spec.get("minimum")
    if minimum is not None and value < minimum:
        raise PolicyConfigError(f"{where} must be at least {minimum}, got {value!r}")
    if isinstance(value, list | tuple) and "items" in spec:
        return [_check(policy_name, f"{key}[{i}]", item, spec["items"]) for i, item in enumerate(value)]
    values = spec.get("additionalProperties")
    if isinstance(value, Mapping) and isinstance(values, Mapping):
        return {str(k): _check(policy_name, f"{key}.{k}", v, values) for k, v in value.items()}
    return value


def resolve(
    policy_name: str, config_schema: PolicyConfigSchema | None, given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The policy's configuration: the given values checked against the schema, defaults filled in."""
    properties = config_schema.properties if config_schema is not None else {}
    given = dict(given or {})
    given.pop(ENFORCEMENT_LEVEL_KEY, None)
    unknown_keys = sorted(set(given) - set(properties))
    if unknown_keys:
        raise PolicyConfigError(
            f"policy-pack config for '{policy_name}' has unknown key(s) {', '.join(unknown_keys)}; known "
            f"keys: {', '.join(sorted(properties)) or 'none'}"
        )
    resolved: dict[str, Any] = {}
    for key, spec in properties.items():
        if key in given:
            resolved[key] = _check(policy_name, key, given[key], spec)
        elif "default" in spec:
            resolved[key] = copy.deepcopy(spec["default"])
    return resolved


def enforcement_level(name: str, entry: Any, default: EnforcementLevel) -> EnforcementLevel:
    """The level a pack-config entry sets: ``"advisory"`` or ``{"enforcementLevel": "advisory", ...}``."""
    raw = entry.get(ENFORCEMENT_LEVEL_KEY) if isinstance(entry, Mapping) else entry
    if raw is None:
        return default
    try:
        return EnforcementLevel(raw)
    except ValueError:
        allowed = ", ".join(level.value for level in EnforcementLevel)
        raise PolicyConfigError(
            f"policy-pack config '{name}' has enforcement level {raw!r}; use one of {allowed}"
        ) from None


# Which stacks are production.


def stack_of(urn: str) -> str:
    """The stack name inside a URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    parts = urn.split("::")
    head = parts[0].split(":")
    return head[2] if len(head) >= 3 else ""


def environment_tag(provider: PolicyProviderResource | None) -> str | None:
    """The ``environment`` tag from an AWS provider's default tags, when known."""
    if provider is None or not provider.resource_type.startswith("pulumi:providers:aws"):
        return None
    default_tags = props.mapping(provider.props, "defaultTags")
    if default_tags is UNKNOWN or default_tags is None:
        return None
    tags = props.mapping(default_tags, "tags")
    if tags is UNKNOWN or tags is None:
        return None
    value = props.text(tags, "environment")
    return value if isinstance(value, str) else None


def is_production(urn: str, provider: PolicyProviderResource | None) -> bool:
    """Production by the one meaning (:func:`stackcore.rules.stack_is_production`): the provider's
    ``environment`` tag when set, else the stack's name."""
    return rules.stack_is_production(environment_tag(provider), stack_of(urn))


def stack_is_production(resources: Sequence[PolicyResource]) -> bool:
    """:func:`is_production` for a whole stack: the first AWS provider's tag, else the stack's name."""
    tag: str | None = None
    stack = ""
    for resource in resources:
        stack = stack or stack_of(resource.urn)
        provider = resource.provider
        if resource.resource_type.startswith("pulumi:providers:aws"):
            provider = PolicyProviderResource(
                resource.resource_type, resource.props, resource.urn, resource.name
            )
        tag = tag or environment_tag(provider)
    return rules.stack_is_production(tag, stack)
