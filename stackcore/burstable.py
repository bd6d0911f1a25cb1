"""CPU credits of the burstable hosting types (``ml.t2.*``): what an instance earns, holds and
falls back to when it has none, in EC2's standard mode (SageMaker hosts ``ml.t2.<size>`` on the EC2
``t2.<size>`` of the same name).

One credit is one vCPU at 100% for one minute. Launch credits are spent first and do not count
toward the maximum balance; the earned balance is capped at 24 hours of earnings; out of credits an
instance runs at its baseline. This is what took the seed's instance out of service, so the
simulator, the plan and anything else that reasons about a T2 over time read it here.

Source: Amazon EC2 User Guide, "Key concepts and definitions for burstable performance instances",
credit table (T2 rows, read 2026-12),
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-credits-baseline-concepts.html
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class BurstableCredits:
    """EC2's CPU-credit figures for a T2 size (standard mode), per instance."""

    launch_credits: float
    credits_per_hour: float
    max_earned: float
    baseline_per_vcpu: float
    """Fraction of one vCPU the instance may use for ever without credits."""


_CREDITS: dict[str, BurstableCredits] = {
    "ml.t2.medium": BurstableCredits(
        launch_credits=60, credits_per_hour=24, max_earned=576, baseline_per_vcpu=0.20
    ),
    "ml.t2.large": BurstableCredits(
        launch_credits=60, credits_per_hour=36, max_earned=864, baseline_per_vcpu=0.30
    ),
    "ml.t2.xlarge": BurstableCredits(
        launch_credits=120, credits_per_hour=54, max_earned=1296, baseline_per_vcpu=0.225
    ),
    "ml.t2.2xlarge": BurstableCredits(
        launch_credits=240, credits_per_hour=81.6, max_earned=1958.4, baseline_per_vcpu=0.17
    ),
}


def burstable_credits(name: str) -> BurstableCredits | None:
    """The credit figures of a burstable hosting type; None for any other type."""
    return _CREDITS.get(name)


def credit_table() -> dict[str, BurstableCredits]:
    """Every burstable hosting type's figures, by name."""
    return dict(_CREDITS)
