# syntax=docker/dockerfile:1
# The bridge in a container: `docker build -t mpesa-bridge .`
#   docker run … mpesa-bridge                          the HTTP server (`mpesa-bridge serve`, the default)
#   docker run … mpesa-bridge mpesa-bridge worker      the background workers alone
#   docker run … mpesa-bridge mpesa-bridge db upgrade  migrations (production never migrates at start)
# docs/deployment.md explains it; tests/e2e/test_docker_steps.py runs these steps outside a container
# (paths come from ENV variables so that the test can place them in a temporary folder).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The same uv as requirements.lock pins (a test compares them).
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- build: the bridge's wheel, installed with what it needs at the locked versions ---------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    WHEELS=/wheels \
    VIRTUAL_ENV=/opt/mpesa-bridge
WORKDIR /src
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY src ./src
# requirements.lock pins the development tools too: as a constraint it only fixes the versions of
# what the bridge's wheel asks for, so none of them is installed. No pip in the environment, and
# nothing at run time installs anything. Byte-compiled now: the runtime user cannot write there.
RUN uv build --wheel --out-dir "$WHEELS" . \
 && uv venv --relocatable --python python3.11 "$VIRTUAL_ENV" \
 && uv pip install --constraint requirements.lock "$WHEELS"/mpesa_bridge-*.whl

# --- runtime: that environment alone, run as a user with no login and no home -------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV VIRTUAL_ENV=/opt/mpesa-bridge \
    PYTHONUNBUFFERED=1
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    MPESA_BRIDGE_ENV=production \
    MPESA_BRIDGE_HOST=0.0.0.0 \
    MPESA_BRIDGE_PORT=8000 \
    MPESA_BRIDGE_DATA_DIR=/var/lib/mpesa-bridge \
    MPESA_BRIDGE_LOG_JSON=true
COPY --from=build /opt/mpesa-bridge /opt/mpesa-bridge
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
