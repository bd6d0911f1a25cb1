"""The Makefile's own logic: what `make serve`/`make local` do with MODEL_DIR, what `make plan` passes on.

``-o .venv/.installed`` tells make the venv is up to date, so these never install anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_mistyped_model_dir_fails_fast_instead_of_training_into_it(tmp_path: Path) -> None:
    typo = tmp_path / "my-modle"
    for target in ("serve", "local"):
        result = make(target, f"MODEL_DIR={typo}")
        assert result.returncode != 0
        assert f"MODEL_DIR={typo} has no xgboost-model file" in result.stderr
        assert "leave MODEL_DIR unset to use the demo model" in result.stderr
        assert not typo.exists()


def test_only_the_default_model_dir_is_trained() -> None:
    dry_run = make("-n", "demo-model", "MODEL_DIR=build/demo-model").stdout
    assert "tools.demo_model --out build/demo-model" in dry_run
    # The recipe trains only when MODEL_DIR is the default; any other path goes to the error.
    assert '[ "build/demo-model" = "build/demo-model" ]' in dry_run


def test_make_plan_passes_args_to_the_plan() -> None:
    dry_run = make("-n", "plan", "STACK=prod", "ARGS=--set maxInstances=20").stdout
    assert "-m tools.plan --stack prod --set maxInstances=20" in dry_run
