# syntax=docker/dockerfile:1
# The bridge in a container: `docker build -t mpesa-bridge .`
#   docker run … mpesa-bridge                          the HTTP server (`mpesa-bridge serve`, the default)
#   docker run … mpesa-bridge mpesa-bridge worker      the background workers alone
#   docker run … mpesa-bridge mpesa-bridge db upgrade  migrations (production never migrates at start)
# docs/deployment.md explains it; tests/e2e/test_docker_steps.py runs these steps outside a container
# (paths come from ENV variables so that the test can place them in a temporary folder).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the bridge's wheel and the wheels of what it needs, at the locked versions -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    WHEELS=/wheels
WORKDIR /src
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY src ./src
# requirements.lock pins the development tools too: as a constraint it only fixes the versions of
# what the bridge's wheel asks for, so none of them reaches the image.
RUN python -m pip wheel --no-deps --wheel-dir "$WHEELS" . \
 && python -m pip wheel --constraint requirements.lock --wheel-dir "$WHEELS" "$WHEELS"/mpesa_bridge-*.whl

# --- runtime: a virtual environment installed from those wheels alone, run as a user with no login -
FROM ${PYTHON_IMAGE} AS runtime
ENV VIRTUAL_ENV=/opt/mpesa-bridge \
    WHEELS=/wheels \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    MPESA_BRIDGE_ENV=production \
    MPESA_BRIDGE_HOST=0.0.0.0 \
    MPESA_BRIDGE_PORT=8000 \
    MPESA_BRIDGE_DATA_DIR=/var/lib/mpesa-bridge \
    MPESA_BRIDGE_LOG_JSON=true
COPY --from=build /wheels /wheels
# No pip inside the virtual environment: the base image's pip installs into it, and nothing at run
# time installs anything. --no-index: only the wheels built above, never a download.
RUN python -m venv --without-pip "$VIRTUAL_ENV" \
 && python -m pip --python "$VIRTUAL_ENV/bin/python" install --no-index --find-links "$WHEELS" mpesa-bridge \
 && rm -rf "$WHEELS"
RUN groupadd --system --gid 10001 mpesa-bridge \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mpesa-bridge --no-create-home \
      --shell /usr/sbin/nologin mpesa-bridge \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/mpesa-bridge
USER 10001:10001
WORKDIR /var/lib/mpesa-bridge
# SQLite (when MPESA_BRIDGE_DATABASE_URL is unset) lives here; with PostgreSQL nothing is written.
VOLUME ["/var/lib/mpesa-bridge"]
EXPOSE 8000
# /readyz: the database answers and its migrations are at the code's head (api/health.py). The slim
# image has no curl: the standard library asks, and a 503 or no answer exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('MPESA_BRIDGE_PORT', '8000'), timeout=4)"]
CMD ["mpesa-bridge", "serve"]
