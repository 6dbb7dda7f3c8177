# Tuneboard's images, two targets of one file (docker-compose.yml builds both):
#
#   docker build --target api    -t tuneboard-api .     API, migrations, reaper: no torch
#   docker build --target worker -t tuneboard-worker .  runs trials: the CPU build of torch
#
# For GPU hosts, the CUDA build of torch: TORCH_VARIANT=cuda takes it from pip's default index
# (whose Linux wheels of torch are built for CUDA); TORCH_INDEX_URL names another index, e.g. the
# one of a CUDA version your driver runs:
#   docker build --target worker --build-arg TORCH_VARIANT=cuda .
#   docker build --target worker --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Layers, from the least to the most often changed: Python, the dependencies (read from
# pyproject.toml alone, so editing the source reuses them), then the source.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    TUNEBOARD_HOME=/data
RUN python -m venv /opt/venv \
    && groupadd --gid 10001 tuneboard \
    && useradd --create-home --uid 10001 --gid 10001 tuneboard \
    && mkdir /data \
    && chown tuneboard:tuneboard /data
WORKDIR /app

# The dependencies, read from pyproject.toml alone: they install before the source is copied.
FROM base AS deps
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

FROM deps AS api
COPY migrations ./migrations
COPY tuneboard ./tuneboard
COPY api ./api
# The reaper (python -m workers.reaper) runs from this image too; it needs no torch.
COPY workers ./workers
# Editable, so that `tuneboard db upgrade` finds /app/migrations beside the package.
RUN pip install --no-deps -e .
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["tuneboard", "api", "--host", "0.0.0.0", "--port", "8000"]

FROM deps AS worker
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=
# torch alone, in a layer of its own; the worker extra's other requirements then come from the
# default index, and pip keeps the torch it finds installed.
RUN case "${TORCH_VARIANT}" in \
      cpu) variant_index=https://download.pytorch.org/whl/cpu ;; \
      cuda) variant_index= ;; \
      *) echo "TORCH_VARIANT is cpu or cuda, not ${TORCH_VARIANT}" >&2; exit 1 ;; \
    esac \
    && index="${TORCH_INDEX_URL:-$variant_index}" \
    && if [ -n "${index}" ]; then export PIP_INDEX_URL="${index}"; fi \
    && pip install "torch==${TORCH_VERSION}"
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['optional-dependencies']['worker']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY migrations ./migrations
COPY tuneboard ./tuneboard
COPY api ./api
COPY workers ./workers
RUN pip install --no-deps -e .
USER 10001:10001
VOLUME ["/data"]
# Healthy while one of this container's Celery worker processes (cpu@host, gpu0@host, ...)
# answers a ping through the broker.
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import socket, sys; from workers.celery_app import app; me = '@' + socket.gethostname(); sys.exit(0 if any(n.endswith(me) for r in app.control.ping(timeout=10) for n in r) else 1)"]
CMD ["tuneboard", "worker", "--no-reaper"]
