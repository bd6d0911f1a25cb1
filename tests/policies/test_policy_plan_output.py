"""The plan's output is stable (the same input, byte-identical output) and says which production
policies do not apply outside production."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from policy_graphs import happy_graph, mutate

from lib.graph import ResourceGraph
from tools import plan

PRODUCTION_ONLY = (
    "sagemaker-variant-instance-count-az",
    "sagemaker-variant-instance-type-burstable",
    "sagemaker-endpoint-deployment-rollback",
)


def _plan_of(monkeypatch: pytest.MonkeyPatch, graph: ResourceGraph) -> tuple[int, str]:
    monkeypatch.setattr(plan, "_evaluate", lambda stack, project_dir, overrides: graph)
    out = io.StringIO()
    code = plan.main(["--stack", graph.stack], out=out)
    return code, out.getvalue()


def test_the_order_resources_register_in_does_not_change_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # A failing graph, so that several violations have an order to keep too.
    graph = mutate(happy_graph(), "serving-scaling-target", lambda i: i.update(maxCapacity=20.0))
    backwards = replace(graph, resources=tuple(reversed(graph.resources)))
    code, forwards_out = _plan_of(monkeypatch, graph)
    assert code == plan.EXIT_VIOLATION
    assert _plan_of(monkeypatch, backwards) == (code, forwards_out)


def test_planning_prod_twice_gives_byte_identical_output() -> None:
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        assert plan.main(["--stack", "prod"], out=out) == plan.EXIT_OK
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    for policy in PRODUCTION_ONLY:
        assert f"  [passed] {policy} (mandatory)\n" in outputs[0]


@pytest.mark.usefixtures("demo_model_dir")  # dev packs the demo model
def test_production_policies_show_as_not_applicable_in_dev() -> None:
    out = io.StringIO()
    assert plan.main(["--stack", "dev"], out=out) == plan.EXIT_OK
    text = out.getvalue()
    for policy in PRODUCTION_ONLY:
        assert f"  [not applicable] {policy} (mandatory)\n      (not a production stack)\n" in text
    assert "PASSED: 0 mandatory violation(s), 0 advisory, stack 'dev'" in text
