"""SageMaker hosting instance types: the one home of their facts.

The names are botocore's ``ProductionVariantInstanceType`` enum (what CreateEndpointConfig
accepts); vCPUs, memory, accelerators, burstable, Arm and local NVMe come from the table in
:mod:`stackcore.instance_type_table`, which covers every name in that enum (a test fails when
botocore gains one). Validation, the alarms' CPU threshold, the policy pack and the capacity
tool all read them here.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

from stackcore.instance_type_table import ROWS


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    """One hosting instance type, with EC2's figures for the same family and size."""

    name: str
    """``ml.<family>.<size>``."""
    vcpus: int
    memory_gib: float
    accelerators: int
    """GPUs, or Inferentia/Trainium/Gaudi chips; 0 for CPU-only types."""
    burstable: bool
    """Earns CPU credits and throttles to a baseline without them (``ml.t2``); cannot be autoscaled."""
    arm: bool
    """Arm (Graviton, Grace) processors: an x86_64 image does not start there."""
    local_nvme: bool
    """Local NVMe instance storage: CreateEndpointConfig refuses a KMS volume key for it."""
    checked: bool
    """False where the table's figures could not be checked against an AWS page."""

    @property
    def family(self) -> str:
        return self.name.split(".")[1]

    @property
    def gpu(self) -> bool:
        return self.accelerators > 0


class UnknownInstanceTypeError(ValueError):
    """A name that is not a SageMaker hosting instance type; the message suggests the closest."""


@cache
def _by_name() -> dict[str, InstanceType]:
    return {
        name: InstanceType(
            name=name,
            vcpus=vcpus,
            memory_gib=float(memory),
            accelerators=accelerators,
            burstable=burstable,
            arm=arm,
            local_nvme=nvme,
            checked=checked,
        )
        for name, vcpus, memory, accelerators, burstable, arm, nvme, checked in ROWS
    }


@cache
def hosting_instance_types() -> frozenset[str]:
    """The hosting instance types SageMaker accepts, from botocore's service model."""
    import botocore.session  # noqa: PLC0415  # imported on first use: it costs 0.1 s

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def known(name: str) -> bool:
    """True for a type the table describes."""
    return name in _by_name()


def closest(name: str) -> str | None:
    """The hosting instance type whose name is closest to ``name``, if any is close."""
    matches = difflib.get_close_matches(name, sorted(_by_name()), n=1, cutoff=0.6)
    return matches[0] if matches else None


def instance_type(name: str) -> InstanceType:
    """The facts of a hosting instance type; :class:`UnknownInstanceTypeError` for any other name."""
    found = _by_name().get(name)
    if found is None:
        suggestion = closest(name)
        hint = f" (did you mean {suggestion}?)" if suggestion else ""
        raise UnknownInstanceTypeError(f"{name!r} is not a SageMaker hosting instance type{hint}")
    return found


def all_instance_types() -> tuple[InstanceType, ...]:
    return tuple(_by_name().values())


# Predicates for places that meet arbitrary names (a policy reading a resource graph): a name
# outside the table is none of these, and is reported as unknown by whoever validates it.


def is_burstable(name: str) -> bool:
    found = _by_name().get(name)
    return found is not None and found.burstable


def has_local_nvme(name: str) -> bool:
    found = _by_name().get(name)
    return found is not None and found.local_nvme


def is_arm(name: str) -> bool:
    found = _by_name().get(name)
    return found is not None and found.arm
