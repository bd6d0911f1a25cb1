"""Stack settings: read from Pulumi.yaml / Pulumi.<stack>.yaml, printed in the program's keys."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from stackcore import fleet
from tools.capacity import sizing, stack

REPO_ROOT = Path(__file__).resolve().parents[2]

PROJECT_YAML = """\
name: demo-project
runtime: python
config:
  instanceType:
    type: string
    default: ml.c5.large
  azCount:
    type: integer
    default: 3
  updateMode:
    type: string
    default: blue-green
  endpointInstanceQuotas:
    type: object
    default:
      ml.t2.medium: 2
  totalInstanceQuota:
    type: integer
    default: 2
"""


def autoscaled() -> sizing.FleetSettings:
    return sizing.derive_fleet(instance_rps=200.0, instance_type="ml.c5.xlarge", base_rps=500, peak_rps=1500)


def test_stack_values_overlay_the_project_defaults(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text(PROJECT_YAML)
    (tmp_path / "Pulumi.prod.yaml").write_text(
        textwrap.dedent(
            """\
            config:
              aws:region: eu-west-1
              demo-project:instanceType: ml.c5.2xlarge
              demo-project:updateMode: rolling
              demo-project:endpointInstanceQuotas:
                ml.c5.2xlarge: 12
              demo-project:totalInstanceQuota: 14
            """
        )
    )
    context = stack.read_stack(tmp_path, "prod")
    assert context.project == "demo-project"
    assert context.stack_file_found
    assert context.get("instanceType") == "ml.c5.2xlarge"
    assert context.get("azCount") == 3  # the project's default
    assert context.get("region") is None  # another namespace's key is not the project's
    assert context.update_mode is fleet.UpdateMode.ROLLING
    assert context.quotas.for_type("ml.c5.2xlarge") == 12
    assert context.quotas.total_instances == 14


def test_quotas_written_as_pulumi_config_set_stores_them_are_read_as_the_program_reads_them(tmp_path: Path):
    # `pulumi config set --path` aside, an object set from the CLI is stored as a JSON string.
    (tmp_path / "Pulumi.yaml").write_text(PROJECT_YAML)
    (tmp_path / "Pulumi.prod.yaml").write_text(
        textwrap.dedent(
            """\
            config:
              demo-project:endpointInstanceQuotas: '{"ml.c5.2xlarge": 12}'
              demo-project:totalInstanceQuota: "14"
            """
        )
    )
    context = stack.read_stack(tmp_path, "prod")
    assert context.quotas.for_type("ml.c5.2xlarge") == 12
    assert context.quotas.total_instances == 14


def test_a_stack_without_its_file_gets_the_project_defaults(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text(PROJECT_YAML)
    context = stack.read_stack(tmp_path, "staging")
    assert not context.stack_file_found
    assert context.get("instanceType") == "ml.c5.large"
    assert context.quotas == fleet.QuotaTable(per_instance_type={"ml.t2.medium": 2}, total_instances=2)


def test_no_project_file_means_a_new_accounts_quotas(tmp_path: Path):
    context = stack.read_stack(tmp_path, "prod")
    assert context.project == stack.DEFAULT_PROJECT
    assert context.quotas == fleet.NEW_ACCOUNT_QUOTAS


def test_unreadable_stack_file_names_the_file(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text(PROJECT_YAML)
    (tmp_path / "Pulumi.prod.yaml").write_text("config: [unclosed\n")
    with pytest.raises(stack.StackConfigError, match=r"Pulumi\.prod\.yaml"):
        stack.read_stack(tmp_path, "prod")


def test_autoscaled_settings_start_the_fleet_at_its_minimum():
    values = stack.stack_settings(autoscaled(), "ml.c5.xlarge")
    assert values == {
        "instanceType": "ml.c5.xlarge",
        "azCount": 3,
        "expectedBaseRps": 500,
        "expectedPeakRps": 1500,
        "autoscaling": True,
        "initialInstanceCount": 6,
        "minInstances": 6,
        "maxInstances": 15,
        "invocationsPerInstanceTarget": 6000,
    }


def test_burstable_type_gets_a_fixed_fleet_and_no_scaling_settings():
    settings = sizing.derive_fleet(instance_rps=50.0, instance_type="ml.t2.medium", peak_rps=100, az_count=2)
    values = stack.stack_settings(settings, "ml.t2.medium")
    assert values == {
        "instanceType": "ml.t2.medium",
        "azCount": 2,
        "expectedPeakRps": 100,
        "autoscaling": False,
        "initialInstanceCount": 6,
    }


def test_every_key_the_tool_prints_is_declared_in_the_programs_pulumi_yaml():
    declared = stack.read_stack(REPO_ROOT, "prod").declared_keys
    burstable = sizing.derive_fleet(instance_rps=50.0, instance_type="ml.t2.medium", peak_rps=100)
    printed = set(stack.stack_settings(autoscaled(), "ml.c5.xlarge")) | set(
        stack.stack_settings(burstable, "ml.t2.medium")
    )
    assert printed <= declared, f"not in Pulumi.yaml: {sorted(printed - declared)}"


def test_stack_yaml_lines_parse_back_to_the_same_typed_values():
    values = stack.stack_settings(autoscaled(), "ml.c5.xlarge")
    parsed = yaml.safe_load(stack.stack_yaml(values, "xgboost-endpoint"))["config"]
    assert parsed == {f"xgboost-endpoint:{key}": value for key, value in values.items()}


def test_config_set_commands_keep_numbers_and_booleans_typed():
    commands = stack.config_set_commands(
        {"instanceType": "ml.c5.xlarge", "autoscaling": True, "maxInstances": 15}, "prod"
    ).splitlines()
    assert commands == [
        "pulumi config set --stack prod instanceType ml.c5.xlarge",
        "pulumi config set --stack prod --type bool autoscaling true",
        "pulumi config set --stack prod --type int maxInstances 15",
    ]


def test_printed_settings_pasted_into_prod_pass_the_programs_validation_and_the_policy_pack():
    # Imported here: evaluating the program loads pulumi_aws (seconds), only this test needs it.
    from lib.evaluate import evaluate_stack  # noqa: PLC0415
    from policies.runner import run_pack  # noqa: PLC0415
    from tools.plan import stack_pack_config  # noqa: PLC0415

    # 200 req/s an instance: target 6000/min; base 300 -> 2 at 160 req/s -> 3 over 3 AZs; peak 600 -> 6.
    settings = sizing.derive_fleet(
        instance_rps=200.0, instance_type="ml.c5.xlarge", base_rps=300, peak_rps=600, az_count=3
    )
    # 8 users in flight at the capacity (100 req/s) on 2 local cores, x2 to the 4 vCPUs: 16 at
    # most; 2 in flight at 50 req/s, the target's throughput (100 x 0.5): 2 x 2 = 4.
    capacity = sizing.StepResult(
        users=8, seconds=10, requests=1000, errors=0, p50_ms=60, p95_ms=80, p99_ms=90
    )
    half = sizing.StepResult(users=2, seconds=10, requests=500, errors=0, p50_ms=30, p95_ms=40, p99_ms=50)
    concurrency = sizing.derive_concurrency(
        [half, capacity], capacity, scaling_factor=2.0, p99_objective_ms=100
    )
    pasted = yaml.safe_load(
        stack.stack_yaml(stack.stack_settings(settings, "ml.c5.xlarge", concurrency), "xgboost-endpoint")
    )
    graph = evaluate_stack("prod", config_overrides=pasted["config"])

    report = run_pack(graph, stack_pack_config("prod", overrides=pasted["config"]))
    assert report.passed, [str(violation) for violation in report.violations]
    (target,) = graph.of_type("aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (3, 6)
    # prod scales on both metrics: the run gives both targets
    tracking = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]: p.inputs["targetTrackingScalingPolicyConfiguration"]["targetValue"]
        for p in graph.of_type("aws:appautoscaling/policy:Policy")
    }
    assert tracking == {
        "SageMakerVariantInvocationsPerInstance": 6000,
        "SageMakerVariantConcurrentRequestsPerModelHighResolution": 4,
    }
