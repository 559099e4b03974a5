"""nginx as the peer of modelport's gateway: `auth_request` asks modelport's `/authz`
(modelport/gateway/check.py) about each request and proxies the allowed ones to the model
server, the way nginx fronts oauth2-proxy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.lib import procs

CONFIG = """\
worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {access_log};
  client_body_temp_path {work}/tmp/body;
  proxy_temp_path {work}/tmp/proxy;
  fastcgi_temp_path {work}/tmp/fastcgi;
  uwsgi_temp_path {work}/tmp/uwsgi;
  scgi_temp_path {work}/tmp/scgi;
  upstream model {{ server 127.0.0.1:{model_port}; keepalive 64; }}
  upstream authz {{ server 127.0.0.1:{authz_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location = /healthz {{ return 200 "ok"; }}
    location {prefix} {{
      auth_request /_authz;
      auth_request_set $userid $upstream_http_kubeflow_userid;
      auth_request_set $groups $upstream_http_kubeflow_groups;
      proxy_set_header kubeflow-userid $userid;
      proxy_set_header kubeflow-groups $groups;
      proxy_set_header Authorization "";
      proxy_set_header Connection "";
      proxy_http_version 1.1;
      proxy_pass http://model/;
    }}
    location = /_authz {{
      internal;
      proxy_pass http://authz/authz;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header Connection "";
      proxy_http_version 1.1;
    }}
  }}
}}
"""


def version() -> str | None:
    """`nginx version: nginx/1.22.1`, or None when nginx is not installed."""
    if not shutil.which("nginx"):
        return None
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=30)
    return (out.stderr or out.stdout).strip() or None


def start(
    work: Path, *, port: int, model_port: int, authz_port: int, prefix: str, workers: int
) -> subprocess.Popen[bytes]:
    """nginx in the foreground with its own config, temp and log files under `work`;
    `prefix` (ending in /) is stripped before proxying to the model server."""
    work.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(
        CONFIG.format(
            workers=workers,
            work=work,
            access_log="off",
            model_port=model_port,
            authz_port=authz_port,
            port=port,
            prefix=prefix,
        )  # fmt: skip
    )
    cmd = ["nginx", "-p", str(work), "-e", str(work / "nginx-error.log"), "-c", str(conf)]
    proc, _ = procs.start_ready("nginx", cmd, port, "/healthz", work.parent)
    return proc
