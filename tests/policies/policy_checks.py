"""Helpers shared by the policy tests: run one policy on a graph and read what a user would see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.graph import ResourceGraph
from policies.catalog import ALL_POLICIES
from policies.runner import PackReport, PolicyResult, run_pack


def run_policy(graph: ResourceGraph, name: str, config: Mapping[str, Any] | None = None) -> PolicyResult:
    """The outcome of the policy ``name`` alone, with ``config`` as its pack-config entry."""
    policies = [p for p in ALL_POLICIES if p.name == name]
    assert policies, f"no policy named {name}"
    pack_config = {name: dict(config)} if config is not None else {}
    return run_pack(graph, pack_config, policies).result(name)


def messages(graph: ResourceGraph, name: str, config: Mapping[str, Any] | None = None) -> list[str]:
    return [v.message for v in run_policy(graph, name, config).violations]


def failing(report: PackReport) -> dict[str, list[str]]:
    return {r.name: [v.message for v in r.violations] for r in report.results if r.violations}
