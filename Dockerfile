# syntax=docker/dockerfile:1
#
# WaveNet inference server: `wavenet serve` with the bundled models on port 8000.
#
#   CPU (default):  docker build -t wavenet-server .
#   CUDA:           docker build -t wavenet-server:cuda \
#                     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#                   (the CUDA wheels bring their own CUDA libraries; the host needs the NVIDIA
#                   driver and the NVIDIA Container Toolkit; run with `--gpus all`.)
#                   A CUDA base image works too, e.g.
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
#                   (python3 and python3-venv are installed from apt when the base lacks them).
#   Offline, from a local wheel folder and any Debian bookworm image with python3:
#                   put the wheels (torch, every pin in constraints.txt, setuptools) in ./wheels,
#                   docker build --build-arg BASE_IMAGE=<your bookworm image with python3> \
#                     --build-arg PIP_EXTRA_ARGS="--no-index --find-links /wheels" .
#                   (with network access, "--find-links /wheels" alone takes what is there and
#                   fetches the rest.)
#                   (./wheels is bind-mounted into the pip steps; it is empty in a clone, and a
#                   build that does not use it works the same.)
#
# Build arguments:
#   BASE_IMAGE      any Debian/Ubuntu image with (or able to apt-get) python3 3.10-3.12;
#                   only `python3`, `python3 -m venv` and /opt/venv are relied on.
#   TORCH_SPEC      the torch requirement                 default torch==2.13.0
#   TORCH_INDEX     index torch comes from (empty: pip's default index / PIP_EXTRA_ARGS)
#                   default https://download.pytorch.org/whl/cpu (the CPU-only wheel)
#   PIP_EXTRA_ARGS  extra options for every pip install, e.g. "--find-links /wheels"
#   EXTRAS          the project's optional extras, e.g. "ray" for Ray Serve scale-out
#                   (docker-compose.yml's `ray` profile, deploy/)         default none

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
# PATH first: /opt/venv/bin does not exist until the next RUN, so `python3` there is still
# the base image's.
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The venv lives at /opt/venv whatever the base; plain Debian/Ubuntu python3 needs
# python3-venv for ensurepip, and CUDA base images have no python3 at all.
# Versions are not pinned: the same line has to work on every base image, whose
# repositories carry different versions of these packages.
# hadolint ignore=DL3008
RUN if ! python3 -m venv /opt/venv; then \
        rm -rf /opt/venv \
        && apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/* \
        && python3 -m venv /opt/venv; \
    fi

WORKDIR /src
COPY constraints.txt ./

# Declared here, not at the top of the stage, so that changing them does not rebuild the venv.
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"
ARG PIP_EXTRA_ARGS=""
ARG EXTRAS=""
# bash for the arrays below. SHELL comes after the stage's ARG/ENV instructions because
# hadolint 2.15 forgets SHELL when an ARG or ENV follows it (hadolint/hadolint#1252) and
# would lint the bash as POSIX sh.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# torch alone first: its own layer (the big one, and the only one the CPU and CUDA images
# differ in), from TORCH_INDEX. --no-deps: its dependencies come in the next step,
# pinned by constraints.txt.
# DL3013 wants a literal pin: the pin is in TORCH_SPEC (torch==2.13.0 by default), a build
# argument so that the CUDA image and local wheels can name their own.
# hadolint ignore=DL3013
RUN --mount=type=bind,source=wheels,target=/wheels \
    index=(); \
    if [[ -n "${TORCH_INDEX}" ]]; then index=(--index-url "${TORCH_INDEX}"); fi; \
    read -r -a extra <<< "${PIP_EXTRA_ARGS}"; \
    pip install --no-cache-dir --no-deps "${index[@]}" "${extra[@]}" "${TORCH_SPEC}"

COPY pyproject.toml README.md ./
COPY wavenet_core ./wavenet_core
COPY wavenet_cli ./wavenet_cli
COPY server ./server

# The project and its runtime dependencies (no dev extra; EXTRAS if given), pinned by
# constraints.txt. Its torch pin is dropped here so that the torch installed above
# (TORCH_SPEC) stays.
# The import check runs isolated (-I) so that it sees the installed package, not ./server.
RUN --mount=type=bind,source=wheels,target=/wheels \
    grep -v '^torch==' constraints.txt > /tmp/constraints.txt \
    && read -r -a extra <<< "${PIP_EXTRA_ARGS}" \
    && project="." && if [[ -n "${EXTRAS}" ]]; then project=".[${EXTRAS}]"; fi \
    && pip install --no-cache-dir "${extra[@]}" -c /tmp/constraints.txt "${project}" \
    && rm /tmp/constraints.txt \
    && python -I -c "import torch, server, wavenet_core, wavenet_cli.main; print('torch', torch.__version__)"

# ---------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    WAVENET_MODELS=/app/models
# After the stage's ARG/ENV, as in the builder (hadolint/hadolint#1252).
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# espeak-ng renders the text path's speech (the vocoder resynthesizes it); python3 only
# where the base has none (the venv copied below points at the base's python3).
# Not version-pinned for the same reason as in the builder: one line for every base image.
# hadolint ignore=DL3008
RUN packages=(espeak-ng); \
    command -v python3 > /dev/null || packages+=(python3); \
    apt-get update \
    && apt-get install -y --no-install-recommends "${packages[@]}" \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 wavenet \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin wavenet

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The bundled checkpoints (docker-compose.yml mounts ./models over them, read-only).
COPY models /app/models

# Numeric, so the runtime can tell it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000

# 200 once the models are loaded and warmed up, 503 before; urllib raises (exit 1) on both
# a 503 and a refused connection. No curl needed in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

# Exec form: the server is PID 1 and gets SIGTERM itself, so it drains and shuts down cleanly.
CMD ["wavenet", "serve", "--host", "0.0.0.0", "--port", "8000"]
