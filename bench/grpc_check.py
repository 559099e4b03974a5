"""Send one ModelInfer with a real gRPC client and print the decoded response as JSON.

Run with an interpreter that has grpcio and kserve (bench/.venvs/kserve/bin/python):
    python bench/grpc_check.py 127.0.0.1:PORT [MODEL_NAME]
Exit status 0 when the call succeeded (grpc status OK), 1 otherwise.
"""

import json
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pbg
    from models import grpc_request

    target = sys.argv[1]
    req = grpc_request()
    if len(sys.argv) > 2:
        req.model_name = sys.argv[2]
    with grpc.insecure_channel(target) as ch:
        stub = pbg.GRPCInferenceServiceStub(ch)
        try:
            resp = stub.ModelInfer(req, timeout=10)
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": str(e.code()), "details": e.details()}))
            return 1
    outputs = []
    for i, out in enumerate(resp.outputs):
        data = None
        c = out.contents
        for field in (
            "int64_contents",
            "int_contents",
            "fp32_contents",
            "fp64_contents",
            "uint_contents",
            "uint64_contents",
            "bool_contents",
        ):
            vals = list(getattr(c, field))
            if vals:
                data = vals
                break
        if data is None and i < len(resp.raw_output_contents):
            raw = resp.raw_output_contents[i]
            fmt = {"INT64": "q", "INT32": "i", "FP32": "f", "FP64": "d"}.get(out.datatype)
            if fmt:
                n = len(raw) // struct.calcsize(fmt)
                data = list(struct.unpack(f"<{n}{fmt}", raw))
        outputs.append(
            {"name": out.name, "datatype": out.datatype, "shape": list(out.shape), "data": data}
        )
    print(
        json.dumps(
            {
                "ok": True,
                "model_name": resp.model_name,
                "outputs": outputs,
                "response_length": len(resp.SerializeToString()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
