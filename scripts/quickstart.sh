#!/usr/bin/env bash
# Quick start, end to end on embedded defaults: install modelport, train a small
# scikit-learn model, start the platform (`modelport up`: identity provider, gateway,
# controller), log in, deploy the model with KServe's InferenceService YAML, infer through
# the gateway with `modelport infer` and with curl + a Bearer token, print the answers,
# and stop everything.
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

DATA="$WORK/platform"
rm -rf "$DATA"
export MODELPORT_ADMIN_EMAIL="admin@example.com"
export MODELPORT_ADMIN_PASSWORD="$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
export MODELPORT_CONFIG_DIR="$WORK/client-config"
echo "==> starting the platform: modelport up --port 0 --data-dir $DATA"
echo "    (admin $MODELPORT_ADMIN_EMAIL, generated password $MODELPORT_ADMIN_PASSWORD)"
LOG="$WORK/up.log"
modelport up --port 0 --data-dir "$DATA" >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q "^modelport platform:" "$LOG" && break
  kill -0 $PID 2>/dev/null || { cat "$LOG"; echo "error: the platform did not start" >&2; exit 1; }
  sleep 0.1
done
cat "$LOG"
export MODELPORT_URL=$(sed -n 's/^modelport platform: \(http[^ ]*\).*/\1/p' "$LOG")

echo "==> without credentials the gateway refuses (API clients get 401):"
curl -s -o /dev/null -w "    HTTP %{http_code}\n" -H "Accept: application/json" \
  -H "Host: sklearn-iris.default.example.com" "$MODELPORT_URL/v2/models/sklearn-iris"
echo "==> modelport login $MODELPORT_URL"
echo "$MODELPORT_ADMIN_PASSWORD" | modelport login "$MODELPORT_URL" -u "$MODELPORT_ADMIN_EMAIL" --password-stdin

cat >"$WORK/sklearn-iris.yaml" <<YAML
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: file://$WORK/iris
YAML
echo "==> modelport apply -f $WORK/sklearn-iris.yaml  (the same file KServe applies)"
modelport apply -f "$WORK/sklearn-iris.yaml"
for _ in $(seq 1 300); do
  modelport get isvc sklearn-iris | grep -q " True " && break
  sleep 0.2
done
modelport get isvc

BODY='{"id": "quickstart", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
        "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}]}'
echo "==> modelport infer sklearn-iris -d '{\"instances\": [[5.1, 3.5, 1.4, 0.2]]}'"
modelport infer sklearn-iris -d '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
echo "==> curl -H \"Authorization: Bearer \$(modelport token)\" -H \"Host: sklearn-iris.default.example.com\" -d @body \$MODELPORT_URL/v2/models/sklearn-iris/infer"
ANSWER=$(curl -sf -H "Authorization: Bearer $(modelport token)" \
  -H "Host: sklearn-iris.default.example.com" -H "Content-Type: application/json" \
  -d "$BODY" "$MODELPORT_URL/v2/models/sklearn-iris/infer")
echo "$ANSWER"
python -c '
import json, sys
names = ["setosa", "versicolor", "virginica"]
print("predicted classes:", [names[i] for i in json.loads(sys.argv[1])["outputs"][0]["data"]])
' "$ANSWER"
echo "==> done; stopping the platform (its model servers stop with it)."
echo "    Run it yourself with: modelport up   (see README.md)"
