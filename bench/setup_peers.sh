#!/usr/bin/env bash
# Install the peer model servers, load generators and nginx used by the bench scenarios.
# Idempotent: re-running only installs what is missing.
#
#   bench/.venvs/kserve    kserve==0.21.0 kserve-storage==0.21.0 scikit-learn joblib
#                          + sklearnserver (upstream python/sklearnserver if its source is at
#                            bench/.venvs/src/sklearnserver, else bench/peers/kserve_sklearn.py)
#   bench/.venvs/mlserver  mlserver==1.7.1 mlserver-sklearn scikit-learn joblib "uvloop<0.22"
#   apt: wrk, nghttp2-client (h2load), nginx-light (the gateway benchmark's peer, with
#        auth_request), installed without starting the system service
#   bench/.venvs/rayserve  ray[serve]==2.60.0, scikit-learn and joblib at the versions of
#                          MODELPORT_PYTHON's, and modelport from this checkout (pip install -e)
#
# Env: PYTHON (interpreter for the venvs, default python3.11 or python3); MODELPORT_PYTHON
# (the interpreter that runs modelport, default <repo>/.venv/bin/python).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$BENCH/.venvs"
mkdir -p "$VENVS"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

log() { printf '[setup_peers] %s\n' "$*" >&2; }

# ---- load generators --------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v h2load >/dev/null 2>&1 || need_apt+=(nghttp2-client)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # RUNLEVEL=1: invoke-rc.d then starts no service (nginx would listen on port 80).
  $SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
else
  log "wrk, h2load and nginx present"
fi

# ---- helpers ----------------------------------------------------------------------
make_venv() {  # $1 = dir
  if [ ! -x "$1/bin/python" ]; then
    log "creating venv $1 with $PY"
    "$PY" -m venv "$1"
    pip_q "$1" --upgrade pip
  fi
}

pip_q() {  # $1 = venv, rest = pip install args; drops this machine's find-links noise
  local venv="$1"; shift
  "$venv/bin/python" -m pip install -q "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

has_version() {  # $1 = venv, $2 = dist, $3 = version
  local v
  v="$("$1/bin/python" -c "import importlib.metadata as m; print(m.version('$2'))" 2>/dev/null || true)"
  [ "$v" = "$3" ]
}

has_dist() {  # $1 = venv, $2 = dist
  "$1/bin/python" -c "import importlib.metadata as m; m.version('$2')" >/dev/null 2>&1
}

# ---- KServe 0.21.0 ----------------------------------------------------------------
KS="$VENVS/kserve"
make_venv "$KS"
if has_version "$KS" kserve 0.21.0 && has_version "$KS" kserve-storage 0.21.0 \
   && has_dist "$KS" scikit-learn && has_dist "$KS" joblib; then
  log "kserve 0.21.0 already installed"
else
  log "installing kserve 0.21.0 (takes a few minutes)"
  pip_q "$KS" "kserve==0.21.0" "kserve-storage==0.21.0" scikit-learn joblib
fi

SRC="$VENVS/src/sklearnserver"
if [ -f "$SRC/sklearnserver/__main__.py" ]; then
  if has_dist "$KS" sklearnserver; then
    log "sklearnserver (upstream source) already installed"
  else
    log "installing upstream sklearnserver from $SRC with --no-deps"
    pip_q "$KS" --no-deps "$SRC"
  fi
  commit="$(cat "$SRC/UPSTREAM_COMMIT" 2>/dev/null || echo unknown)"
  echo "upstream kserve python/sklearnserver (commit $commit), pip install --no-deps" \
    > "$KS/SKLEARNSERVER_SOURCE"
else
  log "upstream sklearnserver source not found at $SRC;"
  log "using the equivalent kserve.Model subclass bench/peers/kserve_sklearn.py"
  echo "equivalent kserve.Model subclass bench/peers/kserve_sklearn.py (upstream source absent)" \
    > "$KS/SKLEARNSERVER_SOURCE"
fi

# ---- MLServer 1.7.1 ---------------------------------------------------------------
ML="$VENVS/mlserver"
make_venv "$ML"
uv_ok=0
uvv="$("$ML/bin/python" -c "import importlib.metadata as m; print(m.version('uvloop'))" 2>/dev/null || true)"
if [ -n "$uvv" ] && "$ML/bin/python" - "$uvv" <<'EOF'
import sys
parts = [int(p) for p in sys.argv[1].split(".")[:2] if p.isdigit()]
sys.exit(0 if tuple(parts) < (0, 22) else 1)
EOF
then uv_ok=1; fi
if has_version "$ML" mlserver 1.7.1 && has_dist "$ML" mlserver-sklearn \
   && has_dist "$ML" scikit-learn && has_dist "$ML" joblib && [ "$uv_ok" = 1 ]; then
  log "mlserver 1.7.1 already installed"
else
  log "installing mlserver 1.7.1 (takes a few minutes)"
  pip_q "$ML" "mlserver==1.7.1" mlserver-sklearn scikit-learn joblib "uvloop<0.22"
fi

# ---- Ray Serve 2.60.0 (bench/ray.py) -----------------------------------------------
# One Ray cluster, started with this venv's `ray`, runs both modelport's Ray replicas and
# the Ray Serve deployment: its workers need modelport and the same scikit-learn as the
# `modelport up` driver, so that one pickled iris model loads everywhere.
RS="$VENVS/rayserve"
REPO="$(cd "$BENCH/.." && pwd)"
MP_PY="${MODELPORT_PYTHON:-$REPO/.venv/bin/python}"
sk_ver="$("$MP_PY" -c 'import sklearn; print(sklearn.__version__)')"
jl_ver="$("$MP_PY" -c 'import joblib; print(joblib.__version__)')"
make_venv "$RS"
if has_version "$RS" ray 2.60.0 && has_dist "$RS" fastapi && has_version "$RS" scikit-learn "$sk_ver" \
   && has_version "$RS" joblib "$jl_ver" && has_dist "$RS" modelport; then
  log "ray[serve] 2.60.0 already installed"
else
  log "installing ray[serve] 2.60.0, scikit-learn $sk_ver and modelport from $REPO"
  pip_q "$RS" "ray[serve]==2.60.0" "scikit-learn==$sk_ver" "joblib==$jl_ver" -e "$REPO"
fi

log "done:"
log "  kserve   $("$KS/bin/python" -c 'import importlib.metadata as m; print(m.version("kserve"))')  sklearnserver: $(cat "$KS/SKLEARNSERVER_SOURCE")"
log "  mlserver $("$ML/bin/python" -c 'import importlib.metadata as m; print(m.version("mlserver"), "mlserver-sklearn", m.version("mlserver-sklearn"))')"
log "  rayserve ray $("$RS/bin/python" -c 'import importlib.metadata as m; print(m.version("ray"), "scikit-learn", m.version("scikit-learn"))')"
log "  wrk: $(command -v wrk)  h2load: $(command -v h2load)"
