#!/usr/bin/env bash
# Set kura up with the test tools (Chromium for the browser tests included) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
