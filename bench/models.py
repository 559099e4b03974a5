"""Build the models and request bodies used by the bench scenarios.

Each subcommand is run with the interpreter that has the needed library, so that a pickled
model is always loaded by the same scikit-learn version that wrote it:

    python bench/models.py iris OUT_DIR            # OUT_DIR/model.joblib, OUT_DIR.expected.json
    python bench/models.py mlserver OUT_DIR        # OUT_DIR/settings.json, OUT_DIR/sklearn-iris/
    python bench/models.py onnx OUT_DIR            # OUT_DIR/model.onnx (onnx helper API)
    python bench/models.py torchscript OUT_DIR [--depth N --width W]   # OUT_DIR/model.pt
    python bench/models.py time-model MODEL_FILE   # in-process call time, 1 vs 32 rows (JSON)
    python bench/models.py binary-body OUT_FILE    # 4 MiB FP32 binary-extension request body
    python bench/models.py grpc-body OUT_FILE      # framed ModelInferRequest (needs kserve's pb2)

`all` builds everything it can with the current interpreter into bench/.work/ (default).
Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE / ".work"

MODEL_NAME = "sklearn-iris"
IRIS_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]

V2_BODY = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
V1_BODY = {"instances": IRIS_ROWS}

BINARY_ELEMENTS = 1_048_576  # 4 MiB of FP32
MLP_IN, MLP_HIDDEN, MLP_OUT = 4, 64, 3
# TorchScript MLP: 4→W, then DEPTH × (Linear(W, W) + ReLU), →3. Each of its ~2·DEPTH
# operators costs ~1.3 µs of TorchScript dispatch whatever the batch, so one call costs a few
# hundred µs for 1 row and not much more for 32 (see `time-model`).
TS_WIDTH, TS_DEPTH = 32, 150


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


# --------------------------------------------------------------------------- sklearn iris
def build_iris(out: Path) -> Path:
    """Train LogisticRegression on sklearn's bundled iris data; write model.joblib."""
    import joblib
    import numpy as np
    import sklearn
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]  # no stubs, no py.typed
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    out.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000, random_state=0)
    model.fit(x, y)
    joblib.dump(model, out / "model.joblib")
    expected = model.predict(np.asarray(IRIS_ROWS, dtype=np.float32)).tolist()
    # kept beside (not inside) the model dir: servers must see only model.joblib there
    _write_json(
        expected_path(out),
        {"predictions": expected, "sklearn": sklearn.__version__},
    )
    return out / "model.joblib"


def expected_path(model_dir: Path) -> Path:
    return model_dir.with_name(model_dir.name + ".expected.json")


# --------------------------------------------------------------------------- MLServer folder
def build_mlserver(
    out: Path,
    http_port: int = 8080,
    grpc_port: int = 8081,
    metrics_port: int = 8082,
    workers: int = 1,
) -> Path:
    """MLServer repository: settings.json, sklearn-iris/{model-settings.json,model.joblib}."""
    model_dir = out / MODEL_NAME
    if not (model_dir / "model.joblib").exists():
        build_iris(model_dir)
    write_mlserver_settings(out, http_port, grpc_port, metrics_port, workers)
    _write_json(
        model_dir / "model-settings.json",
        {
            "name": MODEL_NAME,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        },
    )
    return out


def write_mlserver_settings(
    out: Path, http_port: int, grpc_port: int, metrics_port: int, workers: int
) -> None:
    _write_json(
        out / "settings.json",
        {
            "host": "127.0.0.1",
            "http_port": http_port,
            "grpc_port": grpc_port,
            "metrics_port": metrics_port,
            "parallel_workers": workers,
        },
    )


# --------------------------------------------------------------------------- ONNX MLP
def build_onnx(out: Path, seed: int = 0) -> Path:
    """4→64→64→3 MLP (Gemm+Relu), random weights, dynamic batch, input "input", FP32."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name: str, shape: tuple[int, ...]) -> Any:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * 0.3).astype(np.float32), name=name
        )

    inits = [
        init("w1", (MLP_IN, MLP_HIDDEN)),
        init("b1", (MLP_HIDDEN,)),
        init("w2", (MLP_HIDDEN, MLP_HIDDEN)),
        init("b2", (MLP_HIDDEN,)),
        init("w3", (MLP_HIDDEN, MLP_OUT)),
        init("b3", (MLP_OUT,)),
    ]
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "w2", "b2"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["a2"]),
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", MLP_IN])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", MLP_OUT])],
        initializer=inits,
    )
    # opset 17 / IR 8 keep the file loadable by older onnxruntime releases too
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out / "model.onnx")
    # reference output for mlp_body(), computed with numpy (Gemm: A @ B + C)
    w = {t.name: numpy_helper.to_array(t) for t in inits}
    x = np.asarray([mlp_body()["inputs"][0]["data"]], dtype=np.float32)
    a1 = np.maximum(x @ w["w1"] + w["b1"], 0)
    a2 = np.maximum(a1 @ w["w2"] + w["b2"], 0)
    y = a2 @ w["w3"] + w["b3"]
    _write_json(expected_path(out), {"output": y.ravel().tolist()})
    return out / "model.onnx"


# --------------------------------------------------------------------------- TorchScript MLP
def build_torchscript(
    out: Path, depth: int = TS_DEPTH, width: int = TS_WIDTH, seed: int = 0
) -> Path:
    """Deep narrow MLP, torch.jit.script + torch.jit.save as OUT/model.pt; fixed-seed weights.

    He-normal weights keep the activations O(1) through the depth (PyTorch's default init
    would shrink them to the last bias, which would make the output check meaningless).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    dims = [MLP_IN] + [width] * (depth + 1) + [MLP_OUT]
    layers: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        lin = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(fan_out, fan_in, generator=gen) * (2.0 / fan_in) ** 0.5)
            lin.bias.copy_(torch.randn(fan_out, generator=gen) * 0.05)
        layers.append(lin)
        if i < len(dims) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).eval()
    scripted = torch.jit.script(model)
    out.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(out / "model.pt"))
    # reference output for mlp_body(), from the eager module
    x = torch.tensor([mlp_body()["inputs"][0]["data"]], dtype=torch.float32)
    with torch.no_grad():
        y = model(x)
    _write_json(
        expected_path(out),
        {
            "output": y.ravel().tolist(),
            "depth": depth,
            "width": width,
            "linear_layers": depth + 2,
            "parameters": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__,
        },
    )
    return out / "model.pt"


# --------------------------------------------------------------------------- in-process timing
def time_model(
    model_file: Path, rows: tuple[int, ...] = (1, 32), calls: int = 400
) -> dict[str, Any]:
    """Median in-process time of one call at each batch size, with one library thread.

    Runs the model the way modelport's runtime does (torch: set_num_threads(1) and
    inference_mode; ONNX Runtime: one intra-op and one inter-op thread), without the server.
    """
    import statistics
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    if model_file.suffix in (".pt", ".pth"):
        import torch

        torch.set_num_threads(1)
        module = torch.jit.load(str(model_file), map_location="cpu").eval()
        lib = f"torch {torch.__version__}"

        def call(x: Any) -> None:
            with torch.inference_mode():
                module(torch.from_numpy(x))

    else:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = onnxruntime.InferenceSession(
            str(model_file), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        name = sess.get_inputs()[0].name
        lib = f"onnxruntime {onnxruntime.__version__}"

        def call(x: Any) -> None:
            sess.run(None, {name: x})

    out: dict[str, Any] = {"library": lib, "threads": 1, "calls": calls}
    for n in rows:
        x = rng.standard_normal((n, MLP_IN)).astype(np.float32)
        for _ in range(50):  # warm-up (TorchScript profiles its first runs)
            call(x)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            call(x)
            times.append(time.perf_counter() - t0)
        out[f"rows_{n}_us"] = round(statistics.median(times) * 1e6, 1)
    return out


def mlp_body() -> dict[str, Any]:
    """One row per request: the case adaptive batching is for."""
    return {
        "inputs": [
            {
                "name": "input",
                "shape": [1, MLP_IN],
                "datatype": "FP32",
                "data": [0.5, -1.0, 0.25, 2.0],
            }
        ]
    }


# --------------------------------------------------------------------------- binary extension
def binary_body(elements: int = BINARY_ELEMENTS) -> tuple[bytes, int]:
    """Return (body, json_header_length) for a binary tensor extension request."""
    nbytes = elements * 4
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, elements],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        },
        separators=(",", ":"),
    ).encode()
    # deterministic, non-trivial float32 payload without numpy
    chunk = struct.pack("<1024f", *[float(i % 97) * 0.5 for i in range(1024)])
    raw = chunk * (elements // 1024) + chunk[: (elements % 1024) * 4]
    assert len(raw) == nbytes
    return header + raw, len(header)


def build_binary_body(out_file: Path) -> dict[str, Any]:
    body, hlen = binary_body()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(body)
    meta = {
        "json_header_length": hlen,
        "body_length": len(body),
        "tensor_bytes": BINARY_ELEMENTS * 4,
    }
    _write_json(out_file.with_suffix(".meta.json"), meta)
    return meta


# --------------------------------------------------------------------------- gRPC body
def grpc_request() -> Any:
    """ModelInferRequest for the iris rows, built with kserve's generated protobuf module."""
    # kserve is installed only in the peer venv that runs this function
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # type: ignore[import-not-found]

    req = pb.ModelInferRequest(model_name=MODEL_NAME)
    inp = req.inputs.add()
    inp.name = "input-0"
    inp.datatype = "FP32"
    inp.shape.extend([2, 4])
    inp.contents.fp32_contents.extend([v for row in IRIS_ROWS for v in row])
    return req


def build_grpc_body(out_file: Path) -> dict[str, Any]:
    msg = grpc_request().SerializeToString()
    framed = b"\x00" + struct.pack(">I", len(msg)) + msg
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(framed)
    return {"message_length": len(msg), "framed_length": len(framed)}


# --------------------------------------------------------------------------- JSON bodies
def build_json_bodies(work: Path) -> None:
    bodies = work / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    (bodies / "v2.json").write_text(json.dumps(V2_BODY, separators=(",", ":")))
    (bodies / "v1.json").write_text(json.dumps(V1_BODY, separators=(",", ":")))
    (bodies / "mlp.json").write_text(json.dumps(mlp_body(), separators=(",", ":")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "what",
        choices=[
            "iris",
            "mlserver",
            "onnx",
            "torchscript",
            "time-model",
            "binary-body",
            "grpc-body",
            "json-bodies",
            "all",
        ],
    )
    p.add_argument("out", nargs="?", default=None, help="output dir/file")
    p.add_argument("--depth", type=int, default=TS_DEPTH, help="torchscript: hidden layers")
    p.add_argument("--width", type=int, default=TS_WIDTH, help="torchscript: hidden width")
    a = p.parse_args(argv)
    work = Path(os.environ.get("BENCH_WORK", DEFAULT_WORK))
    if a.what == "iris":
        print(build_iris(Path(a.out or work / "iris")))
    elif a.what == "mlserver":
        print(build_mlserver(Path(a.out or work / "mlserver")))
    elif a.what == "onnx":
        print(build_onnx(Path(a.out or work / "mlp")))
    elif a.what == "torchscript":
        print(build_torchscript(Path(a.out or work / "mlp-torch"), a.depth, a.width))
    elif a.what == "time-model":
        if not a.out:
            p.error("time-model needs MODEL_FILE")
        print(json.dumps(time_model(Path(a.out))))
    elif a.what == "binary-body":
        print(json.dumps(build_binary_body(Path(a.out or work / "bodies" / "binary.bin"))))
    elif a.what == "grpc-body":
        print(json.dumps(build_grpc_body(Path(a.out or work / "bodies" / "grpc_iris.bin"))))
    elif a.what == "json-bodies":
        build_json_bodies(Path(a.out) if a.out else work)
    else:  # all: whatever this interpreter can build
        build_json_bodies(work)
        build_binary_body(work / "bodies" / "binary.bin")
        builders: list[tuple[str, Callable[[Path], object], Path]] = [
            ("iris", build_iris, work / "iris"),
            ("onnx", build_onnx, work / "mlp"),
            ("torchscript", build_torchscript, work / "mlp-torch"),
            ("grpc-body", build_grpc_body, work / "bodies" / "grpc_iris.bin"),
        ]
        for name, build, out in builders:
            try:
                build(out)
                print(f"built {name}")
            except ImportError as e:
                print(f"skipped {name}: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
