"""Pulumi.yaml's ``config:`` declarations, ``Pulumi.<stack>.yaml`` and ``--set`` overrides, read once.

The CLI gives the program every declared key: the stack file's value, else Pulumi.yaml's default.
:func:`read_stack_values` does the same offline for the plan, the capacity tool and the tests, and
refuses what the CLI would let through silently: a key in the project's namespace that Pulumi.yaml
does not declare (the closest declared name is suggested), a key listed twice, a YAML syntax error
(file and line).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from stackcore.keys import PROJECT, qualified
from stackcore.problems import Problem, StackConfigError

OTHER_NAMESPACES = frozenset({"aws", "pulumi"})
"""Namespaces whose keys belong to a provider or to Pulumi itself, never checked here."""


@dataclass(frozen=True, kw_only=True)
class Declaration:
    """One key declared under ``config:`` in Pulumi.yaml."""

    key: str
    type: str | None
    """``string``, ``integer``, ``boolean``, ``array``, or None (an object, described in words)."""
    default: Any
    has_default: bool
    description: str


@dataclass(frozen=True, kw_only=True)
class ProjectFile:
    name: str
    declarations: Mapping[str, Declaration]


@dataclass(frozen=True, kw_only=True)
class StackValues:
    """A stack's configuration as the CLI would hand it to the program."""

    project: str
    stack: str
    values: Mapping[str, Any]
    """Fully qualified key (``xgboost-endpoint:maxInstances``, ``aws:region``) -> value."""
    sources: Mapping[str, str]
    """Qualified key -> where its value came from (``Pulumi.prod.yaml line 12``, ``--set``)."""
    declarations: Mapping[str, Declaration]

    def get(self, key: str, fallback: Any = None) -> Any:
        """A project key's value (bare name) or a qualified key's."""
        return self.values.get(qualified(key, self.project), fallback)

    @property
    def region(self) -> str:
        return str(self.values.get("aws:region") or "")


def _yaml_error(path: Path, error: yaml.YAMLError) -> StackConfigError:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = f" line {mark.line + 1}" if mark is not None else ""
    detail = getattr(error, "problem", None) or str(error)
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        # An unclosed bracket or quote is found where the file ends: say where it was opened.
        detail = f"{detail} ({context} on line {context_mark.line + 1})"
    return StackConfigError(
        [
            Problem(
                key="",
                where=f"{path.name}{line}",
                problem=f"YAML syntax error: {detail}",
                fix="correct the YAML there (indentation, a missing ':' or an unclosed quote or bracket)",
            )
        ]
    )


def _read_mapping(path: Path, section: str | None) -> tuple[dict[str, Any], dict[str, int]]:
    """The mapping at the top of ``path`` (or under ``section``) and the line of each of its keys."""
    try:
        text = path.read_text()
    except OSError as error:
        raise StackConfigError(
            [Problem(key="", where=path.name, problem=f"cannot be read ({error})", fix="check the file")]
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _yaml_error(path, error) from None
    document = {} if document is None else document
    if not isinstance(document, dict):
        raise StackConfigError(
            [
                Problem(
                    key="", where=path.name, problem="is not a YAML mapping", fix="write `config:` and keys"
                )
            ]
        )
    node = root
    values: Any = document
    if section is not None:
        values = document.get(section) or {}
        node = _child(root, section)
        if not isinstance(values, dict):
            raise StackConfigError(
                [
                    Problem(
                        key="",
                        where=f"{path.name} line {_line(node)}",
                        problem=f"`{section}:` is not a mapping of key: value",
                        fix=f"indent the keys under `{section}:`",
                    )
                ]
            )
    lines: dict[str, int] = {}
    duplicates: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key = str(key_node.value)
            if key in lines:
                duplicates.append(
                    Problem(
                        key="",
                        where=f"{path.name} line {key_node.start_mark.line + 1}",
                        problem=f"{key} is listed twice (also line {lines[key]}); YAML keeps only the last",
                        fix="keep one of them",
                    )
                )
            lines[key] = key_node.start_mark.line + 1
    if duplicates:
        raise StackConfigError(duplicates)
    return {str(k): v for k, v in values.items()}, lines  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def _child(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    return None


def _line(node: Any) -> int:
    return node.start_mark.line + 1 if node is not None else 1


@cache
def _read_project_cached(path: Path, mtime_ns: int) -> ProjectFile:
    del mtime_ns  # part of the cache key only: an edited Pulumi.yaml is read again
    document, _ = _read_mapping(path, None)
    name = str(document.get("name") or PROJECT)
    declared = document.get("config") or {}
    if not isinstance(declared, dict):
        raise StackConfigError(
            [
                Problem(
                    key="", where=path.name, problem="`config:` is not a mapping", fix="declare keys under it"
                )
            ]
        )
    declarations: dict[str, Declaration] = {}
    for raw_key, spec in declared.items():  # pyright: ignore[reportUnknownVariableType]
        key = str(raw_key).removeprefix(f"{name}:")  # pyright: ignore[reportUnknownArgumentType]
        if isinstance(spec, dict):
            declarations[key] = Declaration(
                key=key,
                type=spec.get("type"),  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
                default=spec.get("default"),  # pyright: ignore[reportUnknownMemberType]
                has_default="default" in spec,
                description=str(spec.get("description", "")),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
            )
        else:
            declarations[key] = Declaration(
                key=key, type=None, default=spec, has_default=True, description=""
            )
    return ProjectFile(name=name, declarations=declarations)


def read_project(project_dir: Path) -> ProjectFile:
    """Pulumi.yaml's name and ``config:`` declarations (read once per content)."""
    path = (project_dir / "Pulumi.yaml").resolve()
    if not path.is_file():
        raise StackConfigError(
            [
                Problem(
                    key="", where=str(project_dir), problem="has no Pulumi.yaml", fix="run from the project"
                )
            ]
        )
    return _read_project_cached(path, path.stat().st_mtime_ns)


def closest_key(key: str, declared: Sequence[str]) -> str | None:
    """The declared key closest to a misspelt one (case is ignored), if any is close."""
    by_lower = {d.lower(): d for d in declared}
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    matches = difflib.get_close_matches(key.lower(), sorted(by_lower), n=1, cutoff=0.7)
    return by_lower[matches[0]] if matches else None


def undeclared_problems(
    values: Mapping[str, Any],
    declarations: Mapping[str, Declaration],
    project: str = PROJECT,
    sources: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every key in the project's namespace (or one spelt close to it) that Pulumi.yaml does not
    declare: the program would never read it, so the setting would silently not apply."""
    problems: list[Problem] = []
    declared = sorted(declarations)
    for full_key in sorted(values):
        namespace, _, key = full_key.rpartition(":")
        if namespace in OTHER_NAMESPACES:
            continue
        if namespace != project:
            if difflib.SequenceMatcher(None, namespace, project).ratio() >= 0.8:
                problems.append(
                    Problem(
                        key=key,
                        where=(sources or {}).get(full_key, ""),
                        problem=f"'{namespace}' is not the project's namespace '{project}'",
                        fix=f"write it as {project}:{key}",
                    )
                )
            continue
        if key in declarations:
            continue
        suggestion = closest_key(key, declared)
        fix = (
            f"did you mean {suggestion}? Rename it"
            if suggestion
            else "remove it, or declare it in Pulumi.yaml (type, default, description) and read it"
        )
        problems.append(
            Problem(
                key=key,
                where=(sources or {}).get(full_key, ""),
                problem="is not declared in Pulumi.yaml, so the program would ignore it",
                fix=fix,
            )
        )
    return problems


def config_string(value: Any) -> str:
    """A value as the Pulumi CLI hands it to the program: a string, lists and objects as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def parse_set_value(raw: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, true/false, lists, objects), else the string.

    Like ``pulumi config set``, ``yes`` stays the string "yes" (YAML would make it true)."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    if raw.lstrip().startswith(("{", "[")):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            return raw
    return raw


def parse_set_arguments(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs from the command line; a malformed pair is a problem."""
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            problems.append(
                Problem(
                    key="",
                    where=f"--set {pair!r}",
                    problem="is not KEY=VALUE",
                    fix="write KEY=VALUE, e.g. --set maxInstances=20",
                )
            )
            continue
        parsed[key.strip()] = parse_set_value(value)
    if problems:
        raise StackConfigError(problems)
    return parsed


def read_stack_values(
    project_dir: Path, stack: str, overrides: Mapping[str, Any] | None = None, *, check_keys: bool = True
) -> StackValues:
    """Pulumi.yaml's defaults, then ``Pulumi.<stack>.yaml``, then ``overrides`` (values as given;
    see :func:`parse_set_arguments` for command-line strings). Keys without a namespace are the
    project's. Raises :class:`StackConfigError` for file problems and, with ``check_keys``, for
    undeclared keys."""
    project_file = read_project(project_dir)
    project = project_file.name
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, declaration in project_file.declarations.items():
        if declaration.has_default:
            values[qualified(key, project)] = declaration.default
            sources[qualified(key, project)] = "Pulumi.yaml default"
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        shipped = sorted(p.name.split(".")[1] for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackConfigError(
            [
                Problem(
                    key="",
                    where=f"stack '{stack}'",
                    problem=f"no stack file {stack_file.name}",
                    fix=f"create it, or pick one of the shipped stacks ({', '.join(shipped) or 'none'})",
                )
            ]
        )
    stack_config, lines = _read_mapping(stack_file, "config")
    for key, value in stack_config.items():
        values[qualified(key, project)] = value
        sources[qualified(key, project)] = f"{stack_file.name} line {lines.get(key, '?')}"
    for key, value in (overrides or {}).items():
        values[qualified(key, project)] = value
        sources[qualified(key, project)] = "--set"
    if check_keys:
        problems = undeclared_problems(values, project_file.declarations, project, sources)
        if problems:
            raise StackConfigError(problems)
    return StackValues(
        project=project, stack=stack, values=values, sources=sources, declarations=project_file.declarations
    )
