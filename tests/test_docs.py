"""The documentation stays true to the code: every setting in docs/settings.md, every benchmark in
docs/benchmarks.md with a results file, and no link in the docs or the README to a missing file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stackcore.layering import read_project

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
NO_RESULTS_YET = "No results are committed yet"


def test_settings_doc_lists_every_declared_key() -> None:
    text = (DOCS / "settings.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE))
    declared = set(read_project(REPO).declarations)
    assert declared - documented == set(), "document these keys in docs/settings.md, 'Every key'"
    assert documented - declared == set(), "docs/settings.md lists keys Pulumi.yaml does not declare"


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## `(bench_\w+)`", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_benchmarks_doc_has_every_bench_module_and_its_results_files() -> None:
    sections = _sections((DOCS / "benchmarks.md").read_text())
    modules = sorted(path for path in (REPO / "bench").glob("bench_*.py"))
    assert modules
    for module in modules:
        # The results files a module writes: the names it passes to write_results, directly or
        # through a variable (every ".json" literal in its code, docstring aside).
        source = module.read_text()
        code = source.split('"""', 2)[2] if source.startswith('"""') else source
        written = set(re.findall(r"[\"']([\w.-]+\.json)[\"']", code))
        assert written, f"{module.name} writes no results file to bench/results/"
        section = sections.get(module.stem)
        assert section is not None, f"docs/benchmarks.md has no section '## `{module.stem}`'"
        for name in written:
            assert f"bench/results/{name}" in section, f"{module.stem}'s section does not name {name}"
        # The page and bench/results/ agree: a results file is committed, or the section says
        # plainly that there is none yet (and why).
        if not any((REPO / "bench" / "results" / name).is_file() for name in written):
            assert NO_RESULTS_YET in section, (
                f"bench/results/ has none of {sorted(written)}: commit a run's results, or say "
                f"'{NO_RESULTS_YET}' and why in docs/benchmarks.md"
            )
    assert set(sections) <= {m.stem for m in modules}, "docs/benchmarks.md describes a missing module"


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in DOCS.glob("*.md"))]
)
def test_links_point_at_files_in_the_repository(page: str) -> None:
    path = REPO / page
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{page} links to {target}, which does not exist"
