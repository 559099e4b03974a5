"""Where every replica starts, forked by the zygote or run as ``python -m
modelport.control.backends.launch``: read the launch request, confine the process, then
serve the model (``modelport.server.entry``, not through the CLI).

The request travels in a memory file handed over as a file descriptor (the zygote passes it
on unread), never on a command line or in the initial environment: ``/proc/PID/cmdline`` is
readable by every local user, and the request holds the replica's key and the tenant's
environment variables. Its fields:
  serve         path, name, format and ServerSettings fields of the model to serve
  env           the replica's whole environment
  key           the replica key the gateway will send (see modelport/protocol/replica_key.py)
  confinement   a Confinement as a dict, or null for none
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from modelport.control.backends import confine
from modelport.errors import ModelportError
from modelport.settings import REPLICA_KEY_ENV


def read_request(fd: int) -> dict[str, Any]:
    """The request in ``fd`` (read from its start, then closed)."""
    with os.fdopen(fd, "rb") as f:
        f.seek(0)
        request: dict[str, Any] = json.loads(f.read())
    return request


def run(request: dict[str, Any]) -> NoReturn:
    """Confine this process as the request says, then serve; never returns."""
    raw = request.get("confinement")
    if raw:
        try:
            applied = confine.apply(confine.Confinement.from_dict(raw))
        except OSError as exc:
            print(f"error: could not confine the model server: {exc}", file=sys.stderr)
            os._exit(70)
        for note in applied.notes:
            print(f"warning: {note}", file=sys.stderr)
    confine.die_with_parent(signal.SIGTERM)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request.get("env") or {}).items()})
    if request.get("key"):
        os.environ[REPLICA_KEY_ENV] = str(request["key"])
    # KServe-style model code may parse sys.argv (model_server.parser): give it none.
    sys.argv = ["modelport-replica"]
    code = 1
    try:
        code = _serve(request["serve"])
    except ModelportError as exc:  # a model that does not load, a port taken: one line
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 — report anything, then leave without cleanup
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _serve(serve: dict[str, Any]) -> int:
    from modelport.server.entry import serve_path
    from modelport.settings import ServerSettings

    # Built here, after the environment is the replica's: the key comes from it.
    settings = ServerSettings(**serve["settings"])
    return serve_path(Path(serve["path"]), str(serve["name"]), str(serve["format"]), settings)


def main() -> NoReturn:
    request = read_request(os.dup(0))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    run(request)


if __name__ == "__main__":
    main()
