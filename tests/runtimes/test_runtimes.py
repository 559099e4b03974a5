"""Built-in runtimes against their own libraries: tiny models trained in a temp dir."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelport import Model
from modelport.errors import InvalidInput, ModelLoadError, UnsupportedModelFormat
from modelport.protocol.infer import InferInput, InferRequest, InferResponse
from modelport.runtimes import create_model, detect_format
from modelport.runtimes.base import OUTPUT_NAME

# TorchScript is deprecated upstream but is exactly the format this runtime serves.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

X, Y = load_iris(return_X_y=True)
ROWS = X[[0, 60, 120, 149]]  # one or two of each class


# ---- helpers --------------------------------------------------------------------------------


def v2_request(array: np.ndarray, name: str = "input-0", request_id: str = "rid") -> InferRequest:
    datatype = {"float64": "FP64", "float32": "FP32", "int64": "INT64"}.get(
        str(array.dtype), "BYTES"
    )
    return InferRequest(
        "m", [InferInput(name, array.shape, datatype, array)], request_id=request_id
    )


def infer_v2(model: Model, array: np.ndarray) -> np.ndarray:
    response = asyncio.run(model(v2_request(array)))
    assert isinstance(response, InferResponse)
    assert response.id == "rid"
    assert [o.name for o in response.outputs] == [OUTPUT_NAME]
    return response.outputs[0].as_numpy()


def infer_v1(model: Model, rows: Any) -> np.ndarray:
    result = asyncio.run(model({"instances": rows}))
    assert set(result) == {"predictions"}
    return np.asarray(result["predictions"])


def loaded(name: str, path: Path, fmt: str | None = None, **options: Any) -> Model:
    model = create_model(name, path, fmt, **options)
    assert model.load() is True
    assert model.ready
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: a directory holding one tiny trained model of the given kind (built once)."""
    cache: dict[str, Path] = {}

    def build(kind: str) -> Path:
        if kind not in cache:
            path = tmp_path_factory.mktemp(kind)
            BUILDERS[kind](path)
            cache[kind] = path
        return cache[kind]

    return build


def _logreg(path: Path) -> None:
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, Y), path / "model.joblib")


def _pipeline(path: Path) -> None:
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y)
    joblib.dump(pipe, path / "model.pkl")


def _hgb(path: Path) -> None:
    joblib.dump(HistGradientBoostingClassifier(max_iter=5).fit(X, Y), path / "model.joblib")


def _xgb(path: Path) -> None:
    import xgboost

    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
        xgboost.DMatrix(X, label=Y),
        num_boost_round=4,
    )
    booster.save_model(str(path / "model.json"))
    (path / "ubj").mkdir()
    booster.save_model(str(path / "ubj" / "model.ubj"))


def _lgb(path: Path) -> None:
    import lightgbm

    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1}
    lightgbm.train(params, lightgbm.Dataset(X, label=Y), num_boost_round=4).save_model(
        str(path / "model.txt")
    )


def _onnx(path: Path) -> None:
    from skl2onnx import to_onnx

    clf = LogisticRegression(max_iter=1000).fit(X, Y)
    onx = to_onnx(clf, X[:1].astype(np.float32), options={id(clf): {"zipmap": False}})
    (path / "model.onnx").write_bytes(onx.SerializeToString())
    joblib.dump(clf, path / "reference.joblib.bak")


def _onnx_two_inputs(path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("Mul", ["a", "b"], ["prod"]),
        ],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("prod", TensorProto.FLOAT, [None, 2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    (path / "model.onnx").write_bytes(model.SerializeToString())


def _torch(path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))
    torch.jit.save(torch.jit.script(module), str(path / "model.pt"))


BUILDERS: dict[str, Callable[[Path], None]] = {
    "logreg": _logreg,
    "pipeline": _pipeline,
    "hgb": _hgb,
    "xgboost": _xgb,
    "lightgbm": _lgb,
    "onnx": _onnx,
    "onnx2": _onnx_two_inputs,
    "torch": _torch,
}


# ---- scikit-learn ---------------------------------------------------------------------------


def test_sklearn_v2_and_v1_match_the_estimator(trained: Callable[[str], Path]) -> None:
    path = trained("logreg")
    model = loaded("iris", path, "sklearn")
    clf = joblib.load(path / "model.joblib")
    np.testing.assert_array_equal(infer_v2(model, ROWS), clf.predict(ROWS))
    np.testing.assert_array_equal(infer_v1(model, ROWS.tolist()), clf.predict(ROWS))
    assert model.platform == "sklearn"
    assert model.get_input_types() == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]


def test_sklearn_predict_proba_option(trained: Callable[[str], Path]) -> None:
    path = trained("logreg")
    model = loaded("iris", path, "sklearn", predict_proba=True)
    clf = joblib.load(path / "model.joblib")
    got = infer_v2(model, ROWS)
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, clf.predict_proba(ROWS))
    np.testing.assert_allclose(infer_v1(model, ROWS.tolist()), clf.predict_proba(ROWS))


def test_sklearn_pipeline_from_pkl(trained: Callable[[str], Path]) -> None:
    path = trained("pipeline")
    assert detect_format(path) == "sklearn"
    model = loaded("pipe", path)
    pipe = joblib.load(path / "model.pkl")
    np.testing.assert_array_equal(infer_v2(model, ROWS), pipe.predict(ROWS))
    np.testing.assert_array_equal(infer_v2(model, ROWS.astype(np.float32)), pipe.predict(ROWS))
    np.testing.assert_array_equal(infer_v1(model, ROWS.tolist()), pipe.predict(ROWS))


def test_sklearn_pipeline_taking_strings(tmp_path: Path) -> None:
    cats = np.array([["red"], ["green"], ["blue"], ["green"]], dtype=object)
    pipe = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(cats, [0, 1, 0, 1])
    joblib.dump(pipe, tmp_path / "model.joblib")
    model = loaded("colors", tmp_path)
    got = infer_v2(model, np.array([["green"], ["red"]], dtype=object))
    np.testing.assert_array_equal(got, pipe.predict(np.array([["green"], ["red"]], dtype=object)))


def test_sklearn_several_one_column_inputs_are_stacked(trained: Callable[[str], Path]) -> None:
    model = loaded("iris", trained("logreg"))
    inputs = [InferInput(f"f{i}", [4, 1], "FP64", ROWS[:, i : i + 1].copy()) for i in range(4)]
    response = asyncio.run(model(InferRequest("iris", inputs)))
    clf = joblib.load(trained("logreg") / "model.joblib")
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), clf.predict(ROWS))


def test_sklearn_string_labels_come_back_as_bytes_tensor(tmp_path: Path) -> None:
    names = np.array(["setosa", "versicolor", "virginica"])[Y]
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, names), tmp_path / "model.joblib")
    model = loaded("named", tmp_path)
    response = asyncio.run(model(v2_request(ROWS)))
    assert response.outputs[0].datatype == "BYTES"
    assert response.outputs[0].as_numpy().tolist() == [
        "setosa",
        "versicolor",
        "virginica",
        "virginica",
    ]


@pytest.mark.parametrize("features", [3, 5])
def test_sklearn_wrong_feature_count(trained: Callable[[str], Path], features: int) -> None:
    model = loaded("iris", trained("logreg"))
    with pytest.raises(InvalidInput, match=f"expects 4 features per row, got {features}"):
        infer_v2(model, np.ones((2, features)))
    with pytest.raises(InvalidInput, match="expects 4 features"):
        infer_v1(model, np.ones((2, features)).tolist())


def test_sklearn_one_dimensional_input(trained: Callable[[str], Path]) -> None:
    model = loaded("iris", trained("logreg"))
    with pytest.raises(InvalidInput, match="2-D"):
        infer_v2(model, np.ones(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sklearn_nan_into_logistic_regression(trained: Callable[[str], Path], bad: float) -> None:
    model = loaded("iris", trained("logreg"))
    rows = ROWS.copy()
    rows[1, 2] = bad
    with pytest.raises(InvalidInput, match="NaN or infinity"):
        infer_v2(model, rows)


def test_sklearn_nan_allowed_where_the_estimator_allows_it(trained: Callable[[str], Path]) -> None:
    path = trained("hgb")
    model = loaded("hgb", path)
    rows = ROWS.copy()
    rows[0, 0] = np.nan
    clf = joblib.load(path / "model.joblib")
    np.testing.assert_array_equal(infer_v2(model, rows), clf.predict(rows))


@pytest.mark.parametrize(
    "instances",
    [[[1, 2, 3, 4], [1, 2]], [["a", "b", "c", "d"]], "abc", [[1, 2, 3, None]]],
    ids=repr,
)
def test_sklearn_bad_v1_instances(trained: Callable[[str], Path], instances: Any) -> None:
    model = loaded("iris", trained("logreg"))
    with pytest.raises(InvalidInput):
        asyncio.run(model({"instances": instances}))


def test_sklearn_file_not_holding_an_estimator(tmp_path: Path) -> None:
    joblib.dump({"weights": [1, 2]}, tmp_path / "model.joblib")
    model = create_model("x", tmp_path, "sklearn")
    with pytest.raises(ModelLoadError, match="holds a dict, not an estimator"):
        model.load()


# ---- XGBoost --------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["model.json", "ubj"])
def test_xgboost_json_and_ubj(trained: Callable[[str], Path], sub: str) -> None:
    import xgboost

    path = trained("xgboost") / sub
    assert detect_format(path) == "xgboost"
    model = loaded("xgb", path)
    booster = xgboost.Booster(model_file=str(trained("xgboost") / "model.json"))
    want = booster.predict(xgboost.DMatrix(ROWS))
    np.testing.assert_allclose(infer_v2(model, ROWS), want, rtol=1e-6)
    np.testing.assert_allclose(infer_v2(model, ROWS.astype(np.float32)), want, rtol=1e-6)
    np.testing.assert_allclose(infer_v1(model, ROWS.tolist()), want, rtol=1e-6)
    assert model.platform == "xgboost"
    assert model.get_input_types()[0]["shape"] == [-1, 4]


def test_xgboost_wrong_feature_count(trained: Callable[[str], Path]) -> None:
    model = loaded("xgb", trained("xgboost") / "model.json")
    with pytest.raises(InvalidInput, match="expects 4 features"):
        infer_v2(model, np.ones((1, 6)))
    with pytest.raises(InvalidInput, match="expects 4 features"):
        infer_v1(model, [[1.0, 2.0]])


# ---- LightGBM -------------------------------------------------------------------------------


def test_lightgbm_txt(trained: Callable[[str], Path]) -> None:
    import lightgbm

    path = trained("lightgbm")
    assert detect_format(path) == "lightgbm"
    model = loaded("lgb", path)
    want = lightgbm.Booster(model_file=str(path / "model.txt")).predict(ROWS)
    np.testing.assert_allclose(infer_v2(model, ROWS), want)
    np.testing.assert_allclose(infer_v1(model, ROWS.tolist()), want)
    assert model.platform == "lightgbm"


def test_lightgbm_wrong_feature_count(trained: Callable[[str], Path]) -> None:
    model = loaded("lgb", trained("lightgbm"))
    with pytest.raises(InvalidInput, match="expects 4 features"):
        infer_v2(model, np.ones((3, 2)))
    with pytest.raises(InvalidInput, match="expects 4 features"):
        infer_v1(model, [[1.0] * 7])


# ---- ONNX -----------------------------------------------------------------------------------


def test_onnx_from_skl2onnx(trained: Callable[[str], Path]) -> None:
    path = trained("onnx")
    model = loaded("onnx", path)
    clf = joblib.load(path / "reference.joblib.bak")
    response = asyncio.run(model(v2_request(ROWS, name="X")))
    assert response.id == "rid"
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert set(outputs) == {"label", "probabilities"}
    np.testing.assert_array_equal(outputs["label"], clf.predict(ROWS))
    np.testing.assert_allclose(outputs["probabilities"], clf.predict_proba(ROWS), atol=1e-5)
    # V1 answers with the graph's first output
    np.testing.assert_array_equal(infer_v1(model, ROWS.tolist()), clf.predict(ROWS))
    assert model.platform == "onnxruntime_onnx"
    assert model.get_input_types() == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in model.get_output_types()] == ["label", "probabilities"]


def test_onnx_inputs_matched_by_name(trained: Callable[[str], Path]) -> None:
    model = loaded("two", trained("onnx2"), "onnx")
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    b = np.array([[10.0, 20.0], [30.0, 40.0]], np.float32)
    request = InferRequest(
        "two", [InferInput("b", [2, 2], "FP32", b), InferInput("a", [2, 2], "FP32", a)]
    )
    response = asyncio.run(model(request))
    np.testing.assert_array_equal(response.get_output_by_name("sum").as_numpy(), a + b)
    np.testing.assert_array_equal(response.get_output_by_name("prod").as_numpy(), a * b)
    missing = InferRequest(
        "two", [InferInput("a", [2, 2], "FP32", a), InferInput("c", [2, 2], "FP32", b)]
    )
    with pytest.raises(InvalidInput, match="needs input b"):
        asyncio.run(model(missing))


def test_onnx_wrong_feature_count_v2(trained: Callable[[str], Path]) -> None:
    model = loaded("onnx", trained("onnx"))
    with pytest.raises(InvalidInput):
        asyncio.run(model(v2_request(np.ones((2, 3)), name="X")))


def test_onnx_wrong_feature_count_v1(trained: Callable[[str], Path]) -> None:
    model = loaded("onnx", trained("onnx"))
    with pytest.raises(InvalidInput):
        infer_v1(model, [[1.0, 2.0, 3.0]])


def test_onnx_string_input_for_numeric_graph(trained: Callable[[str], Path]) -> None:
    model = loaded("onnx", trained("onnx"))
    with pytest.raises(InvalidInput, match="must be numeric"):
        asyncio.run(model(v2_request(np.array([["a", "b", "c", "d"]], dtype=object), name="X")))


# ---- PyTorch (TorchScript) ------------------------------------------------------------------


@pytest.mark.torch
def test_torchscript_fp32(trained: Callable[[str], Path]) -> None:
    torch = pytest.importorskip("torch")
    path = trained("torch")
    assert detect_format(path) == "pytorch"
    model = loaded("torch", path)
    module = torch.jit.load(str(path / "model.pt"))
    x = ROWS.astype(np.float32)
    want = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(infer_v2(model, x), want, rtol=1e-6)
    assert model.platform == "pytorch_torchscript"


@pytest.mark.torch
def test_torchscript_read_only_input(trained: Callable[[str], Path]) -> None:
    pytest.importorskip("torch")
    model = loaded("torch", trained("torch"))
    x = ROWS.astype(np.float32)
    x.flags.writeable = False  # as decoded zero-copy from a binary request body
    assert infer_v2(model, x).shape == (4, 3)


@pytest.mark.torch
def test_torchscript_v1_instances(trained: Callable[[str], Path]) -> None:
    torch = pytest.importorskip("torch")
    path = trained("torch")
    model = loaded("torch", path)
    want = torch.jit.load(str(path / "model.pt"))(torch.tensor(ROWS.tolist())).detach().numpy()
    np.testing.assert_allclose(infer_v1(model, ROWS.tolist()), want, rtol=1e-5)


# ---- custom Python models -------------------------------------------------------------------

CUSTOM = """
from modelport import Model


class Doubler(Model):
    def __init__(self, name):
        super().__init__(name)
        self.loads = 0

    def load(self):
        self.loads += 1
        self.factor = 2
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [x * self.factor for x in payload["instances"]]}


if __name__ == "__main__":
    raise SystemExit("the __main__ block must not run on import")
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("as_dir", [False, True], ids=["file", "dir"])
def test_custom_model_file(tmp_path: Path, as_dir: bool) -> None:
    file = write(tmp_path / "doubler.py", CUSTOM)
    target = tmp_path if as_dir else file
    assert detect_format(target) == "custom"
    model = create_model("dbl", target)
    assert model.ready and model.loads == 1  # loaded once, by create_model
    assert model.name == "dbl"
    assert asyncio.run(model({"instances": [1, 2.5]})) == {"predictions": [2, 5.0]}


def test_custom_model_that_loads_in_init(tmp_path: Path) -> None:
    write(
        tmp_path / "model.py",
        """
        from modelport import Model

        class Eager(Model):
            def __init__(self, name):
                super().__init__(name)
                self.calls = 0
                self.load()

            def load(self):
                self.calls += 1
                self.ready = True
                return True
        """,
    )
    model = create_model("eager", tmp_path, "custom")
    assert model.calls == 1  # not loaded a second time


def test_custom_model_imports_are_not_counted(tmp_path: Path) -> None:
    # a Model subclass imported from elsewhere is not the file's own model
    write(
        tmp_path / "model.py",
        """
        from modelport import Model
        from modelport.runtimes.sklearn import SKLearnModel

        class Mine(Model):
            pass
        """,
    )
    assert type(create_model("mine", tmp_path)).__name__ == "Mine"


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("x = 1\n", r"exactly one Model subclass \(found: none\)"),
        (
            "from modelport import Model\nclass A(Model): pass\nclass B(Model): pass\n",
            r"exactly one Model subclass \(found: A, B\)",
        ),
        ("import not_a_real_module_xyz\n", "Importing .* failed: ModuleNotFoundError"),
        ("def broken(:\n", "Importing .* failed: SyntaxError"),
        (
            "from modelport import Model\nclass A(Model):\n    def load(self):\n"
            "        raise RuntimeError('weights missing')\n",
            "A failed to load: RuntimeError: weights missing",
        ),
        (
            "from modelport import Model\nclass A(Model):\n    def __init__(self, name, extra):\n"
            "        super().__init__(name)\n",
            "A failed to load: TypeError",
        ),
    ],
    ids=["none", "two", "import-error", "syntax", "load-fails", "bad-init"],
)
def test_broken_custom_models(tmp_path: Path, source: str, match: str) -> None:
    write(tmp_path / "model.py", source)
    with pytest.raises(ModelLoadError, match=match):
        create_model("c", tmp_path, "custom")


def test_custom_dir_with_several_files_uses_model_py(tmp_path: Path) -> None:
    write(tmp_path / "model.py", CUSTOM)
    write(tmp_path / "notes.py", "x = 1\n")
    assert asyncio.run(create_model("c", tmp_path, "custom")({"instances": [3]})) == {
        "predictions": [6]
    }


def test_custom_dir_with_several_files_and_no_model_py(tmp_path: Path) -> None:
    write(tmp_path / "a.py", CUSTOM)
    write(tmp_path / "b.py", "x = 1\n")
    with pytest.raises(ModelLoadError, match="one .py file or a model.py"):
        create_model("c", tmp_path, "custom")


def test_custom_model_importing_a_sibling_module(tmp_path: Path) -> None:
    write(tmp_path / "features_helper_mp.py", "def scale(x):\n    return x * 3\n")
    write(
        tmp_path / "model.py",
        """
        from modelport import Model
        from features_helper_mp import scale

        class Scaled(Model):
            def predict(self, payload, headers=None):
                return {"predictions": [scale(x) for x in payload["instances"]]}
        """,
    )
    model = create_model("s", tmp_path, "custom")
    assert asyncio.run(model({"instances": [1]})) == {"predictions": [3]}


# ---- format detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("model.joblib", "sklearn"),
        ("model.pkl", "sklearn"),
        ("model.pickle", "sklearn"),
        ("model.bst", "xgboost"),
        ("model.ubj", "xgboost"),
        ("model.json", "xgboost"),
        ("model.txt", "lightgbm"),
        ("model.onnx", "onnx"),
        ("model.pt", "pytorch"),
        ("model.pth", "pytorch"),
        ("model.py", "custom"),
    ],
)
def test_detect_format_of_a_file_and_its_dir(tmp_path: Path, filename: str, fmt: str) -> None:
    (tmp_path / filename).write_bytes(b"x")
    assert detect_format(tmp_path / filename) == fmt
    assert detect_format(tmp_path) == fmt


def test_detect_format_prefers_a_model_over_settings_json(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"x")
    (tmp_path / "model-settings.json").write_text("{}")
    (tmp_path / ".hidden.onnx").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.pt").write_bytes(b"x")
    assert detect_format(tmp_path) == "sklearn"


def test_detect_format_json_beside_ubj_is_xgboost(tmp_path: Path) -> None:
    (tmp_path / "model.ubj").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    assert detect_format(tmp_path) == "xgboost"


def test_detect_format_ambiguous_dir(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"x")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(UnsupportedModelFormat, match="several formats.*onnx, sklearn"):
        detect_format(tmp_path)


def test_detect_format_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelFormat, match="Pass --format"):
        detect_format(tmp_path)


def test_detect_format_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(UnsupportedModelFormat, match="Cannot tell the model format"):
        detect_format(tmp_path / "weights.h5")


def test_detect_format_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        detect_format(tmp_path / "nope")


def test_create_model_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelFormat, match="Unknown model format 'tensorflow'"):
        create_model("x", tmp_path, "tensorflow")


# ---- broken and missing model files ---------------------------------------------------------

GARBAGE = b"\x00\xffthis is not a model\x13\x37" * 8


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("model.joblib", "sklearn"),
        ("model.onnx", "onnx"),
        ("model.txt", "lightgbm"),
        ("model.json", "xgboost"),
        ("model.ubj", "xgboost"),
        pytest.param("model.pt", "pytorch", marks=pytest.mark.torch),
    ],
)
def test_garbage_model_file(tmp_path: Path, filename: str, fmt: str) -> None:
    if fmt == "pytorch":
        pytest.importorskip("torch")
    (tmp_path / filename).write_bytes(GARBAGE)
    model = create_model("broken", tmp_path, fmt)
    with pytest.raises(ModelLoadError, match=rf"Cannot load .*{filename}: \w+"):
        model.load()
    assert not model.ready


def test_model_dir_without_a_model_file(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(ModelLoadError, match=r"No model file \(.joblib, .pkl, .pickle\)"):
        create_model("x", tmp_path, "sklearn").load()


def test_model_dir_with_two_candidate_files(tmp_path: Path) -> None:
    (tmp_path / "a.joblib").write_bytes(b"x")
    (tmp_path / "b.joblib").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="More than one .joblib file.*a.joblib, b.joblib"):
        create_model("x", tmp_path, "sklearn").load()


def test_model_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        create_model("x", tmp_path / "gone", "onnx").load()
