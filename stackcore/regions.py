"""Availability Zones per Region: botocore lists Regions but no zones, so this small table does.

Source: AWS "Regions and Availability Zones" (AWS Global Infrastructure, zones per Region) and
the EC2 guide's "AZ IDs" page, as of 2026-12-01. Zone *letters* are mapped to physical zones per
account, and some older accounts see letters others do not (ap-northeast-1b, us-west-1a/b/c):
``letters`` is every letter an account may see, ``count`` how many an account can use at once.
A Region not listed is checked only for the shape ``<region><letter>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class RegionZones:
    count: int
    letters: str


_ABC = RegionZones(3, "abc")

ZONES: dict[str, RegionZones] = {
    "us-east-1": RegionZones(6, "abcdef"),
    "us-east-2": _ABC,
    "us-west-1": RegionZones(2, "abc"),
    "us-west-2": RegionZones(4, "abcd"),
    "af-south-1": _ABC,
    "ap-east-1": _ABC,
    "ap-south-1": _ABC,
    "ap-south-2": _ABC,
    "ap-northeast-1": RegionZones(3, "abcd"),
    "ap-northeast-2": RegionZones(4, "abcd"),
    "ap-northeast-3": _ABC,
    "ap-southeast-1": _ABC,
    "ap-southeast-2": _ABC,
    "ap-southeast-3": _ABC,
    "ap-southeast-4": _ABC,
    "ca-central-1": RegionZones(3, "abd"),
    "ca-west-1": _ABC,
    "eu-central-1": _ABC,
    "eu-central-2": _ABC,
    "eu-west-1": _ABC,
    "eu-west-2": _ABC,
    "eu-west-3": _ABC,
    "eu-north-1": _ABC,
    "eu-south-1": _ABC,
    "eu-south-2": _ABC,
    "il-central-1": _ABC,
    "me-central-1": _ABC,
    "me-south-1": _ABC,
    "sa-east-1": _ABC,
}

_ZONE = re.compile(r"^(?P<region>[a-z]{2}(-[a-z]+)+-\d)(?P<letter>[a-z])$")


def is_zone_name(zone: str) -> bool:
    """Shaped like a zone name (``<region><letter>``), whether or not the zone exists."""
    return _ZONE.match(zone) is not None


def zone_problem(zone: str, region: str) -> str | None:
    """What is wrong with a zone name for the stack's region, or None."""
    match = _ZONE.match(zone)
    if match is None:
        return f"{zone!r} is not a zone name"
    if region and match.group("region") != region:
        return f"{zone} is not in the stack's region {region}"
    known = ZONES.get(match.group("region"))
    if known is not None and match.group("letter") not in known.letters:
        name = match.group("region")
        return f"{zone} does not exist ({name} has zones {', '.join(name + c for c in known.letters)})"
    return None


def zone_count(region: str) -> int | None:
    """Zones an account can use in the region, when the table knows it."""
    known = ZONES.get(region)
    return known.count if known is not None else None


@cache
def sagemaker_regions() -> frozenset[str]:
    """Every Region where SageMaker has an endpoint, in every partition, from botocore's data."""
    import botocore.session  # noqa: PLC0415  # imported on first use, like the instance types

    session = botocore.session.get_session()
    found: set[str] = set()
    for partition in session.get_available_partitions():
        found.update(session.get_available_regions("sagemaker", partition_name=partition))
    return frozenset(found)
