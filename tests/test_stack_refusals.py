"""Every refusal issue 10 lists, with the exact message a user sees, from the stack core.

The stack core (``stackcore.load_stack``) is what ``python -m tools.plan`` and the program's
``config.py`` call; the last tests run the plan as a user would and check it exits 2 with the
message and no traceback. Settings go in as ``--set`` strings, as on the command line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest

from stackcore import StackConfigError, deployment, limits, load_stack

REPO = Path(__file__).resolve().parent.parent
FIX_PRIVATE_BLOCK = (
    "Fix: use a private block (10.0.0.0/8, 172.16.0.0/12 outside 172.17.0.0/16, or 192.168.0.0/16) "
    "such as 10.40.0.0/16"
)


def refusal(overrides: dict[str, str], stack: str = "prod", project: Path = REPO) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        load_stack(project, stack, overrides)
    return [str(p) for p in caught.value.problems]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi.yaml and prod stack file, to be broken by a test."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def append_to_prod(project: Path, text: str) -> int:
    """Append lines to Pulumi.prod.yaml; the line number of the first one."""
    stack_file = project / "Pulumi.prod.yaml"
    lines = stack_file.read_text().splitlines()
    stack_file.write_text("\n".join(lines) + "\n" + text)
    return len(lines) + 1


def test_the_shipped_stacks_are_accepted(demo_model_dir: Path) -> None:
    assert load_stack(REPO, "prod").max_instances == 6
    assert load_stack(REPO, "dev").instance_type == "ml.t2.medium"


# Keys Pulumi.yaml does not declare: refused, with the closest declared name.


def test_a_misspelt_key_in_the_stack_file_names_the_line_and_the_key_meant(project: Path) -> None:
    line = append_to_prod(project, "  xgboost-endpoint:alarmEmial: ops@example.com\n")
    assert refusal({}, project=project) == [
        f"xgboost-endpoint:alarmEmial (Pulumi.prod.yaml line {line}): is not declared in Pulumi.yaml, "
        "so the program would ignore it. Fix: did you mean alarmEmails? Rename it"
    ]


def test_a_misspelt_key_given_with_set_is_refused_too() -> None:
    assert refusal({"maxInstanse": "20"}) == [
        "xgboost-endpoint:maxInstanse (--set): is not declared in Pulumi.yaml, so the program would "
        "ignore it. Fix: did you mean maxInstances? Rename it"
    ]


def test_a_misspelt_singular_key_is_matched_to_the_plural(project: Path) -> None:
    line = append_to_prod(project, "  xgboost-endpoint:maxInstance: 20\n")
    assert refusal({}, project=project) == [
        f"xgboost-endpoint:maxInstance (Pulumi.prod.yaml line {line}): is not declared in Pulumi.yaml, "
        "so the program would ignore it. Fix: did you mean maxInstances? Rename it"
    ]


def test_a_misspelt_namespace_is_refused(project: Path) -> None:
    line = append_to_prod(project, "  xgboost-endpoit:maxInstances: 20\n")
    assert refusal({}, project=project) == [
        f"xgboost-endpoint:maxInstances (Pulumi.prod.yaml line {line}): 'xgboost-endpoit' is not the "
        "project's namespace 'xgboost-endpoint'. Fix: write it as xgboost-endpoint:maxInstances"
    ]


# YAML syntax errors: the file and the line.


def test_an_unclosed_bracket_names_the_file_and_where_it_opened(project: Path) -> None:
    line = append_to_prod(project, "  xgboost-endpoint:alarmEmails: [ops@example.com\n")
    assert refusal({}, project=project) == [
        f"Pulumi.prod.yaml line {line + 1}: YAML syntax error: expected ',' or ']', but got "
        f"'<stream end>' (while parsing a flow sequence on line {line}). Fix: correct the YAML there "
        "(indentation, a missing ':' or an unclosed quote or bracket)"
    ]


def test_a_bad_indentation_names_the_line(project: Path) -> None:
    line = append_to_prod(project, " xgboost-endpoint:maxInstances: 6\n")
    assert refusal({}, project=project) == [
        f"Pulumi.prod.yaml line {line}: YAML syntax error: expected <block end>, but found '<block "
        "mapping start>' (while parsing a block mapping on line 5). Fix: correct the YAML there "
        "(indentation, a missing ':' or an unclosed quote or bracket)"
    ]


def test_a_key_listed_twice_is_refused(project: Path) -> None:
    line = append_to_prod(project, "  xgboost-endpoint:maxInstances: 20\n")
    first = next(
        n
        for n, text in enumerate((project / "Pulumi.prod.yaml").read_text().splitlines(), start=1)
        if text.startswith("  xgboost-endpoint:maxInstances:")
    )
    assert refusal({}, project=project) == [
        f"Pulumi.prod.yaml line {line}: xgboost-endpoint:maxInstances is listed twice (also line "
        f"{first}); YAML keeps only the last. Fix: keep one of them"
    ]


# Wrong types, objects included.


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"maxInstances": "six"},
            "xgboost-endpoint:maxInstances: 'six' is not a whole number. Fix: set "
            "xgboost-endpoint:maxInstances to a whole number",
        ),
        (
            {"maxInstances": "6.5"},
            "xgboost-endpoint:maxInstances: '6.5' is not a whole number. Fix: set "
            "xgboost-endpoint:maxInstances to a whole number",
        ),
        (
            {"instanceType": '{"a": 1}'},
            'xgboost-endpoint:instanceType: expected a string, got an object {"a": 1}. Fix: set '
            "xgboost-endpoint:instanceType to an instance type",
        ),
        (
            {"vpcCidr": '["10.0.0.0/16"]'},
            'xgboost-endpoint:vpcCidr: expected a string, got a list ["10.0.0.0/16"]. Fix: set '
            "xgboost-endpoint:vpcCidr to an IPv4 block",
        ),
        (
            {"alarmEmails": '{"x": 1}'},
            'xgboost-endpoint:alarmEmails: expected a list of strings, got an object {"x": 1}. Fix: set '
            "xgboost-endpoint:alarmEmails to a list of e-mail addresses",
        ),
        (
            {"minInstances": '{"a": 1}'},
            'xgboost-endpoint:minInstances: an object {"a": 1} is not a whole number. Fix: set '
            "xgboost-endpoint:minInstances to a whole number",
        ),
        (
            {"autoscaling": "yes"},
            "xgboost-endpoint:autoscaling: 'yes' is not true or false. Fix: set "
            "xgboost-endpoint:autoscaling to true or false",
        ),
    ],
)
def test_a_wrong_type_names_the_key_and_the_type_wanted(overrides: dict[str, str], message: str) -> None:
    assert refusal(overrides) == [message]


def test_the_providers_keys_are_typed_too() -> None:
    assert refusal({"aws:region": '["eu-west-1"]'}) == [
        'aws:region: expected a string, got a list ["eu-west-1"]. Fix: set aws:region to a Region where '
        "SageMaker runs, such as eu-west-1"
    ]
    assert refusal({"aws:defaultTags": '{"tags": {"environment": 1}}'}) == [
        'aws:defaultTags: expected an object with tags: {name: value}, got an object {"tags": '
        '{"environment": 1}}. Fix: write aws:defaultTags as tags: with one string value per tag name'
    ]


def test_a_region_sagemaker_does_not_run_in_is_refused() -> None:
    assert refusal({"aws:region": "eu-west-9"}) == [
        "aws:region: 'eu-west-9' is not a Region where SageMaker runs. Fix: set aws:region to a Region "
        "where SageMaker runs, such as eu-west-1"
    ]


# Quotas written as strings.


def test_a_quota_written_as_a_string_says_to_drop_the_quotes(project: Path) -> None:
    text = (project / "Pulumi.prod.yaml").read_text().replace("ml.c5.xlarge: 12", 'ml.c5.xlarge: "12"')
    (project / "Pulumi.prod.yaml").write_text(text)
    assert refusal({}, project=project) == [
        "xgboost-endpoint:endpointInstanceQuotas: the quota for ml.c5.xlarge must be a whole number >= 0, "
        "got '12' (a string: drop the quotes). Fix: set xgboost-endpoint:endpointInstanceQuotas to an "
        "object of instance type -> whole number"
    ]


def test_a_quota_table_written_as_one_string_is_refused() -> None:
    assert refusal({"endpointInstanceQuotas": "ml.c5.xlarge: 12"}) == [
        "xgboost-endpoint:endpointInstanceQuotas: expected an object of instance type -> count, got "
        "'ml.c5.xlarge: 12'. Fix: set xgboost-endpoint:endpointInstanceQuotas to an object of instance "
        "type -> whole number"
    ]


def test_a_total_quota_in_words_is_refused() -> None:
    assert refusal({"totalInstanceQuota": "fourteen"}) == [
        "xgboost-endpoint:totalInstanceQuota: 'fourteen' is not a whole number. Fix: set "
        "xgboost-endpoint:totalInstanceQuota to a whole number"
    ]


# Availability Zones.


def test_a_zone_of_another_region_is_refused() -> None:
    assert refusal({"availabilityZones": '["us-east-1a", "eu-west-1b", "eu-west-1c"]'}) == [
        "xgboost-endpoint:availabilityZones: us-east-1a is not in the stack's region eu-west-1. Fix: "
        "list zones of eu-west-1 (aws:region), such as eu-west-1a"
    ]


def test_a_zone_that_does_not_exist_is_refused() -> None:
    assert refusal({"availabilityZones": '["eu-west-1a", "eu-west-1b", "eu-west-1d"]'}) == [
        "xgboost-endpoint:availabilityZones: eu-west-1d does not exist (eu-west-1 has zones eu-west-1a, "
        "eu-west-1b, eu-west-1c). Fix: list zones of eu-west-1 (aws:region), such as eu-west-1a"
    ]


def test_a_string_that_is_no_zone_name_is_refused() -> None:
    assert refusal({"availabilityZones": '["west-1a", "eu-west-1b"]'}) == [
        "xgboost-endpoint:availabilityZones: ['west-1a'] are not zone names. Fix: list zones such as "
        "eu-west-1a"
    ]


def test_more_zones_than_the_region_has_is_refused() -> None:
    assert refusal({"azCount": "5"}) == [
        "xgboost-endpoint:azCount: 5 zones, but eu-west-1 has 3. Fix: set azCount to 3 or less"
    ]


# Reserved address ranges.


@pytest.mark.parametrize(
    ("cidr", "reserved", "why"),
    [
        ("127.0.0.0/16", "127.0.0.0/8", "loopback"),
        ("224.0.0.0/16", "224.0.0.0/4", "multicast"),
        ("169.254.0.0/16", "169.254.0.0/16", "link-local (the instance metadata service)"),
        (
            "172.17.0.0/16",
            "172.17.0.0/16",
            "the Docker bridge network, which AWS warns SageMaker containers conflict with",
        ),
        (
            "172.17.128.0/20",
            "172.17.0.0/16",
            "the Docker bridge network, which AWS warns SageMaker containers conflict with",
        ),
    ],
)
def test_a_vpc_in_a_reserved_range_is_refused(cidr: str, reserved: str, why: str) -> None:
    assert refusal({"vpcCidr": cidr}) == [
        f"xgboost-endpoint:vpcCidr: {cidr} overlaps {reserved}, {why}. {FIX_PRIVATE_BLOCK}"
    ]


def test_the_private_block_next_to_dockers_is_accepted() -> None:
    assert load_stack(REPO, "prod", {"vpcCidr": "172.18.0.0/16"}).vpc_cidr == "172.18.0.0/16"


# Numbers past what the AWS APIs take.


@pytest.mark.parametrize(
    ("key", "api"),
    [
        ("maxInstances", "Application Auto Scaling RegisterScalableTarget (MaxCapacity)"),
        ("apiRateLimit", "API Gateway throttling (rateLimit)"),
        ("apiQuotaPerDay", "API Gateway CreateUsagePlan (quota limit)"),
        ("scaleInCooldownSeconds", "Application Auto Scaling PutScalingPolicy (ScaleInCooldown)"),
    ],
)
def test_an_integer_past_the_32_bit_apis_is_refused_alone(key: str, api: str) -> None:
    # Only the bound is reported: the rules that would combine the figure are not run on it.
    assert refusal({key: str(2**31)}) == [
        f"xgboost-endpoint:{key}: 2147483648 is more than {api} takes (2147483647). Fix: choose at most "
        "2147483647"
    ]


def test_an_execution_timeout_past_sagemakers_bound_is_refused() -> None:
    assert refusal({"maximumExecutionTimeoutSeconds": "28801"}) == [
        "xgboost-endpoint:maximumExecutionTimeoutSeconds: 28801 s. Fix: choose 600-28800"
    ]


def test_the_bounds_agree_with_botocores_service_models() -> None:
    session = botocore.session.get_session()
    sagemaker = session.get_service_model("sagemaker")
    timeout = sagemaker.shape_for("MaximumExecutionTimeoutInSeconds").metadata
    wait = sagemaker.shape_for("WaitIntervalInSeconds").metadata
    termination = sagemaker.shape_for("TerminationWaitInSeconds").metadata
    assert (timeout["min"], timeout["max"]) == deployment.MAXIMUM_EXECUTION_TIMEOUT_SECONDS
    assert deployment.WAIT_SECONDS == (wait["min"], wait["max"]) == (termination["min"], termination["max"])
    scalable = session.get_service_model("application-autoscaling").operation_model("RegisterScalableTarget")
    # Unbounded in the model: a Java int in the service, hence the 32-bit bound.
    assert "max" not in scalable.input_shape.members["MaxCapacity"].metadata
    assert limits.UPPER_BOUNDS["maxInstances"][0] == limits.INT32_MAX
    memory = session.get_service_model("lambda").shape_for("MemorySize").metadata
    assert memory["min"] == limits.LAMBDA_MEMORY_MB[0]
    assert limits.LAMBDA_MEMORY_MB[1] <= memory["max"]


# Combined figures reported under the key that is wrong.


def test_max_below_min_is_reported_under_max() -> None:
    with pytest.raises(StackConfigError) as caught:
        load_stack(REPO, "prod", {"maxInstances": "2"})
    assert caught.value.keys == ("maxInstances",)
    assert [str(p) for p in caught.value.problems] == [
        "xgboost-endpoint:maxInstances: autoscaling maximum 2 is below minInstances 3. Fix: set "
        "maxInstances to 3 or more (or lower minInstances)"
    ]


def test_a_zero_scaling_target_is_refused_with_autoscaling_off_too() -> None:
    assert refusal({"autoscaling": "false", "invocationsPerInstanceTarget": "0"}) == [
        "xgboost-endpoint:invocationsPerInstanceTarget: 0: the scaling target (invocations per instance "
        "per minute) must be positive, with or without autoscaling (the invocations alarm uses it). Fix: "
        "set it to the measured max RPS x 0.5 x 60 (make capacity derives it)"
    ]


def test_an_environment_the_pack_would_judge_otherwise_is_refused() -> None:
    assert refusal({"environment": "dev"}) == [
        "xgboost-endpoint:environment: dev, but the AWS provider's default tag environment is 'prod', so "
        "the policy pack would judge the stack production: one layer would apply the production rules "
        "and the other not. Fix: set aws:defaultTags.tags.environment to dev"
    ]


# The plan, run as a user runs it: exit 2, the message, no traceback.


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plan_exits_2_on_a_misspelt_set_without_a_traceback() -> None:
    result = run_plan("--stack", "prod", "--set", "maxInstanse=20")
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "did you mean maxInstances? Rename it" in result.stdout


def test_plan_exits_2_on_broken_yaml_without_a_traceback(project: Path) -> None:
    line = append_to_prod(project, "  xgboost-endpoint:alarmEmails: [ops@example.com\n")
    result = run_plan("--stack", "prod", "--project-dir", str(project))
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert f"Pulumi.prod.yaml line {line + 1}: YAML syntax error" in result.stdout


def test_plan_exits_2_on_an_object_where_a_string_is_due_without_a_traceback() -> None:
    # Found by the program's own config.py under mocks: the same stack core, the same message.
    result = run_plan("--stack", "prod", "--set", 'instanceType={"a": 1}')
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert 'xgboost-endpoint:instanceType: expected a string, got an object {"a": 1}' in result.stdout
