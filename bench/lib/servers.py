"""The servers under test and the configurations each is measured in: one table of
variants, one function per server that builds its model and its command line."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import models
from bench.lib.procs import free_ports

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
MODEL = models.MODEL_NAME


@dataclass(frozen=True)
class Variant:
    """One server in one configuration: a row of every serving table."""

    key: str
    server: str  # "modelport", "kserve" or "mlserver"
    label: str
    max_batch_size: int  # 1 = no adaptive batching
    batch_wait_ms: float
    access_log: bool
    modelport_args: tuple[str, ...] = ()

    @property
    def batching(self) -> str:
        if self.max_batch_size <= 1:
            return "off"
        return f"max {self.max_batch_size}, wait ≤ {self.batch_wait_ms:g} ms"


# What each peer does by default, from their code: KServe 0.21 and MLServer 1.7 log one
# line per request and batch nothing; modelport logs no request at --log-level info and
# batches scikit-learn calls up to 32 requests without waiting.
VARIANTS = (
    Variant("modelport", "modelport", "modelport (defaults)", 32, 0.0, False),
    Variant(
        "modelport-nobatch",
        "modelport",
        "modelport --max-batch-size 1",
        1,
        0.0,
        False,
        ("--max-batch-size", "1"),
    ),
    Variant(
        "modelport-like-peers",
        "modelport",
        "modelport --max-batch-size 1 --log-level debug",
        1,
        0.0,
        True,
        ("--max-batch-size", "1", "--log-level", "debug"),
    ),
    Variant("kserve", "kserve", "KServe sklearnserver (defaults)", 1, 0.0, True),
    Variant("mlserver", "mlserver", "MLServer (defaults)", 1, 0.0, True),
    Variant("mlserver-batching", "mlserver", "MLServer, adaptive batching", 32, 1.0, True),
)
VARIANT_KEYS = tuple(v.key for v in VARIANTS)


@dataclass(frozen=True)
class Interpreters:
    """The Python of modelport (run with the bench's own checkout first on PYTHONPATH) and
    the peers' virtualenvs."""

    modelport: Path
    peer_venvs: Path

    def of(self, server: str) -> Path:
        if server == "modelport":
            return self.modelport
        return self.peer_venvs / server / "bin" / "python"

    @property
    def grpc_client(self) -> Path:
        return self.peer_venvs / "kserve" / "bin" / "python"


def modelport_env() -> dict[str, str]:
    """The environment that makes `python -m modelport` import this checkout's modelport
    (a worktree's, not the one installed editable in the venv)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def dist_version(python: Path, dist: str, env: dict[str, str] | None = None) -> str | None:
    """The installed version of `dist` seen by `python`, or None."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env)
    return out.stdout.strip() if out.returncode == 0 else None


def modelport_source(python: Path) -> str:
    """Where the servers' `import modelport` comes from (proves the worktree is used)."""
    code = "import modelport; print(modelport.__file__)"
    out = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=modelport_env(), cwd="/"
    )
    if out.returncode != 0:
        raise RuntimeError(f"{python} cannot import modelport: {out.stderr[-400:]}")
    return out.stdout.strip()


def versions(py: Interpreters) -> dict[str, str | None]:
    """Versions of the three servers, and which sklearnserver KServe runs."""
    ks = py.of("kserve")
    source = py.peer_venvs / "kserve" / "SKLEARNSERVER_SOURCE"
    return {
        "modelport": dist_version(py.modelport, "modelport"),
        "modelport_source": modelport_source(py.modelport),
        "kserve": dist_version(ks, "kserve"),
        "sklearnserver": source.read_text().strip() if source.exists() else None,
        "mlserver": dist_version(py.of("mlserver"), "mlserver"),
        "mlserver_sklearn": dist_version(py.of("mlserver"), "mlserver-sklearn"),
    }


def build(python: Path, what: str, out: Path) -> None:
    """Run `bench/models.py WHAT OUT` with `python`, so that a pickled model is loaded by
    the scikit-learn that wrote it."""
    env = modelport_env()
    cmd = [str(python), str(BENCH / "models.py"), what, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"models.py {what} with {python} failed: {proc.stderr[-800:]}")


def prepare_model(variant: Variant, py: Interpreters, work: Path) -> tuple[Path, list[int]]:
    """The model folder `variant`'s server loads, and the classes it must predict."""
    out = work / "models" / variant.key
    if variant.server == "mlserver":
        build(py.of("mlserver"), "mlserver", out)
        _mlserver_batching(out / MODEL / "model-settings.json", variant)
        expected_file = models.expected_path(out / MODEL)
    else:
        out = out / "iris"
        build(py.of(variant.server), "iris", out)
        expected_file = models.expected_path(out)
    return out, list(json.loads(expected_file.read_text())["predictions"])


def _mlserver_batching(settings_file: Path, variant: Variant) -> None:
    """MLServer's adaptive batching is per model, in model-settings.json (seconds)."""
    settings = json.loads(settings_file.read_text())
    if variant.max_batch_size > 1:
        settings["max_batch_size"] = variant.max_batch_size
        settings["max_batch_time"] = variant.batch_wait_ms / 1000
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")


def command(
    variant: Variant, py: Interpreters, model_dir: Path, http: int, grpc: int, workers: int
) -> list[str]:
    """The command line that serves `model_dir` on the given ports."""
    if variant.server == "modelport":
        return [
            *(str(py.modelport), "-m", "modelport", "serve", str(model_dir), "--name", MODEL),
            *("--http-port", str(http), "--grpc-port", str(grpc), "--workers", str(workers)),
            *variant.modelport_args,
        ]
    if variant.server == "kserve":
        source = py.peer_venvs / "kserve" / "SKLEARNSERVER_SOURCE"
        upstream = source.exists() and source.read_text().startswith("upstream")
        entry = (
            ["-m", "sklearnserver"] if upstream else [str(BENCH / "peers" / "kserve_sklearn.py")]
        )
        return [
            *(str(py.of("kserve")), *entry, "--model_dir", str(model_dir)),
            *("--model_name", MODEL, "--http_port", str(http), "--grpc_port", str(grpc)),
            *("--workers", str(workers)),
        ]
    metrics = next(p for p in free_ports(3) if p not in (http, grpc))
    models.write_mlserver_settings(model_dir, http, grpc, metrics, workers)
    return [str(py.peer_venvs / "mlserver" / "bin" / "mlserver"), "start", str(model_dir)]
