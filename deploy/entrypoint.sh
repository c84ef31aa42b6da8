#!/bin/sh
# The image's entrypoint: one role per container (docs/deploy.md).
#
#   web       gunicorn with uvicorn workers (ASGI) on $PORT; WEB_CONCURRENCY workers
#   worker    a Celery worker for tenant tasks (queues in WORKER_QUEUES, default the fair
#             `tenants` queue and the previous release's `default`); WORKER_CONCURRENCY
#             processes (default 4)
#   platform-worker   a Celery worker for the `platform` queue only (billing, e-mail, the
#             schema pool, beat's dispatchers); PLATFORM_WORKER_CONCURRENCY (default 2)
#   beat      Celery beat (run exactly one), its schedule in $BEAT_SCHEDULE_DIR
#   release   migrate public and every tenant, refresh the provisioning template
#   manage    any manage.py command: `manage tenants list --json`
#
# Arguments after the role go to the process: `worker --queues default`, `release --parallel 2`.
set -eu

cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-$PWD:$PWD/platform}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.prod}"

role="${1:-web}"
[ $# -gt 0 ] && shift

case "$role" in
  web)
    exec gunicorn config.asgi:application --config deploy/gunicorn.conf.py "$@"
    ;;
  worker)
    exec celery -A config worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${WORKER_CONCURRENCY:-4}" --queues "${WORKER_QUEUES:-tenants,default}" "$@"
    ;;
  platform-worker)
    exec celery -A config worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${PLATFORM_WORKER_CONCURRENCY:-2}" --queues platform "$@"
    ;;
  beat)
    dir="${BEAT_SCHEDULE_DIR:-/var/lib/platform/beat}"
    mkdir -p "$dir"
    exec celery -A config beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "$dir/celerybeat-schedule" --pidfile= "$@"
    ;;
  release)
    exec python manage.py tenants migrate --json "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    echo "entrypoint: unknown role '$role': expected web, worker, platform-worker, beat, release or manage" >&2
    exit 64
    ;;
esac
