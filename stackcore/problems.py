"""A configuration problem (key, what is wrong, the fix) and the error that lists them all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stackcore.keys import PROJECT


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One invalid setting: the key, what is wrong, and what to do about it."""

    key: str
    """The bare key (``maxInstances``); empty for a problem with a whole file."""
    problem: str
    fix: str
    where: str = ""
    """Where the value came from when known (``Pulumi.prod.yaml line 12``, ``--set``)."""

    def __str__(self) -> str:
        where = f" ({self.where})" if self.where and self.key else ""
        # A provider's key (aws:region) keeps its own namespace; a bare key is the project's.
        name = self.key if ":" in self.key else f"{PROJECT}:{self.key}"
        subject = f"{name}{where}" if self.key else self.where
        return f"{subject}: {self.problem}. Fix: {self.fix}"


class StackConfigError(Exception):
    """The stack configuration cannot be deployed; every problem found is listed, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s):\n{lines}")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.problems)
