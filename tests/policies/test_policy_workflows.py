"""The GitHub workflows parse, and run what the project relies on: the gate, the offline plan and a
CrossGuard preview per stack on pull requests, dev then approved prod on main, OIDC, pinned actions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
SHIPPED_STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml")
)


def _load(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    triggers = workflow["on"] if "on" in workflow else workflow[True]
    assert isinstance(triggers, dict)
    return triggers


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if str(s.get("uses", "")).startswith(f"{action}@")]


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in _steps(job))


def _stacks(job: dict[str, Any]) -> list[str]:
    matrix = job["strategy"]["matrix"]
    return sorted(matrix["stack"] if "stack" in matrix else [entry["stack"] for entry in matrix["include"]])


def _assert_live_quotas_written_with_credentials_before_pulumi(job: dict[str, Any]) -> None:
    steps = _steps(job)

    def index(predicate: Any) -> int:
        return next(i for i, step in enumerate(steps) if predicate(step))

    credentials = index(lambda s: str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"))
    config = index(lambda s: "--write-policy-config" in str(s.get("run", "")))
    pulumi = index(lambda s: str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert credentials < config < pulumi
    assert "--live-quotas" in steps[config]["run"]


def test_shipped_stacks_are_dev_and_prod() -> None:
    assert {"dev", "prod"} <= set(SHIPPED_STACKS)


def test_pull_request_runs_the_gate() -> None:
    workflow = _load("pull-request.yml")
    assert "pull_request" in _triggers(workflow)
    assert "make test" in _runs(workflow["jobs"]["test"])


def test_pull_request_plans_every_shipped_stack_offline() -> None:
    job = _load("pull-request.yml")["jobs"]["plan"]
    assert _stacks(job) == SHIPPED_STACKS
    assert "make plan STACK=${{ matrix.stack }}" in _runs(job)
    assert not _uses(job, "aws-actions/configure-aws-credentials")  # the offline plan needs no cloud


def test_pull_request_previews_every_stack_with_the_policy_pack_and_comments() -> None:
    job = _load("pull-request.yml")["jobs"]["preview"]
    assert _stacks(job) == SHIPPED_STACKS
    assert set(job["needs"]) == {"test", "plan"}
    assert job["permissions"]["id-token"] == "write"
    assert job["permissions"]["pull-requests"] == "write"
    assert "--write-policy-config build/policy-pack-config.${{ matrix.stack }}.json" in _runs(job)
    _assert_live_quotas_written_with_credentials_before_pulumi(job)
    [pulumi] = _uses(job, "pulumi/actions")
    settings = pulumi["with"]
    assert settings["command"] == "preview"
    assert settings["comment-on-pr"] is True
    assert settings["policyPacks"] == "policies"
    assert settings["policyPackConfigs"] == "build/policy-pack-config.${{ matrix.stack }}.json"
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    [aws] = _uses(job, "aws-actions/configure-aws-credentials")
    assert "role-to-assume" in aws["with"]


def test_main_deploys_dev_then_prod_behind_the_production_environment() -> None:
    workflow = _load("deploy.yml")
    assert _triggers(workflow)["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert jobs["up-dev"]["needs"] == "test"
    assert jobs["up-prod"]["needs"] == "up-dev"
    assert jobs["up-prod"]["environment"] == "production"
    for name, stack in (("up-dev", "dev"), ("up-prod", "prod")):
        [pulumi] = _uses(jobs[name], "pulumi/actions")
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == stack
        assert pulumi["with"]["policyPacks"] == "policies"
        assert pulumi["with"]["policyPackConfigs"] == f"build/policy-pack-config.{stack}.json"
        assert jobs[name]["permissions"]["id-token"] == "write"
        _assert_live_quotas_written_with_credentials_before_pulumi(jobs[name])
        assert "role-to-assume" in _uses(jobs[name], "aws-actions/configure-aws-credentials")[0]["with"]


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_actions_are_pinned_and_no_keys_are_stored(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    workflow = _load(name)
    for job in workflow["jobs"].values():
        for step in _steps(job):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", step["uses"]), step[
                    "uses"
                ]
    assert workflow["permissions"] == {"contents": "read"}
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "AKIA"):
        assert forbidden not in text


def test_workflows_install_the_pack_where_pulumipolicy_yaml_expects_it() -> None:
    pack = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    virtualenv = f"policies/{pack['runtime']['options']['virtualenv']}"
    for name, jobs in (("pull-request.yml", ["preview"]), ("deploy.yml", ["up-dev", "up-prod"])):
        for job in jobs:
            assert f"python -m venv {virtualenv} && {virtualenv}/bin/pip install" in _runs(
                _load(name)["jobs"][job]
            )
