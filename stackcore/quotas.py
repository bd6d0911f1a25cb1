"""The account's SageMaker endpoint quotas from Service Quotas, parsed once for the program's
``checkLiveQuotas`` and the plan's ``--live-quotas``."""

from __future__ import annotations

import re
from typing import Any

from stackcore import fleet, keys
from stackcore.fleet import QuotaTable, VariantFleet
from stackcore.problems import Problem

TOTAL_QUOTA_NAME = "Number of instances across active endpoints"
ENDPOINT_USAGE_SUFFIX = " for endpoint usage"
_ENDPOINT_QUOTA = re.compile(r"^(?P<type>ml\.[a-z0-9-]+\.[a-z0-9]+) for endpoint usage$")


def read_live_quotas(client: Any) -> tuple[dict[str, int], int | None]:
    """Per-type quotas (``"<type> for endpoint usage"``) and the account-wide total (None when the
    account does not list it), from Service Quotas ``ListServiceQuotas`` (service code sagemaker)."""
    per_type: dict[str, int] = {}
    total: int | None = None
    for page in client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page.get("Quotas", []):
            name = str(quota.get("QuotaName", ""))
            value = int(quota.get("Value", 0))
            if name == TOTAL_QUOTA_NAME:
                total = value
            elif match := _ENDPOINT_QUOTA.match(name):
                per_type[match.group("type")] = value
    return per_type, total


def live_quota_table(client: Any) -> QuotaTable:
    per_type, total = read_live_quotas(client)
    return QuotaTable(per_instance_type=per_type, total_instances=total or 0)


def live_quota_problems(variant: VariantFleet, declared: QuotaTable, client: Any) -> list[Problem]:
    """The peak fleet against the quotas the account really has, not the ones the stack declares."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - only with the check on

    try:
        live = live_quota_table(client)
    except (BotoCoreError, ClientError) as error:
        return [
            Problem(
                key=keys.CHECK_LIVE_QUOTAS,
                problem=f"cannot read the account's SageMaker quotas ({error})",
                fix="give the deployer servicequotas:ListServiceQuotas, or set checkLiveQuotas: false",
            )
        ]
    problems: list[Problem] = []
    for shortfall in fleet.quota_shortfalls([variant], live):
        total = shortfall.quota_name == TOTAL_QUOTA_NAME
        key = keys.TOTAL_INSTANCE_QUOTA if total else keys.ENDPOINT_INSTANCE_QUOTAS
        assumed = declared.total_instances if total else declared.for_type(variant.instance_type)
        problems.append(
            Problem(
                key=key,
                problem=f"the account's live quota: {shortfall.message()} (the stack declares {assumed})",
                fix=f"request the increase, then declare the granted value in {key}",
            )
        )
    return problems
