"""The pack as the Pulumi CLI runs it: ``policies/__main__.py`` started with ``policies/`` as its
working directory, spoken to over the analyzer gRPC protocol the engine uses. Its diagnostics
must match the in-process runner's violations on the same graph, so the offline plan and
``pulumi preview --policy-pack`` can never disagree."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from policy_graphs import HAPPY_QUOTAS, happy_graph, mutate, relink, remove
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, plugin_pb2
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from lib.graph import RecordedResource, ResourceGraph
from policies.catalog import policy_names
from policies.runner import run_pack

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"
READY_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # __main__ must find the repo itself
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=POLICIES_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
            if not readable or process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr and process.poll() is not None else ""
                pytest.fail(f"the policy pack did not print its port within {READY_TIMEOUT} s: {err}")
            line += os.read(process.stdout.fileno(), 64)
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line.strip())}")
        grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def _properties(resource: RecordedResource) -> struct_pb2.Struct:
    # What the engine sends in a preview: an input fed by another resource and not known yet is
    # the "unknown" sentinel.
    values = dict(resource.inputs)
    for key, urns in resource.property_dependencies.items():
        if urns and values.get(key) is None:
            values[key] = UNKNOWN_STRING_VALUE
    return _struct(values)


def _stack_request(graph: ResourceGraph) -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=_properties(r),
                urn=r.urn,
                name=r.name,
                options=analyzer_pb2.AnalyzerResourceOptions(),
                parent=r.parent or "",
                dependencies=list(r.dependencies),
                propertyDependencies={
                    k: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(v))
                    for k, v in r.property_dependencies.items()
                },
            )
            for r in graph.resources
        ]
    )


def _configure(
    stub: analyzer_pb2_grpc.AnalyzerStub,
    quota_level: analyzer_pb2.EnforcementLevel.ValueType = analyzer_pb2.MANDATORY,
) -> None:
    stub.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                "sagemaker-endpoint-instance-quota": analyzer_pb2.PolicyConfig(
                    enforcementLevel=quota_level, properties=_struct(dict(HAPPY_QUOTAS))
                )
            }
        )
    )


def _diagnostics(
    stub: analyzer_pb2_grpc.AnalyzerStub, graph: ResourceGraph
) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    found = list(stub.AnalyzeStack(_stack_request(graph)).diagnostics)
    for resource in graph.resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=_properties(resource),
            urn=resource.urn,
            name=resource.name,
            options=analyzer_pb2.AnalyzerResourceOptions(),
        )
        found.extend(stub.Analyze(request).diagnostics)
    return found


def test_cli_entry_point_serves_every_policy_with_its_schema(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "xgboost-endpoint-guardrails"
    assert [p.name for p in info.policies] == policy_names()
    quota = next(p for p in info.policies if p.name == "sagemaker-endpoint-instance-quota")
    assert quota.enforcementLevel == analyzer_pb2.MANDATORY
    assert quota.configSchema.properties["totalInstanceQuota"]["default"] == 2
    assert analyzer.GetPluginInfo(empty_pb2.Empty()) != plugin_pb2.PluginInfo()


def test_happy_graph_gets_no_diagnostics_under_the_cli_protocol(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    _configure(analyzer)
    assert [d.message for d in _diagnostics(analyzer, happy_graph())] == []


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda g: remove(g, "serving-key"), id="no-kms-key"),
        pytest.param(
            lambda g: mutate(g, "serving-scaling-target", lambda i: i.update(maxCapacity=7.0)),
            id="over-quota",
        ),
        pytest.param(
            lambda g: mutate(
                g, "serving-config", lambda i: i["productionVariants"][0].update(instanceType="ml.t2.medium")
            ),
            id="burstable-in-prod",
        ),
        pytest.param(
            lambda g: mutate(g, "image-repo", lambda i: i.pop("imageScanningConfiguration")), id="no-scan"
        ),
        pytest.param(
            lambda g: mutate(
                g,
                "api-handler-invoke",
                lambda i: i.update(
                    policy=json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}})
                ),
            ),
            id="s3-on-wildcard",
        ),
        pytest.param(
            lambda g: mutate(g, "net-vpce-sg", lambda i: i["ingress"][0].update(cidrBlocks=["0.0.0.0/0"])),
            id="open-ingress",
        ),
        pytest.param(lambda g: mutate(g, "net-s3", lambda i: i.pop("policy")), id="endpoint-without-policy"),
        pytest.param(
            lambda g: mutate(g, "artifact-public-access", lambda i: i.update(blockPublicPolicy=False)),
            id="public-policy-allowed",
        ),
        pytest.param(lambda g: remove(g, "artifact-encryption"), id="bucket-without-kms"),
        pytest.param(
            lambda g: mutate(g, "alarm-topic", lambda i: i.update(kmsMasterKeyId="alias/aws/sns")),
            id="topic-with-aws-key",
        ),
        pytest.param(
            lambda g: relink(
                mutate(g, "api-handler-logs-group", lambda i: i.pop("kmsKeyId")),
                "api-handler-logs-group",
                "kmsKeyId",
            ),
            id="logs-without-key",
        ),
    ],
)
def test_cli_diagnostics_match_the_offline_runner(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, broken: Any
) -> None:
    _configure(analyzer)
    graph = broken(happy_graph())
    over_grpc = sorted((d.policyName, d.message.split("\n", 1)[1]) for d in _diagnostics(analyzer, graph))
    in_process = sorted(
        (v.policy, v.message)
        for v in run_pack(graph, {"sagemaker-endpoint-instance-quota": dict(HAPPY_QUOTAS)}).violations
    )
    assert over_grpc
    assert over_grpc == in_process


def test_enforcement_level_from_the_cli_config_is_applied(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    _configure(analyzer, quota_level=analyzer_pb2.ADVISORY)
    graph = mutate(happy_graph(), "serving-scaling-target", lambda i: i.update(maxCapacity=7.0))
    levels = {d.enforcementLevel for d in analyzer.AnalyzeStack(_stack_request(graph)).diagnostics}
    assert levels == {analyzer_pb2.ADVISORY}
