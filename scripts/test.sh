#!/usr/bin/env bash
# Install modelport with every runtime and the test tools, then lint and run the test suite.
# Extra arguments go to pytest (e.g. ./scripts/test.sh -k grpc).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"

echo "==> installing modelport[all,test]"
pip install -q -e ".[all,test]"
# PyTorch is optional (modelport[torch]); the CPU build of this version installs quickly here.
if [ "${MODELPORT_TEST_TORCH:-1}" = "1" ] && ! python -c "import torch" 2>/dev/null; then
  echo "==> installing torch==2.13.0 (CPU) for the TorchScript runtime tests"
  pip install -q "torch==2.13.0" || echo "warning: torch did not install; its tests will be skipped"
fi

# The store's tests run on a real PostgreSQL server too (started by the tests themselves).
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "==> installing postgresql (server programs for the store tests)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  else sudo apt-get install -y -qq postgresql >/dev/null; fi
fi

# Browser tests drive Debian's chromium through Playwright (`playwright install` cannot
# download browsers here).
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium (browser tests)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get install -y -qq chromium >/dev/null; fi
fi

echo "==> ruff"
ruff check modelport tests examples bench
ruff format --check modelport tests examples bench

echo "==> import layers (docs/architecture.md)"
lint-imports

echo "==> mypy --strict (pyproject.toml [tool.mypy])"
python -m mypy

echo "==> pytest"
python -m pytest "$@"
