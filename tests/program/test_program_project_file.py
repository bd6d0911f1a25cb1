"""Pulumi.yaml declares every setting once, in types the Pulumi CLI's project schema accepts."""

from __future__ import annotations

import re

import yaml

from lib.evaluate import REPO_ROOT
from stackcore import keys

# Pulumi's project schema (sdk/go/common/workspace/project.json, SimpleConfigType).
PULUMI_CONFIG_TYPES = {"string", "integer", "boolean", "array"}
# Pulumi has no object type; this one's type is in its description and checked by config.py.
UNTYPED_OBJECTS = {"endpointInstanceQuotas"}


def declared() -> dict[str, dict]:
    return yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]


def test_every_setting_has_a_valid_type_a_default_and_a_description():
    for key, spec in declared().items():
        assert spec.get("description"), key
        assert "default" in spec, key
        if key in UNTYPED_OBJECTS:
            assert "type" not in spec
            assert spec["description"].startswith("Object,")
            continue
        assert spec["type"] in PULUMI_CONFIG_TYPES, f"{key}: {spec['type']}"
        if spec["type"] == "array":
            assert spec["items"]["type"] in PULUMI_CONFIG_TYPES, key


def test_the_stack_core_reads_exactly_the_declared_settings():
    source = (REPO_ROOT / "stackcore" / "settings.py").read_text()
    read = {getattr(keys, name) for name in re.findall(r"reader\.\w+\(\s*(?:k|keys)\.(\w+)", source)}
    assert read == set(declared())


def test_stack_files_set_only_declared_settings():
    keys = set(declared())
    for stack in ("dev", "prod"):
        values = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        ours = {k.split(":", 1)[1] for k in values if k.startswith("xgboost-endpoint:")}
        assert ours <= keys, ours - keys
        assert {k.split(":", 1)[0] for k in values} <= {"xgboost-endpoint", "aws"}
