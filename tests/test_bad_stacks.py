"""A corpus of stack files the unit tests do not contain (tests/bad_stacks/), each planned as a
user would plan it: misspelt keys, broken YAML, unsafe fleets are refused with a message naming
the fix and no traceback; valid but rare instance types are planned like any other.

Each file says what it expects in its header comments:
``# expect: refused`` (a configuration error, exit 2), ``# expect: violates <policy>`` (the policy
pack refuses it, exit 1) or ``# expect: plans`` (exit 0); every ``# says:`` line is text the
plan's output must contain.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tools import plan

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "bad_stacks"
STACK = "bad"


def header(path: Path, field: str) -> list[str]:
    prefix = f"# {field}: "
    return [line[len(prefix) :] for line in path.read_text().splitlines() if line.startswith(prefix)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project without its shipped stacks: everything else is a link to the repository."""
    for entry in REPO.iterdir():
        if not (entry.name.startswith("Pulumi.") and entry.name != "Pulumi.yaml") and entry.name != ".git":
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


@pytest.mark.usefixtures("demo_model_dir")
@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_stack_is_planned_as_its_header_says(project: Path, path: Path) -> None:
    (project / f"Pulumi.{STACK}.yaml").write_text(path.read_text())
    [expect] = header(path, "expect")
    says = header(path, "says")
    assert says, f"{path.name} says nothing to check"

    out = io.StringIO()
    code = plan.main(["--stack", STACK, "--project-dir", str(project)], out=out)  # raises = a traceback
    text = out.getvalue()

    if expect == "refused":
        assert code == plan.EXIT_CONFIG, text
        assert text.startswith(f"stack '{STACK}' configuration error: ")
        problems = [line for line in text.splitlines() if line.startswith("  - ")]
        assert problems, text
        assert all(". Fix: " in line for line in problems), text  # every problem names its fix
    elif expect.startswith("violates "):
        policy = expect.removeprefix("violates ")
        assert code == plan.EXIT_VIOLATION, text
        assert f"[FAILED] {policy} (mandatory)" in text
        assert "FAILED: 1 mandatory violation(s)" in text
    else:
        assert expect == "plans", f"{path.name}: unknown expectation {expect!r}"
        assert code == plan.EXIT_OK, text
        assert "PASSED: 0 mandatory violation(s)" in text
    for fragment in says:
        assert fragment in text, f"{path.name}: {fragment!r} not in\n{text}"
