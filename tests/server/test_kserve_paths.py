"""KServe's module paths that sample models import, called directly: modelport.storage
(kserve_storage), modelport.utils.utils, modelport.logging, modelport.predictor_config.

The served behaviour is in test_kserve_samples_e2e.py; these pin the edges KServe defines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.model import Model, PredictorProtocol
from modelport.predictor_config import PredictorConfig, get_predictor_config, set_predictor_config
from modelport.protocol.infer import InferInput, InferRequest, InferResponse
from modelport.storage import Storage, StorageError
from modelport.utils.utils import generate_uuid, get_predict_input, get_predict_response
from tests.server.files_server import serve_directory

# ---- modelport.storage: KServe's Storage.download / download_files ---------------------------


@pytest.fixture
def model_tree(tmp_path: Path) -> Path:
    """A model directory: model.bin and sub/extra.txt."""
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_bytes(b"weights")
    (root / "sub" / "extra.txt").write_text("x")
    return root


@pytest.fixture
def remote(tmp_path: Path, model_tree: Path) -> Iterator[str]:
    """An HTTP server holding model.tar.gz (the model tree) and plain.bin."""
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_tree.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_tree)), recursive=False)
    (served / "plain.bin").write_bytes(b"new")
    with serve_directory(served) as url:
        yield url


def test_local_path_without_out_dir_is_used_in_place(model_tree: Path):
    assert Storage.download(str(model_tree)) == str(model_tree)
    assert Storage.download(f"file://{model_tree}") == str(model_tree)


def test_local_directory_is_linked_into_out_dir(model_tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert Storage.download(f"file://{model_tree}", str(out)) == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "sub"]
    assert (out / "model.bin").is_symlink()
    assert (out / "model.bin").resolve() == (model_tree / "model.bin").resolve()
    assert (out / "sub" / "extra.txt").read_text() == "x"


def test_local_single_archive_is_unpacked_into_out_dir(model_tree: Path, tmp_path: Path):
    holder = tmp_path / "holder"
    holder.mkdir()
    with tarfile.open(holder / "m.tgz", "w:gz") as tar:
        tar.add(model_tree / "model.bin", arcname="model.bin")
    out = tmp_path / "out"
    Storage.download(str(holder), str(out))
    assert [p.name for p in out.iterdir()] == ["model.bin"]
    assert (out / "model.bin").read_bytes() == b"weights"


def test_remote_archive_lands_unpacked_in_a_new_directory(remote: str):
    path = Path(Storage.download(f"{remote}/model.tar.gz"))
    try:
        # Only the model: no archive, and no trace of the download cache.
        assert sorted(p.name for p in path.iterdir()) == ["model.bin", "sub"]
        assert (path / "sub" / "extra.txt").read_text() == "x"
    finally:
        shutil.rmtree(path)


def test_remote_file_replaces_the_one_in_out_dir(remote: str, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "plain.bin").write_bytes(b"old")
    (out / "keep.txt").write_text("mine")
    assert Storage.download(f"{remote}/plain.bin", str(out)) == str(out)
    assert (out / "plain.bin").read_bytes() == b"new"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "plain.bin"]


def test_download_files_pairs_uris_with_directories(remote: str, model_tree: Path, tmp_path: Path):
    outs = [str(tmp_path / "a"), str(tmp_path / "b")]
    got = Storage.download_files([f"{remote}/plain.bin", str(model_tree)], outs)
    assert got == outs
    assert (tmp_path / "a" / "plain.bin").read_bytes() == b"new"
    assert (tmp_path / "b" / "model.bin").is_symlink()
    with pytest.raises(StorageError, match="2 storage URIs but 1 output"):
        Storage.download_files(["x", "y"], [str(tmp_path / "c")])


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("pvc://claim/model", "Cannot locate source uri pvc://claim/model for PVC"),
        ("ftp://host/model", "not supported"),
        ("/no/such/model", "does not exist"),
    ],
)
def test_unusable_uris_raise_storage_error(uri: str, message: str, tmp_path: Path):
    with pytest.raises(StorageError, match=message):
        Storage.download(uri, str(tmp_path / "out"))


# ---- modelport.utils.utils ---------------------------------------------------------------------


def v2_request(*inputs: InferInput, **parameters: object) -> InferRequest:
    return InferRequest("m", list(inputs), request_id=None, parameters=dict(parameters))


def test_generate_uuid_is_a_fresh_uuid4():
    first, second = generate_uuid(), generate_uuid()
    assert uuid.UUID(first).version == 4
    assert first != second


def test_get_predict_input_v1_shapes():
    np.testing.assert_array_equal(get_predict_input({"instances": [[1, 2]]}), [[1, 2]])
    # "inputs" wins over "instances", as in KServe.
    np.testing.assert_array_equal(get_predict_input({"inputs": [3], "instances": [4]}), [3])
    assert get_predict_input({"instances": ["a", "b"]}) == ["a", "b"]
    assert get_predict_input({"instances": []}).shape == (0,)


def test_get_predict_input_v2_first_input():
    numbers = InferInput("x", [2], "INT32", np.array([1, 2], dtype=np.int32))
    text = InferInput("t", [2], "BYTES", ["a", "b"])
    got = get_predict_input(v2_request(numbers, text))
    assert got.dtype == np.int32 and got.tolist() == [1, 2]
    assert get_predict_input(v2_request(text)) == ["a", "b"]


def test_get_predict_response_v1_and_v2():
    assert get_predict_response({"instances": [1]}, np.array([[1.5]]), "m") == {
        "predictions": [[1.5]]
    }
    assert get_predict_response({"instances": [1]}, ["a"], "m") == {"predictions": ["a"]}
    request = v2_request(InferInput("x", [1], "FP32", [1.0]))
    request.id = "r-1"
    response = get_predict_response(request, np.array([[1, 2]], dtype=np.int64), "m")
    assert isinstance(response, InferResponse)
    assert (response.id, response.model_name) == ("r-1", "m")
    out = response.outputs[0]
    assert (out.name, out.shape, out.datatype) == ("output-0", [1, 2], "INT64")
    text = get_predict_response(v2_request(), ["x", "yz"], "m").outputs[0]
    assert (text.shape, text.datatype, text.data) == ([2], "BYTES", ["x", "yz"])


def test_predict_helpers_refuse_other_payloads():
    with pytest.raises(InvalidInput, match="unsupported payload type"):
        get_predict_input("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="unsupported payload type"):
        get_predict_response([1], [1], "m")  # type: ignore[arg-type]


# ---- modelport.logging (in a child process: it configures the process's loggers) -------------


def log_output(config_arg: str) -> str:
    code = (
        "from modelport import logging\n"
        "from modelport.logging import logger\n"
        f"logging.configure_logging({config_arg})\n"
        "logger.info('hello from the model')\n"
        "logger.getChild('server').info('hello from the server')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr


def test_configure_logging_default_is_kserves_format():
    err = log_output("")
    assert " modelport INFO [<string>:<module>():4] hello from the model" in err
    # The server's loggers sit under the same one, as kserve's do under "kserve".
    assert " modelport.server INFO [<string>:<module>():5] hello from the server" in err


def test_configure_logging_reads_json_and_ini_files(tmp_path: Path):
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"f": {"format": "JSONCFG %(message)s"}},
        "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "f"}},
        "loggers": {"modelport": {"handlers": ["h"], "level": "INFO"}},
    }
    (tmp_path / "log.json").write_text(json.dumps(config))
    assert "JSONCFG hello from the model" in log_output(repr(str(tmp_path / "log.json")))
    (tmp_path / "log.ini").write_text(
        "[loggers]\nkeys=root,modelport\n[handlers]\nkeys=h\n[formatters]\nkeys=f\n"
        "[logger_root]\nhandlers=\n[logger_modelport]\nhandlers=h\nlevel=INFO\n"
        "qualname=modelport\npropagate=0\n"
        "[handler_h]\nclass=StreamHandler\nformatter=f\nargs=(sys.stderr,)\n"
        "[formatter_f]\nformat=INICFG %(message)s\n"
    )
    assert "INICFG hello from the model" in log_output(repr(str(tmp_path / "log.ini")))


# ---- predictor_config ---------------------------------------------------------------------------


@pytest.fixture
def shared_config() -> Iterator[None]:
    saved = get_predictor_config()
    yield
    set_predictor_config(saved)


def test_predictor_config_prefers_the_models_own_host(shared_config):
    set_predictor_config(PredictorConfig("shared:80", "v2", predictor_use_ssl=True))
    own = Model("m", predictor_host="own:90", protocol="v1").predictor_config
    assert (own.predictor_host, own.predictor_protocol) == ("own:90", "v1")
    shared = Model("m").predictor_config
    assert shared.predictor_base_url == "https://shared:80"
    assert shared.protocol == PredictorProtocol.REST_V2.value
    set_predictor_config(None)
    alone = Model("m").predictor_config
    assert (alone.predictor_host, alone.predictor_protocol) == (None, "v1")
