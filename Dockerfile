# The platform's one production image: web, worker, beat, release and manage roles
# (deploy/entrypoint.sh). docs/deploy.md explains the build arguments and the roles.
#
#   podman build --format docker -t tenant-platform .        (or `make image`)
#
# BASE_IMAGE: the official Python image by default. Any Debian bookworm image works: where
# it has no python3 (a debootstrap base, as CI here builds from), Debian's is installed.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# -- build: /opt/venv with the runtime dependencies, at the versions of requirements.lock --
FROM ${BASE_IMAGE} AS build
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=120 \
    PYTHONDONTWRITEBYTECODE=1
RUN if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
      apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv ca-certificates >/dev/null && \
      rm -rf /var/lib/apt/lists/*; \
    fi && \
    python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version' && \
    python3 -m venv /opt/venv && \
    /opt/venv/bin/pip install --quiet --upgrade pip
WORKDIR /src
COPY pyproject.toml requirements.lock ./
COPY deploy/runtime_requirements.py deploy/
# The lock pins runtime and dev packages together (one resolution, tested as a whole).
# Install only what pyproject's [project.dependencies] needs, each at its locked version:
# the lock is the constraints file, and the check refuses anything it does not pin.
RUN /opt/venv/bin/python deploy/runtime_requirements.py constraints > /tmp/constraints.txt && \
    /opt/venv/bin/python deploy/runtime_requirements.py requirements > /tmp/requirements.txt && \
    /opt/venv/bin/pip install --quiet --only-binary=:all: \
      -c /tmp/constraints.txt -r /tmp/requirements.txt && \
    /opt/venv/bin/pip check && \
    /opt/venv/bin/python deploy/runtime_requirements.py verify && \
    /opt/venv/bin/pip uninstall --quiet --yes pip setuptools

# -- app: the code and its collected static files (hashed, gzip and Brotli), no secrets --
FROM build AS static
WORKDIR /app
COPY . .
# Settings need a database and Redis URL to import; nothing connects at collectstatic.
RUN DJANGO_SETTINGS_MODULE=config.settings.prod PYTHONPATH=/app:/app/platform \
    SECRET_KEY=collectstatic-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz \
    ADMIN_URL=build-only/ DATABASE_URL=postgresql://build@127.0.0.1:1/build \
    REDIS_URL=redis://127.0.0.1:1 PLATFORM_ENV_FILE=/dev/null \
    /opt/venv/bin/python manage.py collectstatic --noinput -v 0 && \
    /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      manage.py deploy platform shared_apps tenant_apps

# -- runtime: Python, the venv, the app; no compilers, no pip cache, not root --------------
FROM ${BASE_IMAGE} AS runtime
RUN if ! command -v python3 >/dev/null; then \
      apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 ca-certificates >/dev/null && \
      apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi && \
    groupadd --system --gid 10001 platform && \
    useradd --uid 10001 --gid platform --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin platform && \
    mkdir -p /var/lib/platform/beat /var/lib/platform/media && \
    chown -R platform:platform /var/lib/platform
COPY --from=build /opt/venv /opt/venv
COPY --from=static /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/platform \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.prod \
    PLATFORM_ENV_FILE=/dev/null \
    MEDIA_ROOT=/var/lib/platform/media \
    PORT=8000
WORKDIR /app
USER platform:platform
EXPOSE 8000
# Only the web role listens; for the others the check passes while PID 1 runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
