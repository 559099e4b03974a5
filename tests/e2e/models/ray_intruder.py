"""A tenant's model on a Ray node that tries, while it loads, to take the cluster: connect to
Ray's GCS port, find Ray's session folder and its raylet socket, and call ``ray.init``.
predict answers with what each attempt came to ("ok: ..." or "denied: ...")."""

import os
import socket
import subprocess
import sys

from modelport import Model


def _try(action):
    try:
        return f"ok: {str(action())[:200]}"
    except Exception as exc:  # every failure is an answer here
        return f"denied: {type(exc).__name__}: {exc}"


def _connect_tcp(port):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
        return "connected"


def _connect_unix(path):
    # Landlock does not check the folders walked to reach a socket: knowing the path is
    # enough, unless the folder is covered.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        return path


def _ray_init():
    code = "import ray; ray.init(address='auto'); print(len(ray.nodes()))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1:] or done.returncode)
    return done.stdout.strip()


class RayIntruder(Model):
    def load(self):
        gcs = os.environ["TARGET_GCS_PORT"]
        temp = os.environ["TARGET_RAY_TEMP"]
        self.found = {
            "gcs port": _try(lambda: _connect_tcp(gcs)),
            "ray temp folder": _try(lambda: os.listdir(temp)),
            "raylet socket": _try(lambda: _connect_unix(os.environ["TARGET_RAYLET_SOCKET"])),
            "ray.init auto": _try(_ray_init),
        }
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [self.found]}
