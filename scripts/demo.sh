#!/usr/bin/env bash
# One command: set up, then run the whole loop on the bundled sample.
# With a display it opens JupyterLab at the quickstart; without one (CI, a server)
# it executes the quickstart headlessly and writes an HTML copy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_setup.sh
exec .venv/bin/workbench demo "$@"
