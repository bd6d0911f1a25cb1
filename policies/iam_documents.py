"""IAM policy documents as plain data: which Allow statements grant what, on which resources.

Pure facts, no Pulumi: the policies hand in a document as plain data (a JSON string or an
object) where a value not known before the update is any non-string object; such a value is
never judged. IAM matches actions case-insensitively with ``*`` and ``?`` wildcards, and an
``Allow`` with ``NotAction`` or ``NotResource`` allows everything it does not list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

SENSITIVE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    # Calling the model: a wildcard resource lets the caller reach every endpoint of the account.
    "sagemaker": ("InvokeEndpoint", "InvokeEndpointAsync", "InvokeEndpointWithResponseStream"),
    # S3 data actions (object-level reads, writes and listings): the model, captured requests.
    "s3": (
        "GetObject",
        "GetObjectVersion",
        "GetObjectAttributes",
        "GetObjectAcl",
        "GetObjectTagging",
        "PutObject",
        "PutObjectAcl",
        "PutObjectTagging",
        "DeleteObject",
        "DeleteObjectVersion",
        "RestoreObject",
        "ReplicateObject",
        "AbortMultipartUpload",
        "ListBucket",
        "ListBucketVersions",
        "ListMultipartUploadParts",
    ),
    # KMS cryptographic operations and grants: whoever may use any key can read anything it protects.
    "kms": (
        "Decrypt",
        "Encrypt",
        "ReEncryptFrom",
        "ReEncryptTo",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "CreateGrant",
        "Sign",
        "Verify",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
    ),
}
"""Actions that must never be allowed on a wildcard resource, by service prefix."""


@dataclass(frozen=True, kw_only=True)
class WildcardGrant:
    """An Allow statement granting sensitive actions on resources it does not name."""

    statement: str
    """``statement 'Sid'`` or ``statement #n`` (0-based) of the document."""
    actions: tuple[str, ...]
    """The statement's action patterns that grant a sensitive action (``NotAction [...]`` for one)."""
    resources: tuple[str, ...]
    """The wildcard resources (``NotResource [...]`` for one)."""


def statements(document: Any) -> list[Mapping[str, Any]] | None:
    """The statements of a policy document (a JSON string or an object); None when unreadable."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return None
    if not isinstance(document, Mapping):
        return None
    found = document.get("Statement", [])
    if isinstance(found, Mapping):
        return [found]
    if isinstance(found, Sequence) and not isinstance(found, str):
        return [s for s in found if isinstance(s, Mapping)]
    return None


def strings(value: Any) -> tuple[list[str], bool]:
    """A string-or-list field as (the strings, whether every element was known)."""
    if value is None:
        return [], True
    if isinstance(value, str):
        return [value], True
    if isinstance(value, Sequence):
        known = [v for v in value if isinstance(v, str)]
        return known, len(known) == len(value)
    return [], False


@cache
def _pattern(action: str) -> re.Pattern[str]:
    return re.compile(re.escape(action).replace(r"\*", ".*").replace(r"\?", "."), re.IGNORECASE)


def matches(pattern: str, action: str) -> bool:
    """True when the IAM action pattern (``s3:Get*``, ``*``) covers ``action`` (``s3:GetObject``)."""
    return _pattern(pattern).fullmatch(action) is not None


def sensitive_actions() -> list[str]:
    return [f"{service}:{name}" for service, names in SENSITIVE_ACTIONS.items() for name in names]


def granted_sensitive_actions(statement: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(the statement's patterns that grant sensitive actions, the sensitive actions granted)."""
    if "NotAction" in statement:
        excluded, known = strings(statement["NotAction"])
        if not known:
            return [], []
        granted = [a for a in sensitive_actions() if not any(matches(p, a) for p in excluded)]
        return ([f"NotAction {excluded}"] if granted else []), granted
    patterns, _ = strings(statement.get("Action"))
    hits = [p for p in patterns if any(matches(p, a) for a in sensitive_actions())]
    return hits, [a for a in sensitive_actions() if any(matches(p, a) for p in hits)]


def is_wildcard_resource(resource: str, service: str) -> bool:
    """True when ``resource``, for an action of ``service``, stands for more than one named resource.

    ``*`` and non-ARN patterns always do; an ARN with a wildcard in its partition, service, region
    or account does; for S3 a wildcard in the bucket name does (a wildcard in the object key names
    objects of one bucket); for every other service any wildcard in the resource part does. An
    ARN of another service never applies to the action and is not judged.
    """
    if "*" not in resource and "?" not in resource:
        return False
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return True
    _, partition, arn_service, region, account, name = parts
    if any(w in field for field in (partition, arn_service, region, account) for w in "*?"):
        return True
    if arn_service.lower() != service:
        return False
    if service == "s3":
        return any(w in name.split("/", 1)[0] for w in "*?")
    return True


def wildcard_grants(document: Any) -> list[WildcardGrant] | None:
    """Allow statements granting sensitive actions on wildcard resources; None when unreadable."""
    found = statements(document)
    if found is None:
        return None
    grants: list[WildcardGrant] = []
    for index, statement in enumerate(found):
        if statement.get("Effect") != "Allow":
            continue
        patterns, actions = granted_sensitive_actions(statement)
        if not actions:
            continue
        label = (
            f"statement '{statement['Sid']}'"
            if isinstance(statement.get("Sid"), str)
            else f"statement #{index}"
        )
        if "NotResource" in statement:
            excluded, _ = strings(statement["NotResource"])
            grants.append(
                WildcardGrant(
                    statement=label, actions=tuple(patterns), resources=(f"NotResource {excluded}",)
                )
            )
            continue
        resources, _ = strings(statement.get("Resource"))
        services = {a.split(":", 1)[0] for a in actions}
        wild = [r for r in resources if any(is_wildcard_resource(r, s) for s in services)]
        if wild:
            grants.append(WildcardGrant(statement=label, actions=tuple(patterns), resources=tuple(wild)))
    return grants


def principals(statement: Mapping[str, Any]) -> tuple[list[str], bool]:
    """Every principal a statement names (``*`` for ``"Principal": "*"``), and whether all were known."""
    if "NotPrincipal" in statement:
        return ["*"], True
    principal = statement.get("Principal", "*")
    if isinstance(principal, Mapping):
        names: list[str] = []
        every = True
        for value in principal.values():
            found, known = strings(value)
            names.extend(found)
            every = every and known
        return names, every
    return strings(principal)


def full_access_statements(document: Any) -> list[str] | None:
    """Allow statements letting any principal do anything to anything; None when unreadable.

    "Anything" is ``*``, a whole service (``s3:*``) or a ``NotAction``; "to anything" is ``*`` or
    a ``NotResource``: the default VPC endpoint policy is exactly such a statement.
    """
    found = statements(document)
    if found is None:
        return None
    labels: list[str] = []
    for index, statement in enumerate(found):
        if statement.get("Effect") != "Allow":
            continue
        who, _ = principals(statement)
        actions, _ = strings(statement.get("Action"))
        resources, _ = strings(statement.get("Resource"))
        any_principal = "*" in who
        any_action = "NotAction" in statement or any(a == "*" or a.endswith(":*") for a in actions)
        any_resource = "NotResource" in statement or "*" in resources
        if any_principal and any_action and any_resource:
            sid = statement.get("Sid")
            labels.append(f"statement '{sid}'" if isinstance(sid, str) else f"statement #{index}")
    return labels
