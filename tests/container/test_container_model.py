"""Loading xgboost-model: three formats, the restricted unpickler, clear errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import xgboost as xgb
from xgbserve.model import Model, ModelLoadError, load_booster_bytes

CONTAINER_DIR = Path(__file__).resolve().parents[2] / "container"


@pytest.mark.parametrize("fmt", ["pickle", "json", "ubj"])
def test_every_model_format_gives_the_same_predictions(
    fmt: str, model_dirs: dict[str, Path], rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    model = Model.load(model_dirs[fmt])
    assert (model.num_features, model.objective, model.num_class) == (64, "multi:softprob", 10)
    np.testing.assert_array_equal(model.predict(rows), expected)


def test_predictions_match_booster_predict_on_a_dmatrix(
    booster: xgb.Booster, rows: npt.NDArray[np.float32], expected: npt.NDArray[np.float32]
) -> None:
    np.testing.assert_allclose(expected, booster.predict(xgb.DMatrix(rows)), rtol=1e-6)
    assert expected.shape == (rows.shape[0], 10)


def test_model_version_is_a_hash_of_the_file(model_dirs: dict[str, Path]) -> None:
    versions = {Model.load(directory).version for directory in model_dirs.values()}
    assert len(versions) == 3
    assert all(len(v) == 16 for v in versions)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/xgbserve-pwned",))


def test_pickle_that_would_run_code_is_refused() -> None:
    with pytest.raises(ModelLoadError, match=r"refusing to load (posix|os)\.system"):
        load_booster_bytes(pickle.dumps(_Exploit(), protocol=4))
    assert not Path("/tmp/xgbserve-pwned").exists()


def test_pickle_of_something_else_is_refused() -> None:
    with pytest.raises(ModelLoadError, match=r"refusing to load builtins\.dict"):
        load_booster_bytes(pickle.dumps(dict, protocol=4))


def test_pickle_of_a_plain_value_is_not_a_booster() -> None:
    with pytest.raises(ModelLoadError, match="unpickled to list, not an xgboost Booster"):
        load_booster_bytes(pickle.dumps([1, 2], protocol=4))


def test_truncated_pickle_is_a_clear_error(model_dirs: dict[str, Path]) -> None:
    data = (model_dirs["pickle"] / "xgboost-model").read_bytes()
    with pytest.raises(ModelLoadError, match="corrupt pickle"):
        load_booster_bytes(data[: len(data) // 2])


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "xgboost-model").write_bytes(b"not a model at all")
    with pytest.raises(ModelLoadError, match="neither a pickled Booster nor an XGBoost JSON/UBJSON model"):
        Model.load(tmp_path)


def test_missing_model_file_names_the_expected_file(tmp_path: Path) -> None:
    (tmp_path / "model.bst").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="must contain a file named xgboost-model"):
        Model.load(tmp_path)


def test_stray_files_next_to_the_model_are_ignored(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    (tmp_path / "xgboost-model").write_bytes((model_dirs["ubj"] / "xgboost-model").read_bytes())
    (tmp_path / "README.md").write_text("not a model")
    (tmp_path / "code").mkdir()
    assert Model.load(tmp_path).num_features == 64


def test_direct_dense_prediction_is_used_and_matches_inplace_predict(
    model: Model, rows: npt.NDArray[np.float32]
) -> None:
    assert model._dense is not None
    with_missing = rows[:50].copy()
    with_missing[:, ::5] = np.nan
    reference = model.booster.inplace_predict(with_missing, validate_features=False)
    np.testing.assert_array_equal(model.predict(with_missing), reference)
    np.testing.assert_array_equal(model.predict(rows[:1]), model.booster.inplace_predict(rows[:1]))


_CHECK_AND_PREDICT = """
import sys
import numpy as np
from pathlib import Path
from xgbserve.preflight import check_model, checked_model
model_dir = Path(sys.argv[1])
checked = check_model(model_dir)
assert checked_model(model_dir) == checked
model = checked.load()
rows = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(rows))
print(model.version, model.num_features, model.objective, model.num_class)
"""


@pytest.mark.parametrize("fmt", ["pickle", "json", "ubj"])
def test_the_model_a_check_child_hands_over_predicts_as_the_file_does(
    fmt: str,
    model_dirs: dict[str, Path],
    rows: npt.NDArray[np.float32],
    expected: npt.NDArray[np.float32],
    tmp_path: Path,
) -> None:
    # In a fresh interpreter, as in the server's master: this process has run OpenMP regions
    # (training the fixtures), after which a forked child's OpenMP hangs.
    np.save(tmp_path / "rows.npy", rows)
    env = {**os.environ, "PYTHONPATH": str(CONTAINER_DIR)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHECK_AND_PREDICT,
            str(model_dirs[fmt]),
            str(tmp_path / "rows.npy"),
            str(tmp_path / "out.npy"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == [Model.load(model_dirs[fmt]).version, "64", "multi:softprob", "10"]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_each_thread_predicts_through_its_own_proxy(model: Model, rows: npt.NDArray[np.float32]) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    single = [model.predict(rows[i : i + 1]) for i in range(64)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda i: model.predict(rows[i : i + 1]), range(64)))
    for alone, threaded in zip(single, together, strict=True):
        np.testing.assert_array_equal(alone, threaded)
