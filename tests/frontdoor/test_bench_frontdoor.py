"""``python -m bench.bench_frontdoor``: the figures it reports, from a short run (not its speed)."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from bench.bench_frontdoor import measure_cold_import, measure_latency


def test_latency_figures_compare_the_front_door_with_the_container_directly(demo_model_dir):
    # measure_latency points the process environment at its runtime stand-in; keep that here.
    with mock.patch.dict(os.environ):
        figures = measure_latency(demo_model_dir, runs=1, requests=10)

    by_name = {figure["name"]: figure for figure in figures}
    direct = by_name["1-record CSV straight to the container, median"]
    through = by_name["1-record CSV through the local front door, median"]
    added = by_name["latency the front door path adds, median"]
    assert {figure["unit"] for figure in figures} == {"ms"}
    assert through["baseline"] == "straight to the container"
    # Ratios are computed before the values are rounded for the report.
    assert through["ratio"] == pytest.approx(through["value"] / direct["value"], rel=0.02)
    assert added["value"] == pytest.approx(through["value"] - direct["value"], abs=0.002)
    assert direct["value"] > 0


def test_cold_import_figure_is_against_a_bare_interpreter():
    bare, loaded = measure_cold_import(runs=1)

    assert bare["unit"] == loaded["unit"] == "s"
    assert loaded["baseline"] == "interpreter start"
    assert loaded["ratio"] == pytest.approx(loaded["value"] / bare["value"], rel=0.02)
