"""The offline plan command: what it prints and its exit codes (the program's evaluation is stubbed
here with the happy graph; test_policy_shipped_stacks.py runs it on the real program)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from policy_graphs import happy_graph, mutate

from lib.graph import ResourceGraph
from tools import plan

PROJECT_YAML = """\
name: xgboost-endpoint
runtime: python
config:
  endpointInstanceQuotas:
    type: object
    default:
      ml.t2.medium: 2
  totalInstanceQuota:
    type: integer
    default: 2
"""
PROD_YAML = """\
config:
  aws:region: eu-west-1
  xgboost-endpoint:endpointInstanceQuotas:
    ml.c5.large: 12
  xgboost-endpoint:totalInstanceQuota: 12
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(PROJECT_YAML)
    (tmp_path / "Pulumi.prod.yaml").write_text(PROD_YAML)
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    return tmp_path


def _plan(
    monkeypatch: pytest.MonkeyPatch, project: Path, graph: ResourceGraph, *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(plan, "_evaluate", lambda stack, project_dir, overrides: graph)
    out = io.StringIO()
    code = plan.main(["--stack", graph.stack, "--project-dir", str(project), *args], out=out)
    return code, out.getvalue()


def test_passing_stack_prints_tree_fleet_subnets_and_policies_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    code, out = _plan(monkeypatch, project, happy_graph())
    assert code == 0
    assert "aws:sagemaker/endpoint:Endpoint  serving-endpoint" in out
    assert (
        "serving-endpoint/AllTraffic: ml.c5.large, min 3 / initial 3 / max 6, update blue-green, peak 12, "
        "quota 'ml.c5.large for endpoint usage' 12/12"
    ) in out
    assert "quota 'Number of instances across active endpoints' 12/12" in out
    # 4 of the 12 per subnet: 8 addresses + 1 VPC endpoint ENI, +10% headroom, + 5 reserved = 15.
    assert "net-private-a: 10.0.0.0/24 in eu-west-1a, size 256, 4 peak instance(s), 1 other ENI(s)" in out
    assert "-> needs 15: fits" in out
    assert "[passed] sagemaker-endpoint-instance-quota (mandatory)" in out
    assert "PASSED: 0 mandatory violation(s), 0 advisory, stack 'prod'" in out


def test_tree_indents_children_under_their_parent(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    graph = happy_graph()
    component = replace(
        graph.named("net-vpc"), type="xgboost-endpoint:network:Network", name="network", urn="urn:c"
    )
    resources = tuple(replace(r, parent="urn:c") if r.name.startswith("net-") else r for r in graph.resources)
    _, out = _plan(monkeypatch, project, replace(graph, resources=(component, *resources)))
    tree = out.split("\n\n")[1].splitlines()
    component = tree.index("  xgboost-endpoint:network:Network  network")
    children = [line for line in tree[component + 1 :] if line.startswith("    ")]
    assert "    aws:ec2/vpc:Vpc  net-vpc" in children
    names = [line.split()[-1] for line in children]
    assert names == sorted(names)  # stable: by name (stable_order)


def test_mandatory_violation_exits_1_with_the_message(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    graph = mutate(happy_graph(), "serving-scaling-target", lambda i: i.update(maxCapacity=7.0))
    code, out = _plan(monkeypatch, project, graph)
    assert code == 1
    assert "[FAILED] sagemaker-endpoint-instance-quota (mandatory)" in out
    assert "request an increase of 2 (to 14)" in out
    assert "FAILED: 2 mandatory violation(s)" in out


def test_advisory_override_from_a_policy_config_file_exits_0(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    graph = mutate(happy_graph(), "serving-scaling-target", lambda i: i.update(maxCapacity=7.0))
    extra = tmp_path / "pack.json"
    extra.write_text(json.dumps({"sagemaker-endpoint-instance-quota": "advisory"}))
    code, out = _plan(monkeypatch, project, graph, "--policy-config", str(extra))
    assert code == 0
    assert "[warning] sagemaker-endpoint-instance-quota (advisory)" in out


def test_bad_pack_config_exits_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "pack.json"
    extra.write_text(json.dumps({"ec2-subnet-endpoint-addresses": {"headroomPercent": "ten"}}))
    code, out = _plan(monkeypatch, project, happy_graph(), "--policy-config", str(extra))
    assert code == 2
    assert (
        "policy-pack configuration error: policy-pack config 'ec2-subnet-endpoint-addresses.headroomPercent'"
        in out
    )


def test_malformed_set_exits_2(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    code, out = _plan(monkeypatch, project, happy_graph(), "--set", "maxInstances")
    assert code == 2
    assert "write KEY=VALUE" in out


def test_dev_stack_without_declared_quotas_is_held_to_a_new_accounts(
    monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    code, out = _plan(monkeypatch, project, happy_graph("dev"))
    assert code == 1
    assert "'ml.c5.large for endpoint usage' of 0" in out


def test_write_policy_config_writes_the_stacks_quotas(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "prod.json"
    out = io.StringIO()
    code = plan.main(
        ["--stack", "prod", "--project-dir", str(project), "--write-policy-config", str(target)], out=out
    )
    assert code == 0
    assert json.loads(target.read_text()) == {
        "sagemaker-endpoint-instance-quota": {
            "endpointInstanceQuotas": {"ml.c5.large": 12},
            "totalInstanceQuota": 12,
        }
    }


def test_write_policy_config_takes_defaults_and_overrides(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "dev.json"
    args = ["--stack", "dev", "--project-dir", str(project), "--write-policy-config", str(target)]
    assert plan.main([*args, "--set", "totalInstanceQuota=3"], out=io.StringIO()) == 0
    assert json.loads(target.read_text()) == {
        "sagemaker-endpoint-instance-quota": {
            "endpointInstanceQuotas": {"ml.t2.medium": 2},
            "totalInstanceQuota": 3,
        }
    }


def test_unknown_stack_exits_2(project: Path) -> None:
    out = io.StringIO()
    assert plan.main(["--stack", "staging", "--project-dir", str(project)], out=out) == 2
    assert "no stack file Pulumi.staging.yaml" in out.getvalue()


# --live-quotas: the account's quotas from Service Quotas, stubbed with botocore's Stubber.


def _quota(name: str, value: float) -> dict[str, Any]:
    return {
        "ServiceCode": "sagemaker",
        "ServiceName": "Amazon SageMaker",
        "QuotaCode": "L-" + format(abs(hash(name)) % 10**8, "08d"),
        "QuotaName": name,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


@pytest.fixture
def quotas_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client(
        "service-quotas",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    monkeypatch.setattr(plan, "_service_quotas_client", lambda region: client)
    with stubber:
        yield stubber


def test_live_quotas_replace_the_declared_ones(project: Path, tmp_path: Path, quotas_client: Stubber) -> None:
    quotas_client.add_response(
        "list_service_quotas",
        {
            "Quotas": [
                _quota("ml.c5.large for endpoint usage", 8.0),
                _quota("ml.g4dn.xlarge for endpoint usage", 2.0),
            ],
            "NextToken": "page-2",
        },
        {"ServiceCode": "sagemaker"},
    )
    quotas_client.add_response(
        "list_service_quotas",
        {
            "Quotas": [
                _quota("Number of instances across active endpoints", 20.0),
                _quota("Number of domains", 1.0),
            ]
        },
        {"ServiceCode": "sagemaker", "NextToken": "page-2"},
    )
    target = tmp_path / "prod.json"
    out = io.StringIO()
    args = [
        "--stack",
        "prod",
        "--project-dir",
        str(project),
        "--live-quotas",
        "--write-policy-config",
        str(target),
    ]
    assert plan.main(args, out=out) == 0
    assert json.loads(target.read_text()) == {
        "sagemaker-endpoint-instance-quota": {
            "endpointInstanceQuotas": {"ml.c5.large": 8, "ml.g4dn.xlarge": 2},
            "totalInstanceQuota": 20,
        }
    }
    assert (
        "live quota 'ml.c5.large for endpoint usage' is 8, the stack declares 12: using 8" in out.getvalue()
    )
    quotas_client.assert_no_pending_responses()


def test_live_quotas_without_permission_exit_2(project: Path, quotas_client: Stubber) -> None:
    quotas_client.add_client_error(
        "list_service_quotas", service_error_code="AccessDeniedException", service_message="not allowed"
    )
    out = io.StringIO()
    assert plan.main(["--stack", "prod", "--project-dir", str(project), "--live-quotas"], out=out) == 2
    assert "cannot read the live quotas" in out.getvalue()
    assert "run without --live-quotas" in out.getvalue()


def test_unreadable_policy_config_file_exits_2(
    monkeypatch: pytest.MonkeyPatch, project: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "pack.json"
    broken.write_text("{not json")
    code, out = _plan(monkeypatch, project, happy_graph(), "--policy-config", str(broken))
    assert code == 2
    assert f"cannot read {broken}" in out
