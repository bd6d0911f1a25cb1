"""The program's stack configuration, as the capacity tool reads and writes it.

The keys are the program's (``Pulumi.yaml``, owned by the program engineer): the tool reads a
stack's current values for its defaults (instance type, AZ count, quotas, update mode, API rate
limit) and prints the settings it derives under the same keys, as ``Pulumi.<stack>.yaml`` lines
and ``pulumi config set`` commands. It reads the stack through the stack core's layering
(``stackcore.layering``), as the plan and the program do, without a Pulumi runtime.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackcore import fleet, keys
from stackcore import problems as stack_problems
from stackcore.layering import read_project, read_stack_values
from stackcore.settings import parse_quotas
from tools.capacity.sizing import ConcurrencySettings, FleetSettings

DEFAULT_PROJECT = "xgboost-endpoint"

# The program's key names, from the stack core (the one place they are written).
INSTANCE_TYPE_KEY = keys.INSTANCE_TYPE
AZ_COUNT_KEY = keys.AZ_COUNT
AUTOSCALING_KEY = keys.AUTOSCALING
INITIAL_INSTANCES_KEY = keys.INITIAL_INSTANCE_COUNT
MIN_INSTANCES_KEY = keys.MIN_INSTANCES
MAX_INSTANCES_KEY = keys.MAX_INSTANCES
SCALING_TARGET_KEY = keys.INVOCATIONS_PER_INSTANCE_TARGET
CONCURRENCY_TARGET_KEY = keys.CONCURRENCY_PER_INSTANCE_TARGET
MAX_CONCURRENCY_KEY = keys.MAX_CONCURRENCY_PER_INSTANCE
UPDATE_MODE_KEY = keys.UPDATE_MODE
ROLLING_BATCH_KEY = keys.ROLLING_BATCH_PERCENT
QUOTAS_KEY = keys.ENDPOINT_INSTANCE_QUOTAS
TOTAL_QUOTA_KEY = keys.TOTAL_INSTANCE_QUOTA
API_RATE_KEY = keys.API_RATE_LIMIT

StackValue = str | int | bool


class StackConfigError(ValueError):
    """A Pulumi.yaml or Pulumi.<stack>.yaml the tool cannot read; the message names the file."""


@dataclass(frozen=True, kw_only=True)
class StackContext:
    """What a stack currently says, with the project's defaults filled in."""

    project: str
    stack: str
    declared_keys: frozenset[str]
    """Keys declared under ``config:`` in Pulumi.yaml (empty without one)."""
    values: Mapping[str, Any]
    """Each declared key's value for this stack: the stack file's, else Pulumi.yaml's default."""
    stack_file_found: bool
    quotas: fleet.QuotaTable = fleet.NEW_ACCOUNT_QUOTAS
    """The stack's quotas as the stack core parses them (a JSON string included), else a new account's."""

    def get(self, key: str, fallback: Any = None) -> Any:
        return self.values.get(key, fallback)

    @property
    def update_mode(self) -> fleet.UpdateMode:
        try:
            return fleet.UpdateMode(str(self.get(UPDATE_MODE_KEY, fleet.UpdateMode.BLUE_GREEN.value)))
        except ValueError:
            return fleet.UpdateMode.BLUE_GREEN


def read_stack(project_dir: Path, stack: str) -> StackContext:
    """The project's declared keys and defaults overlaid with ``Pulumi.<stack>.yaml``'s values."""
    if not (project_dir / "Pulumi.yaml").is_file():
        return StackContext(
            project=DEFAULT_PROJECT, stack=stack, declared_keys=frozenset(), values={}, stack_file_found=False
        )
    stack_file_found = (project_dir / f"Pulumi.{stack}.yaml").is_file()
    try:
        project_file = read_project(project_dir)
        if stack_file_found:
            # Undeclared keys are the plan's and the program's to refuse; the tool only reads.
            layered = read_stack_values(project_dir, stack, check_keys=False)
            prefix = f"{layered.project}:"
            values = {k.removeprefix(prefix): v for k, v in layered.values.items() if k.startswith(prefix)}
            quotas = parse_quotas(layered.values, declarations=layered.declarations, project=layered.project)
        else:
            values = {k: d.default for k, d in project_file.declarations.items() if d.has_default}
            quotas = fleet.NEW_ACCOUNT_QUOTAS
    except stack_problems.StackConfigError as error:
        raise StackConfigError(str(error)) from None
    return StackContext(
        project=project_file.name,
        stack=stack,
        declared_keys=frozenset(project_file.declarations),
        values=values,
        stack_file_found=stack_file_found,
        quotas=quotas,
    )


def stack_settings(
    fleet_settings: FleetSettings, instance_type: str, concurrency: ConcurrencySettings | None = None
) -> dict[str, StackValue]:
    """The configuration values a stack takes from this run, in the program's key names: both
    scaling targets (invocations per instance, and concurrency when it was derived).

    The program checks ``min <= initial <= max``, so the fleet starts at its minimum. A
    burstable type cannot be autoscaled: it gets a fixed fleet sized for the peak at the
    operating point, and no scaling settings.
    """
    settings: dict[str, StackValue] = {
        INSTANCE_TYPE_KEY: instance_type,
        AZ_COUNT_KEY: fleet_settings.az_count,
    }
    # The loads the fleet was sized for: `make plan`'s what-if lines play the stack at them.
    if fleet_settings.base_rps > 0:
        settings[keys.EXPECTED_BASE_RPS] = math.ceil(fleet_settings.base_rps)
    if fleet_settings.peak_rps is not None and fleet_settings.peak_rps > 0:
        settings[keys.EXPECTED_PEAK_RPS] = math.ceil(fleet_settings.peak_rps)
    if fleet_settings.burstable:
        settings[AUTOSCALING_KEY] = False
        settings[INITIAL_INSTANCES_KEY] = fleet_settings.fixed_instances
        return settings
    settings[AUTOSCALING_KEY] = True
    settings[INITIAL_INSTANCES_KEY] = fleet_settings.min_instances
    settings[MIN_INSTANCES_KEY] = fleet_settings.min_instances
    if fleet_settings.max_instances is not None:
        settings[MAX_INSTANCES_KEY] = fleet_settings.max_instances
    settings[SCALING_TARGET_KEY] = fleet_settings.target_invocations_per_minute
    if concurrency is not None:
        settings[CONCURRENCY_TARGET_KEY] = concurrency.target_per_instance
        settings[MAX_CONCURRENCY_KEY] = concurrency.max_per_instance
    return settings


def stack_yaml(settings: Mapping[str, StackValue], project: str) -> str:
    """The ``config:`` lines to paste into ``Pulumi.<stack>.yaml``."""
    lines = ["config:"]
    lines += [f"  {project}:{key}: {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines)


def config_set_commands(settings: Mapping[str, StackValue], stack: str) -> str:
    """The equivalent ``pulumi config set`` commands (``--type`` keeps numbers and booleans typed)."""
    commands: list[str] = []
    for key, value in settings.items():
        if isinstance(value, bool):
            commands.append(f"pulumi config set --stack {stack} --type bool {key} {json.dumps(value)}")
        elif isinstance(value, int):
            commands.append(f"pulumi config set --stack {stack} --type int {key} {value}")
        else:
            commands.append(f"pulumi config set --stack {stack} {key} {value}")
    return "\n".join(commands)
