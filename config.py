"""The program's settings: the Pulumi configuration handed to the stack core, once.

This module only adapts: it reads every configuration value the Pulumi runtime holds, gives the
plain mapping to :func:`stackcore.settings.parse_settings` (which knows every key, type, default
and rule, without Pulumi) and raises :class:`ConfigError` listing every problem, each naming the
key and the fix, so that a preview fails with a message a user can act on instead of an AWS error
twenty minutes into an update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from stackcore import quotas
from stackcore.instance_types import hosting_instance_types
from stackcore.keys import PROJECT
from stackcore.layering import read_project
from stackcore.problems import Problem, StackConfigError
from stackcore.settings import (
    INTERFACE_ENDPOINT_SERVICES,
    MIN_SUBNETS,
    StackSettings,
    endpoint_name,
    parse_settings,
)

__all__ = [
    "INTERFACE_ENDPOINT_SERVICES",
    "MIN_SUBNETS",
    "PROJECT",
    "ConfigError",
    "Problem",
    "Settings",
    "endpoint_name",
    "live_quota_problems",
    "load",
    "read_live_quotas",
    "sagemaker_instance_types",
]

Settings = StackSettings
"""The program's settings are the core's (the same field names)."""

sagemaker_instance_types = hosting_instance_types
read_live_quotas = quotas.live_quota_table
live_quota_problems = quotas.live_quota_problems


class ConfigError(StackConfigError):
    """The stack configuration cannot be deployed; every problem found is listed, not just the first."""


def _runtime_values(project: str, declared: list[str]) -> dict[str, Any]:
    """Every configuration value the runtime holds (qualified key -> string), undeclared ones too,
    so that a misspelt key is refused instead of silently ignored."""
    # The SDK has no public call that lists the configuration; the CLI hands it over in
    # PULUMI_CONFIG, and set_all_config (mocks) fills CONFIG.
    values: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    cfg = pulumi.Config(project)
    for key in declared:
        value = cfg.get(key)
        if value is not None:
            values[f"{project}:{key}"] = value
    return values


def load(project_dir: Path) -> StackSettings:
    """Read and validate the stack configuration; raise :class:`ConfigError` listing every problem."""
    project = pulumi.get_project()
    try:
        declarations = read_project(project_dir).declarations
        settings = parse_settings(
            _runtime_values(project, sorted(declarations)),
            project_dir=project_dir,
            stack=pulumi.get_stack(),
            project=project,
            declarations=declarations,
        )
    except StackConfigError as error:
        raise ConfigError(error.problems) from None
    if settings.check_live_quotas:
        client = _service_quotas_client(settings.region)
        problems = quotas.live_quota_problems(settings.variant_fleet, settings.quotas, client)
        if problems:
            raise ConfigError(problems)
    return settings


def _service_quotas_client(region: str) -> Any:
    import boto3  # noqa: PLC0415 - only with the check on

    return boto3.client("service-quotas", region_name=region or None)
