# Tuneboard: API and worker image (the same image runs either; see docker-compose.yml).
# CPU by default. For GPU hosts build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
# and run the worker with the NVIDIA runtime (deploy.resources.reservations.devices in compose).
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TUNEBOARD_HOME=/data

WORKDIR /app

# torch first, from the chosen index, so the project's "torch>=..." pin installs nothing more.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY tuneboard ./tuneboard
COPY api ./api
COPY workers ./workers
COPY migrations ./migrations
RUN pip install -e . \
    && useradd --create-home --uid 1000 tuneboard \
    && mkdir -p /data && chown tuneboard /data

USER tuneboard
VOLUME ["/data"]
EXPOSE 8000

# Waits for nothing on its own: compose's healthchecks order the services, and
# `tuneboard db upgrade` runs in the one-shot "migrate" service before the API starts.
CMD ["tuneboard", "api", "--host", "0.0.0.0", "--port", "8000"]
