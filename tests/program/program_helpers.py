"""Helpers for the program's tests: read the recorded graph the way a reviewer would."""

from __future__ import annotations

import json
from typing import Any

from lib.graph import RecordedResource, ResourceGraph


def one(graph: ResourceGraph, type_token: str) -> RecordedResource:
    """The only resource of a type (fails loudly when there are none or several)."""
    found = graph.of_type(type_token)
    assert len(found) == 1, f"{len(found)} resources of type {type_token}"
    return found[0]


def policy_statements(resource: RecordedResource, key: str = "policy") -> list[dict[str, Any]]:
    """The statements of an IAM document held as a JSON string input."""
    document = json.loads(resource.inputs[key])
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcards(statements: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Sid -> actions of every statement whose action or resource is a bare or trailing ``*``."""
    found: dict[str, list[str]] = {}
    for statement in statements:
        actions = as_list(statement["Action"])
        resources = as_list(statement.get("Resource", []))
        if any(a == "*" or a.endswith(":*") for a in actions) or any(r == "*" for r in resources):
            found[statement.get("Sid", "?")] = actions
    return found
