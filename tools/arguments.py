"""Number types the tools' command lines share (argparse ``type=``): a bad value is a usage error
that names the option and what it takes, never a traceback."""

from __future__ import annotations

import argparse
import math


def _finite(text: str, convert: type[int] | type[float]) -> int | float:
    try:
        value = convert(text)
    except ValueError:
        kind = "a whole number" if convert is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {kind}, got {text}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(_finite(text, float))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(_finite(text, float))
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(_finite(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_finite(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, got {text}")
    return value
