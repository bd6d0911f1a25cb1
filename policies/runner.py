"""Run the policy pack in-process on a recorded resource graph: no CLI, no credentials.

The runner does what the CLI's analyzer host does with the same policy objects: it builds
``ResourceValidationArgs`` for every resource and ``StackValidationArgs`` for the stack, passes
each policy its configuration (defaults applied from the policy's own schema) and the enforcement
level the pack config sets, and collects the violations. Properties go through the same
unknown-value proxy as under the CLI: an input that came from another resource but has no value
yet (an autonamed name, an id in a preview) is "unknown", exactly as in ``pulumi preview``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from lib.graph import RecordedResource, ResourceGraph
from policies import settings
from policies.catalog import ALL_POLICIES
from policies.settings import PolicyConfigError

ALL_KEY = "all"
"""Pack-config key that sets the enforcement level of every policy, as with the CLI."""

Policy = ResourceValidationPolicy | StackValidationPolicy


@dataclass(frozen=True, kw_only=True)
class Violation:
    policy: str
    level: EnforcementLevel
    message: str
    urn: str | None


@dataclass(frozen=True, kw_only=True)
class PolicyResult:
    name: str
    description: str
    level: EnforcementLevel
    violations: tuple[Violation, ...]
    not_applicable: tuple[str, ...] = ()
    cannot_judge: tuple[str, ...] = ()
    """Values only known during the update: reported by the CLI as "can't run during preview"."""

    @property
    def status(self) -> str:
        if self.level is EnforcementLevel.DISABLED:
            return "disabled"
        if self.violations:
            return "FAILED" if self.level is EnforcementLevel.MANDATORY else "warning"
        if self.not_applicable:
            return "not applicable"
        return "passed"


@dataclass(frozen=True, kw_only=True)
class PackReport:
    stack: str
    results: tuple[PolicyResult, ...]

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    @property
    def mandatory_violations(self) -> list[Violation]:
        return [v for v in self.violations if v.level is EnforcementLevel.MANDATORY]

    @property
    def passed(self) -> bool:
        return not self.mandatory_violations

    def result(self, name: str) -> PolicyResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _props(resource: RecordedResource) -> dict[str, Any]:
    """Inputs as CrossGuard sees them in a preview.

    A value fed by another resource but not known yet is the engine's "unknown" sentinel.
    """
    plain = _plain(resource.inputs)
    for key, sources in resource.property_dependencies.items():
        if sources and plain.get(key) is None:
            plain[key] = UNKNOWN_STRING_VALUE
    return unknown_checking_proxy(plain)


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=list(resource.ignore_changes),
        delete_before_replace=resource.delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent,
    )


def _default_provider(graph: ResourceGraph) -> PolicyProviderResource:
    """The default AWS provider the engine would create from the stack's ``aws:*`` configuration."""
    inputs: dict[str, Any] = {}
    for key, value in graph.config.items():
        if key.startswith("aws:"):
            parsed = value
            if isinstance(value, str) and value[:1] in "{[":
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError:
                    parsed = value
            inputs[key.removeprefix("aws:")] = _plain(parsed)
    urn = f"urn:pulumi:{graph.stack}::{graph.project}::pulumi:providers:aws::default"
    return PolicyProviderResource("pulumi:providers:aws", unknown_checking_proxy(inputs), urn, "default")


def _provider_of(
    resource: RecordedResource, by_urn: Mapping[str, RecordedResource], fallback: PolicyProviderResource
) -> PolicyProviderResource | None:
    if not resource.type.startswith("aws:"):
        return None
    if resource.provider:
        # A provider reference is "<urn>::<id>"; accept a bare URN too.
        for urn in (resource.provider, resource.provider.rsplit("::", 1)[0]):
            if urn in by_urn:
                provider = by_urn[urn]
                return PolicyProviderResource(provider.type, _props(provider), provider.urn, provider.name)
    return fallback


def policy_resources(graph: ResourceGraph) -> list[PolicyResource]:
    """The stack as ``StackValidationArgs.resources``: parents and dependencies linked as objects."""
    fallback = _default_provider(graph)
    recorded_by_urn = {r.urn: r for r in graph.resources}
    by_urn: dict[str, PolicyResource] = {}
    for recorded in graph.resources:
        by_urn[recorded.urn] = PolicyResource(
            recorded.type,
            _props(recorded),
            recorded.urn,
            recorded.name,
            _options(recorded),
            _provider_of(recorded, recorded_by_urn, fallback),
            None,
            [],
            {},
        )
    for recorded in graph.resources:
        resource = by_urn[recorded.urn]
        if recorded.parent in by_urn:
            resource.parent = by_urn[recorded.parent]
        resource.dependencies = [by_urn[u] for u in recorded.dependencies if u in by_urn]
        resource.property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn]
            for key, urns in recorded.property_dependencies.items()
        }
    return list(by_urn.values())


def _level(policy: Policy, pack_config: Mapping[str, Any]) -> EnforcementLevel:
    default = policy.enforcement_level or EnforcementLevel.ADVISORY
    default = settings.enforcement_level(ALL_KEY, pack_config.get(ALL_KEY), default)
    level = settings.enforcement_level(policy.name, pack_config.get(policy.name), default)
    # A stack policy cannot remediate; the CLI treats "remediate" as mandatory for validation.
    return EnforcementLevel.MANDATORY if level is EnforcementLevel.REMEDIATE else level


def policy_config(policy: Policy, pack_config: Mapping[str, Any]) -> dict[str, Any]:
    entry = pack_config.get(policy.name)
    given = entry if isinstance(entry, Mapping) else {}
    return settings.resolve(policy.name, policy.config_schema, given)


async def _await(awaitable: Any) -> None:
    await awaitable


Validation = Callable[[Callable[[str, str | None], None]], Any]


def _validations(
    policy: Policy, resources: list[PolicyResource], config: Mapping[str, Any]
) -> list[tuple[Validation, str | None]]:
    """One call per resource for a resource policy (violations default to that resource), one per stack."""
    if isinstance(policy, StackValidationPolicy):
        stack_args = StackValidationArgs(resources, config)
        return [(lambda report: policy.validate(stack_args, report), None)]
    calls: list[tuple[Validation, str | None]] = []
    for resource in resources:
        args = ResourceValidationArgs(
            resource.resource_type,
            resource.props,
            resource.urn,
            resource.name,
            resource.opts,
            resource.provider,
            config,
        )
        calls.append(((lambda report, a=args: policy.validate(a, report)), resource.urn))
    return calls


def _reporter(
    into: list[Violation], policy: str, level: EnforcementLevel, default_urn: str | None
) -> Callable[..., None]:
    def report(message: str, urn: str | None = None) -> None:
        into.append(Violation(policy=policy, level=level, message=message, urn=urn or default_urn))

    return report


def check_pack_config(pack_config: Mapping[str, Any], policies: Sequence[Policy] = ALL_POLICIES) -> None:
    """Refuse names that match no policy: a typo would otherwise silently configure nothing."""
    known = {p.name for p in policies} | {ALL_KEY}
    unknown = sorted(set(pack_config) - known)
    if unknown:
        raise PolicyConfigError(
            f"policy-pack config names unknown policies {', '.join(unknown)}; known: "
            f"{', '.join(sorted(known))}"
        )


def run_pack(
    graph: ResourceGraph,
    pack_config: Mapping[str, Any] | None = None,
    policies: Sequence[Policy] = ALL_POLICIES,
) -> PackReport:
    """Every policy on the graph; raises PolicyConfigError for a pack config that cannot be used."""
    pack_config = pack_config or {}
    check_pack_config(pack_config, policies)
    resources = policy_resources(graph)
    results: list[PolicyResult] = []
    for policy in policies:
        level = _level(policy, pack_config)
        config = policy_config(policy, pack_config)
        if level is EnforcementLevel.DISABLED:
            results.append(
                PolicyResult(name=policy.name, description=policy.description, level=level, violations=())
            )
            continue
        violations: list[Violation] = []
        not_applicable: list[str] = []
        cannot_judge: list[str] = []
        for validate, default_urn in _validations(policy, resources, config):
            report = _reporter(violations, policy.name, level, default_urn)
            try:
                result = validate(report)
                if inspect.isawaitable(result):
                    asyncio.run(_await(result))
            except UnknownValueError as error:
                cannot_judge.append(error.message)
            except _NotApplicableError as error:
                not_applicable.append(error.reason or "policy does not apply")
        results.append(
            PolicyResult(
                name=policy.name,
                description=policy.description,
                level=level,
                violations=tuple(violations),
                not_applicable=tuple(dict.fromkeys(not_applicable)),
                cannot_judge=tuple(dict.fromkeys(cannot_judge)),
            )
        )
    return PackReport(stack=graph.stack, results=tuple(results))
