"""The component conventions a reviewer checks, checked for every component."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pulumi
import pytest

from lib.evaluate import REPO_ROOT

MODULES = sorted(
    p.stem for p in (REPO_ROOT / "components").glob("*.py") if p.stem not in {"__init__", "context"}
)


def classes(module_name: str) -> list[ast.ClassDef]:
    tree = ast.parse(Path(REPO_ROOT / "components" / f"{module_name}.py").read_text())
    return [node for node in tree.body if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize("module_name", MODULES)
def test_args_are_frozen_keyword_only_dataclasses_with_a_docstring_per_field(module_name):
    module = importlib.import_module(f"components.{module_name}")
    (args_class,) = [c for c in classes(module_name) if c.name.endswith("Args")]
    args = getattr(module, args_class.name)
    params = args.__dataclass_params__
    assert params.frozen
    assert all(f.kw_only for f in dataclasses.fields(args))
    body = args_class.body
    for index, statement in enumerate(body):
        if isinstance(statement, ast.AnnAssign):
            following = body[index + 1] if index + 1 < len(body) else None
            name = f"{args_class.name}.{ast.unparse(statement.target)}"
            assert isinstance(following, ast.Expr), f"{name} has no docstring"
            assert isinstance(following.value, ast.Constant), f"{name} has no docstring"


@pytest.mark.parametrize("module_name", MODULES)
def test_components_register_every_output_attribute_under_its_own_name(module_name):
    module = importlib.import_module(f"components.{module_name}")
    (component_class,) = [
        c for c in classes(module_name) if issubclass(getattr(module, c.name), pulumi.ComponentResource)
    ]
    attributes = {ast.unparse(s.target) for s in component_class.body if isinstance(s, ast.AnnAssign)}
    registered: set[str] = set()
    for node in ast.walk(component_class):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "self.register_outputs":
            (outputs,) = node.args
            assert isinstance(outputs, ast.Dict)
            registered = {k.value for k in outputs.keys if isinstance(k, ast.Constant)}
    assert registered == attributes
