"""The stack core: every fact and rule about a stack, in plain Python (no Pulumi, no components).

The program (``config.py``), the policy pack, ``make plan`` and the capacity tool read and judge a
stack through it. :func:`load_stack` is the entry point for tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stackcore.layering import StackValues, parse_set_value, read_stack_values
from stackcore.problems import Problem, StackConfigError
from stackcore.settings import StackSettings, parse_settings

__all__ = ["Problem", "StackConfigError", "StackSettings", "StackValues", "load_stack", "read_stack_values"]


def load_stack(project_dir: Path, stack: str, overrides: Mapping[str, str] | None = None) -> StackSettings:
    """The validated settings of ``Pulumi.<stack>.yaml`` over Pulumi.yaml's defaults.

    ``overrides`` are command-line strings (``{"maxInstances": "20"}``), read like ``--set``: JSON
    when they parse (numbers, true/false, lists, objects), else the string itself. Raises
    :class:`StackConfigError` listing every problem, each naming the key and the fix."""
    parsed = {key: parse_set_value(value) for key, value in (overrides or {}).items()}
    values = read_stack_values(project_dir, stack, parsed)
    return parse_settings(
        values.values,
        project_dir=project_dir,
        stack=stack,
        project=values.project,
        declarations=values.declarations,
    )
