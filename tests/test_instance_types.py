"""The stack core's instance-type table: complete against botocore, and the facts callers read."""

from __future__ import annotations

import re

import pytest

from stackcore import instance_types
from stackcore.burstable import burstable_credits, credit_table
from stackcore.instance_types import (
    UnknownInstanceTypeError,
    all_instance_types,
    hosting_instance_types,
    instance_type,
)


def test_every_type_botocore_lists_has_vcpus_and_memory():
    # Fails when a botocore upgrade adds a hosting type: add its row to stackcore/instance_type_table.py.
    missing = sorted(hosting_instance_types() - {t.name for t in instance_types.all_instance_types()})
    assert missing == []


def test_the_table_lists_nothing_sagemaker_does_not_host():
    extra = sorted({t.name for t in instance_types.all_instance_types()} - hosting_instance_types())
    assert extra == []


def test_figures_are_plausible_for_every_type():
    for t in instance_types.all_instance_types():
        assert t.vcpus >= 1, t.name
        assert 1 <= t.memory_gib / t.vcpus <= 32, t.name


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib"),
    [
        ("ml.t2.medium", 2, 4),
        ("ml.c5.xlarge", 4, 8),
        ("ml.c4.8xlarge", 36, 60),
        ("ml.m4.10xlarge", 40, 160),
        ("ml.inf2.48xlarge", 192, 768),
        ("ml.p5.48xlarge", 192, 2048),
        ("ml.p6e-gb200.36xlarge", 144, 960),
        ("ml.g7e.2xlarge", 8, 64),
    ],
)
def test_rare_and_common_types_have_ec2s_figures(name, vcpus, memory_gib):
    found = instance_type(name)
    assert (found.vcpus, found.memory_gib) == (vcpus, memory_gib)


def test_facts_of_a_type():
    assert instance_type("ml.t2.medium").burstable
    assert instance_type("ml.c7g.large").arm
    assert instance_type("ml.g5.xlarge").local_nvme
    assert instance_type("ml.g5.xlarge").gpu
    assert not instance_type("ml.c5.xlarge").local_nvme


def test_burstable_means_the_t_families_only():
    # Trainium (trn1, trn2) starts with a t too and is not burstable: it must be autoscalable.
    from stackcore.instance_type_table import ROWS  # noqa: PLC0415

    burstable = {name for name, *_, is_burstable, _arm, _nvme, _checked in ROWS if is_burstable}
    assert burstable == {name for name, *_ in ROWS if re.match(r"^ml\.t\d", name)}
    assert not instance_type("ml.trn1.2xlarge").burstable


def test_an_unknown_name_is_refused_with_the_closest_type():
    with pytest.raises(
        UnknownInstanceTypeError,
        match=r"'ml\.c5\.xlarg' is not a SageMaker hosting instance "
        r"type \(did you mean ml\.c5\.xlarge\?\)",
    ):
        instance_type("ml.c5.xlarg")


def test_every_burstable_type_has_its_credit_figures_and_no_other_type_does():
    burstable = {kind.name for kind in all_instance_types() if kind.burstable}
    assert set(credit_table()) == burstable
    assert {kind.name for kind in all_instance_types() if burstable_credits(kind.name)} == burstable


@pytest.mark.parametrize("name", sorted(credit_table()))
def test_credit_figures_agree_with_ec2s_definitions(name: str):
    """Baseline = credits earned an hour / (60 x vCPUs); the earned balance holds 24 hours of them."""
    credits = credit_table()[name]
    vcpus = instance_type(name).vcpus
    assert credits.baseline_per_vcpu == pytest.approx(credits.credits_per_hour / (60 * vcpus))
    assert credits.max_earned == pytest.approx(24 * credits.credits_per_hour)
