"""A tenant's model that tries, while it loads, everything issue 9's attacker did; predict
answers with what each attempt came to ("ok: ..." or "denied: ...")."""

import http.client
import os
import socket
import subprocess

from modelport import Model


def _try(action):
    try:
        return f"ok: {str(action())[:200]}"
    except Exception as exc:  # every failure is an answer here
        return f"denied: {type(exc).__name__}: {exc}"


def _read(path):
    with open(path, "rb") as f:
        return f.read(64)


def _write(path):
    with open(path, "w") as f:
        f.write("intruder was here")
    return path


def _connect(port, key=None):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    conn.request("GET", "/v2/health/ready", headers={"modelport-replica-key": key} if key else {})
    return conn.getresponse().status


def _bind():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        return s.getsockname()


class Intruder(Model):
    def __init__(self, name):
        super().__init__(name)
        self.findings = {}

    def load(self):
        env = os.environ
        data = env["TARGET_DATA_DIR"]
        pid = int(env["TARGET_PLATFORM_PID"])
        attempts = {
            "platform environ": lambda: _read(f"/proc/{pid}/environ"),
            "platform cmdline": lambda: _read(f"/proc/{pid}/cmdline"),
            "platform memory": lambda: _read(f"/proc/{pid}/mem"),
            "identity db": lambda: _read(f"{data}/identity.db"),
            "control db": lambda: _read(f"{data}/control.db"),
            "data dir listing": lambda: os.listdir(data),
            "logs": lambda: os.listdir(f"{data}/logs"),
            "victim log": lambda: _read(env["TARGET_VICTIM_LOG"]),
            "victim model": lambda: _read(env["TARGET_VICTIM_MODEL"]),
            "other cache": lambda: os.listdir(f"{data}/cache"),
            "shadow": lambda: _read("/etc/shadow"),
            "root home": lambda: os.listdir("/root"),
            "write tmp": lambda: _write("/tmp/modelport-intruder-was-here"),
            "write data dir": lambda: _write(f"{data}/intruder"),
            "victim replica without key": lambda: _connect(env["TARGET_VICTIM_PORT"]),
            "victim replica guessed key": lambda: _connect(env["TARGET_VICTIM_PORT"], "guess"),
            "signal platform": lambda: os.kill(pid, 0),
            "listen": _bind,
            "setuid root": lambda: os.setuid(0),
            "shell": lambda: subprocess.run(["/bin/cat", f"{data}/identity.db"], check=True),
            # What it may do: its own folder, its own model, Python and the libraries.
            "own tmp": lambda: _write(os.path.join(env["TMPDIR"], "scratch")),
            "own model": lambda: _read(__file__),
            "numpy": lambda: __import__("numpy").ones(3).sum(),
        }
        # The platform's other processes: the zygote, other tenants' replicas.
        own = {os.getpid(), os.getppid()}
        for other in env.get("TARGET_OTHER_PIDS", "").split(","):
            if other and int(other) not in own:
                attempts[f"environ of {other}"] = lambda o=other: _read(f"/proc/{o}/environ")
                attempts[f"memory of {other}"] = lambda o=other: _read(f"/proc/{o}/mem")
        self.findings = {name: _try(action) for name, action in attempts.items()}
        self.findings["uid"] = str(os.getuid())
        self.findings["secrets in environment"] = sorted(
            k
            for k in os.environ
            if k.startswith(("MODELPORT_ADMIN", "MODELPORT_REPLICA", "AWS_", "PYTHON", "LD_"))
        )
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [self.findings]}
