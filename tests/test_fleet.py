"""The shared fleet, address and quota arithmetic (stackcore/fleet.py)."""

import pytest

from stackcore import fleet
from stackcore.fleet import QuotaTable, UpdateMode, VariantFleet


def test_blue_green_update_doubles_the_peak_fleet():
    assert fleet.peak_instances(10, UpdateMode.BLUE_GREEN) == 20


def test_rolling_update_adds_one_batch_rounded_up():
    assert fleet.peak_instances(10, UpdateMode.ROLLING, rolling_batch_percent=25) == 13
    assert fleet.peak_instances(1, UpdateMode.ROLLING, rolling_batch_percent=5) == 2


@pytest.mark.parametrize("percent", [4, 51])
def test_rolling_batch_outside_sagemakers_range_is_refused(percent):
    with pytest.raises(ValueError, match="5-50%"):
        fleet.rolling_batch_instances(10, percent)


def test_zero_instances_is_refused():
    with pytest.raises(ValueError, match="at least one instance"):
        fleet.peak_instances(0, UpdateMode.BLUE_GREEN)


def test_subnet_needs_two_addresses_per_instance_of_its_share_plus_reserved():
    # peak 20 over 3 subnets -> 7 instances in the fullest subnet -> 14 addresses + 2 ENIs + 5 reserved
    assert fleet.addresses_needed_per_subnet(20, 3, other_enis_per_subnet=2) == 21


def test_headroom_is_applied_before_the_reserved_addresses():
    assert fleet.addresses_needed_per_subnet(10, 1, headroom_percent=50) == 30 + 5


def test_a_slash_28_cannot_hold_a_blue_green_fleet_of_ten():
    needed = fleet.addresses_needed_per_subnet(fleet.peak_instances(10, UpdateMode.BLUE_GREEN), 1)
    assert needed > fleet.subnet_size(28)
    assert fleet.largest_prefix_holding(needed) == 26


def test_largest_prefix_never_goes_below_slash_16():
    assert fleet.largest_prefix_holding(1) == 28
    with pytest.raises(ValueError, match="/16"):
        fleet.largest_prefix_holding(70_000)


@pytest.mark.parametrize(
    ("instance_type", "burstable"),
    [
        ("ml.t2.medium", True),
        ("ml.t2.2xlarge", True),
        ("ml.c5.xlarge", False),
        ("ml.m5d.large", False),
        ("ml.t3.large", False),  # not a hosting type: unknown names are none of these
    ],
)
def test_burstable_families_are_recognised(instance_type, burstable):
    assert fleet.is_burstable(instance_type) is burstable


def test_new_account_quotas_refuse_any_blue_green_fleet_but_one_t2_medium():
    small = VariantFleet(resource_name="dev", instance_type="ml.t2.medium", max_instances=1)
    assert fleet.quota_shortfalls([small], fleet.NEW_ACCOUNT_QUOTAS) == []
    prod = VariantFleet(resource_name="prod", instance_type="ml.c5.xlarge", max_instances=3)
    shortfalls = fleet.quota_shortfalls([prod], fleet.NEW_ACCOUNT_QUOTAS)
    assert [s.quota_name for s in shortfalls] == [
        "ml.c5.xlarge for endpoint usage",
        "Number of instances across active endpoints",
    ]
    assert "request an increase of 6 (to 6)" in shortfalls[0].message()


def test_quota_sums_variants_of_the_same_type():
    quotas = QuotaTable(per_instance_type={"ml.c5.xlarge": 10}, total_instances=100)
    fleets = [
        VariantFleet(resource_name="a", instance_type="ml.c5.xlarge", max_instances=3),
        VariantFleet(resource_name="b", instance_type="ml.c5.xlarge", max_instances=3),
    ]
    (shortfall,) = fleet.quota_shortfalls(fleets, quotas)
    assert (shortfall.needed, shortfall.quota, shortfall.increase_by) == (12, 10, 2)
    assert shortfall.variants == ("a", "b")


def test_invocations_target_follows_awss_formula():
    # MAX_RPS 40 x SAFETY 0.5 x 60 s
    assert fleet.invocations_per_instance_target(40, 0.5) == 1200


def test_fleet_surviving_the_loss_of_one_az():
    # 4 instances needed over 3 AZs: 6 leaves 4 after losing 2; 5 would leave 3.
    assert fleet.instances_surviving_az_loss(4, 3) == 6
    assert fleet.instances_surviving_az_loss(1, 3) == 3
    assert fleet.instances_surviving_az_loss(5, 1) == 5


def test_instances_for_load_rounds_up():
    assert fleet.instances_for_load(101, 50) == 3
    assert fleet.instances_for_load(0, 50) == 1


@pytest.mark.parametrize(
    ("instance_type", "nvme"),
    [
        ("ml.m5d.large", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.r7gd.2xlarge", True),
        ("ml.p6-b200.48xlarge", True),
        ("ml.g5.xlarge", True),
        ("ml.c5.xlarge", False),
        ("ml.c6in.xlarge", False),
        ("ml.m5.xlarge", False),
        ("ml.t2.medium", False),
        ("ml.inf1.xlarge", False),
    ],
)
def test_local_nvme_types_are_recognised_for_the_kms_rule(instance_type, nvme):
    assert fleet.has_local_nvme(instance_type) is nvme


@pytest.mark.parametrize(
    ("instance_type", "graviton"),
    [
        ("ml.c6g.large", True),
        ("ml.m6gd.xlarge", True),
        ("ml.c6gn.large", True),
        ("ml.c7g.2xlarge", True),
        ("ml.p6e-gb200.36xlarge", True),  # Grace: Arm, though the name has no g
        ("ml.g4dn.xlarge", False),
        ("ml.g5.xlarge", False),
        ("ml.c5.xlarge", False),
        ("ml.inf2.xlarge", False),
    ],
)
def test_graviton_families_are_recognised(instance_type, graviton):
    assert fleet.is_graviton(instance_type) is graviton
