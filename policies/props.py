"""Reading resource properties the same way under the CLI and in-process.

Under ``pulumi preview`` CrossGuard hands a policy proxies (``Mapping``/``Sequence``, not ``dict``/
``list``) that raise ``UnknownValueError`` when a value is not known yet (an autonamed name, an
id, a string built from one). The in-process runner builds the same proxies from the recorded
graph. Every policy reads properties through :func:`get`, which turns "not known yet" into
:data:`UNKNOWN` instead of an exception, so a policy can decide what an unknown value means
(usually: cannot be judged before the update, so do not report it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pulumi_policy.proxy import UnknownValueError


class Unknown:
    """The type of :data:`UNKNOWN`: a value the engine only learns during the update."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown until the update>"

    def __bool__(self) -> bool:
        # An unknown value must never pass for "set" or "true" by accident.
        return False


UNKNOWN: Final = Unknown()

Key = str | int


def is_list(value: Any) -> bool:
    """True for lists and CrossGuard's list proxies, never for strings."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def get(value: Any, *path: Key) -> Any:
    """The value at ``path``: None when absent, :data:`UNKNOWN` when not known yet."""
    current = value
    for key in path:
        try:
            if isinstance(key, int):
                if not is_list(current) or not -len(current) <= key < len(current):
                    return None
                current = current[key]
            else:
                if not isinstance(current, Mapping) or key not in current:
                    return None
                current = current[key]
        except UnknownValueError:
            return UNKNOWN
        if current is None or current is UNKNOWN:
            return current
    return current


def text(value: Any, *path: Key) -> str | Unknown | None:
    found = get(value, *path)
    if found is UNKNOWN:
        return UNKNOWN
    return found if isinstance(found, str) else None


def integer(value: Any, *path: Key) -> int | Unknown | None:
    """An integer input; the engine sends every number as a float."""
    found = get(value, *path)
    if found is UNKNOWN:
        return UNKNOWN
    if isinstance(found, bool):
        return None
    if isinstance(found, int | float) and float(found).is_integer():
        return int(found)
    if isinstance(found, str) and found.strip().lstrip("-").isdigit():
        return int(found)
    return None


def number(value: Any, *path: Key) -> float | Unknown | None:
    """A numeric input (a float such as a target-tracking ``targetValue``)."""
    found = get(value, *path)
    if found is UNKNOWN:
        return UNKNOWN
    if isinstance(found, bool):
        return None
    if isinstance(found, int | float):
        return float(found)
    if isinstance(found, str):
        try:
            return float(found)
        except ValueError:
            return None
    return None


def flag(value: Any, *path: Key) -> bool | Unknown | None:
    found = get(value, *path)
    if found is UNKNOWN:
        return UNKNOWN
    if isinstance(found, bool):
        return found
    if isinstance(found, str) and found.lower() in ("true", "false"):
        return found.lower() == "true"
    return None


def items(value: Any, *path: Key) -> list[Any] | Unknown | None:
    """A list input, each element read through :func:`get` (unknown elements become UNKNOWN)."""
    found = get(value, *path)
    if found is UNKNOWN:
        return UNKNOWN
    if not is_list(found):
        return None
    return [get(found, index) for index in range(len(found))]


def mapping(value: Any, *path: Key) -> Mapping[str, Any] | Unknown | None:
    """An object input. Provider inputs may arrive JSON-encoded (older engines do that)."""
    found = get(value, *path)
    if found is UNKNOWN:
        return UNKNOWN
    if isinstance(found, Mapping):
        return found
    if isinstance(found, str) and found.startswith("{"):
        try:
            decoded = json.loads(found)
        except json.JSONDecodeError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def plain(value: Any) -> Any:
    """``value`` as plain dicts, lists and scalars; a value not known yet becomes :data:`UNKNOWN`.

    For the pure rule modules (IAM documents, CIDR blocks), which must not see CrossGuard's proxies.
    A JSON-encoded object stays a string: the rule decides how to read it.
    """
    if isinstance(value, Mapping):
        return {str(k): plain(get(value, k)) for k in value}
    if is_list(value):
        return [plain(get(value, i)) for i in range(len(value))]
    return value
