"""The plan's what-if lines, from the stack alone."""

from __future__ import annotations

import re

from lib.evaluate import REPO_ROOT
from tests.simulate.conftest import MODEL_URI
from tools.simulate import whatif


def test_prod_gets_one_line_per_scenario_with_figures() -> None:
    text = whatif.report("prod", REPO_ROOT)
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(("lose", "deploy"))]
    assert [line.split(" (")[0] for line in lines] == [
        "lose one AZ at peak",
        "lose one instance at peak",
        "deploy at peak",
    ]
    az = lines[0]
    assert re.search(r"\d+(\.\d)?% of requests fail for \d+ minute\(s\)", az), az
    assert re.search(r"back to normal after \d+ minute\(s\)", az), az


def test_a_single_instance_stack_loses_everything_until_the_replacement() -> None:
    text = whatif.report(
        "dev", REPO_ROOT, {"modelUri": MODEL_URI, "expectedBaseRps": 5, "expectedPeakRps": 10}
    )
    az = next(line for line in text.splitlines() if "lose one AZ" in line)
    # One instance: everything fails from its loss until its replacement serves, 5 + 7 minutes later.
    match = re.search(r"(\d+\.\d)% of requests fail for (\d+) minute", az)
    assert match, az
    assert float(match.group(1)) > 90
    assert 12 <= int(match.group(2)) <= 13


def test_without_a_declared_peak_it_says_what_to_declare() -> None:
    text = whatif.report("dev", REPO_ROOT, {"modelUri": MODEL_URI})
    assert "declare expectedPeakRps" in text


def test_a_stack_the_simulator_cannot_read_is_a_note_not_a_crash() -> None:
    text = whatif.report("dev", REPO_ROOT, {"modelUri": MODEL_URI, "instanceType": "ml.nope"})
    assert "not simulated" in text
