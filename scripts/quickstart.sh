#!/usr/bin/env bash
# Quick start, end to end on embedded defaults: install modelport, train a small
# scikit-learn model, serve it, call it over V2 REST and V1 REST, print the answers, stop.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"

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
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
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
echo "==> done; the server is stopped. Serve your own model with: modelport serve PATH --name NAME"
