"""The stack's resource graph as plain data.

The program is evaluated under Pulumi mocks (no CLI, no credentials) and every registered
resource is recorded here: its type token, logical name, URN, inputs (camelCase keys, as the
engine and CrossGuard see them), parent and dependencies. The program's tests, the policy
pack's tests, the offline plan and the benchmark all read this one shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class RecordedResource:
    """One resource as the engine saw it register."""

    type: str
    """Type token, e.g. ``aws:sagemaker/endpoint:Endpoint`` or ``xgboost-endpoint:network:Network``."""
    name: str
    """Logical name."""
    urn: str
    custom: bool
    """False for component resources."""
    inputs: Mapping[str, Any]
    """Inputs with the engine's camelCase keys; unknown values (computed during a preview) are None."""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """What the mocks answered: inputs plus realistic ids and ARNs."""
    parent: str | None = None
    """URN of the parent, None only for the stack itself."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on (explicit depends_on and every input's resources)."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per input property: the URNs its value came from."""
    provider: str | None = None
    """Provider reference, when one was set explicitly."""
    protect: bool = False
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    """Pulumi drops it from the state on delete but leaves it in the account."""
    ignore_changes: tuple[str, ...] = ()
    custom_timeouts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ResourceGraph:
    """Every resource of one evaluation of the program, in registration order."""

    project: str
    stack: str
    resources: tuple[RecordedResource, ...]
    exports: Mapping[str, Any] = field(default_factory=dict)
    """Stack outputs; secret outputs are kept but marked by the recorder."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The stack configuration the program was evaluated with (``project:key`` -> value)."""

    def __iter__(self) -> Iterator[RecordedResource]:
        return iter(self.resources)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def by_urn(self, urn: str) -> RecordedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources are named {name!r}")
        return matches[0]

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]

    def depends_on(self, resource: RecordedResource, other: RecordedResource) -> bool:
        """True when ``resource`` depends on ``other`` directly or through an input."""
        if other.urn in resource.dependencies:
            return True
        return any(other.urn in urns for urns in resource.property_dependencies.values())
