#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: a project virtualenv with
# workbench installed (editable) and, for tests, the test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
extras="${1:-}"
stamp=".venv/.workbench-installed${extras:+-$extras}"
# reinstalled when the metadata or the C scanner (its source or headers) changes: the install compiles it
changed=""
for f in pyproject.toml setup.py workbench/load/_otlp_scan.c workbench/load/_*.h; do
  [ -f "$f" ] && [ "$f" -nt "$stamp" ] && changed=1
done
if [ ! -f "$stamp" ] || [ -n "$changed" ]; then
  echo "==> installing workbench${extras:+[$extras]} into .venv"
  # no pip cache: it would keep a second copy of every downloaded wheel, on a disk that can run full
  .venv/bin/python -m pip install --quiet --no-cache-dir --upgrade pip
  .venv/bin/python -m pip install --quiet --no-cache-dir -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
# bytecode, as a pip install of the package writes it: where PYTHONDONTWRITEBYTECODE is set, an editable
# checkout has none and every process compiles the modules again (~35 ms of each `import workbench.load`)
.venv/bin/python -m compileall -q workbench
