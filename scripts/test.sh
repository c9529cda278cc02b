#!/usr/bin/env bash
# One command: set up everything the tests need, then run the whole suite:
# ruff, unit and real-process tests, the notebooks under nbval, and the
# end-to-end browser test (JupyterLab + Debian chromium driven by Playwright).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_setup.sh test
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian chromium for the browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "==> chromium not found and cannot apt-get it: the browser test will be skipped"
  fi
fi
echo "==> ruff"
.venv/bin/ruff check workbench tests benchmarks data scripts
echo "==> pytest (unit, processes, notebooks, browser)"
exec .venv/bin/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
