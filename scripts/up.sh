#!/usr/bin/env bash
# Set kura up, ingest a document folder (default: the demo corpus in ../shared/docs) and serve
# the browser UI. Usage: scripts/up.sh [FOLDER]   (again later: only changed files are processed)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
folder=${1:-}
if [ -z "$folder" ]; then
  if [ -d ../shared/docs ]; then folder=../shared/docs
  else echo "[kura] no folder given and no ../shared/docs demo corpus; serving an empty kura"; fi
fi
if [ -n "$folder" ]; then
  echo "[kura] ingesting $folder"
  .venv/bin/kura ingest "$folder" --groups "${KURA_DEMO_GROUPS:-everyone}" || echo "[kura] nothing could be ingested from $folder (see the report above)"
fi
# First run only: create the 'admin' account and print its one-time password (never a default).
.venv/bin/kura users bootstrap 2>/dev/null || echo "[kura] sign in with an existing account (reset one: .venv/bin/kura users set-password NAME)"
exec .venv/bin/kura serve
