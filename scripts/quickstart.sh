#!/usr/bin/env bash
# Quick start, end to end on embedded defaults: install modelport, train a small
# scikit-learn model, serve it, call it over V2 and V1 REST, then put the authenticating
# gateway (with its Dex-compatible identity provider) in front, log in, infer through it
# with a Bearer token, print the answers, and stop everything.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"

if ! command -v curl >/dev/null; then
  echo "==> installing curl"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq curl >/dev/null
  else sudo apt-get install -y -qq curl >/dev/null; fi
fi
echo "==> installing modelport"
pip install -q -e .

WORK="$ROOT/.quickstart"
mkdir -p "$WORK/iris"
echo "==> training an iris classifier into $WORK/iris/model.joblib"
python - "$WORK/iris" <<'PY'
import sys
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

x, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), f"{sys.argv[1]}/model.joblib")
PY

echo "==> starting: modelport serve $WORK/iris --name sklearn-iris --http-port 0 --grpc-port 0"
LOG="$WORK/serve.log"
modelport serve "$WORK/iris" --name sklearn-iris --http-port 0 --grpc-port 0 >"$LOG" 2>&1 &
PID=$!
GW_PID=""
trap 'kill $PID $GW_PID 2>/dev/null; wait $PID $GW_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q "metrics" "$LOG" && break
  kill -0 $PID 2>/dev/null || { cat "$LOG"; echo "error: the server did not start" >&2; exit 1; }
  sleep 0.1
done
cat "$LOG"
URL=$(sed -n 's/^  REST *\(http[^ ]*\).*/\1/p' "$LOG")

BODY='{"id": "quickstart", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
        "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}]}'
echo "==> V2 infer: POST $URL/v2/models/sklearn-iris/infer"
python - "$URL" "$BODY" <<'PY'
import json, sys, urllib.request

url, body = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"{url}/v2/models/sklearn-iris/infer", data=body.encode(),
                             headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req))
print(json.dumps(answer))
names = ["setosa", "versicolor", "virginica"]
print("predicted classes:", [names[i] for i in answer["outputs"][0]["data"]])
req = urllib.request.Request(f"{url}/v1/models/sklearn-iris:predict",
                             data=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                             headers={"Content-Type": "application/json"})
print("V1 predict:", json.load(urllib.request.urlopen(req)))
PY

echo "==> protecting it: modelport gateway --upstream $URL (identity provider at /dex)"
DATA="$WORK/platform"
rm -rf "$DATA"
ADMIN_EMAIL="admin@example.com"
ADMIN_PASSWORD="$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
echo "$ADMIN_PASSWORD" | modelport users add "$ADMIN_EMAIL" --admin --password-stdin --data-dir "$DATA"
echo "    generated password for $ADMIN_EMAIL: $ADMIN_PASSWORD"
GW_LOG="$WORK/gateway.log"
modelport gateway --upstream "$URL" --data-dir "$DATA" --port 0 >"$GW_LOG" 2>&1 &
GW_PID=$!
for _ in $(seq 1 300); do
  grep -q "discovery" "$GW_LOG" && break
  kill -0 $GW_PID 2>/dev/null || { cat "$GW_LOG"; echo "error: the gateway did not start" >&2; exit 1; }
  sleep 0.1
done
GW=$(sed -n 's/^modelport gateway: \(http[^ ]*\).*/\1/p' "$GW_LOG")
echo "    gateway at $GW"
echo "==> without credentials the gateway refuses (API clients get 401):"
curl -s -o /dev/null -w "    HTTP %{http_code}\n" -H "Accept: application/json" "$GW/v2/models/sklearn-iris"
export MODELPORT_CONFIG_DIR="$WORK/client-config"
echo "==> modelport login $GW"
echo "$ADMIN_PASSWORD" | modelport login "$GW" --username "$ADMIN_EMAIL" --password-stdin
echo "==> curl -H \"Authorization: Bearer \$(modelport token)\" -d @body $GW/v2/models/sklearn-iris/infer"
curl -s -H "Authorization: Bearer $(modelport token "$GW")" -H "Content-Type: application/json" \
  -d "$BODY" "$GW/v2/models/sklearn-iris/infer"
echo
echo "==> done; everything is stopped. Serve your own model with: modelport serve PATH --name NAME"
