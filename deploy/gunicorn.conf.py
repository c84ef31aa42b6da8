"""gunicorn settings for the web process (`gunicorn -c deploy/gunicorn.conf.py config.wsgi`)."""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", "1"))
# Recycle workers now and then: each one's database connections cache catalog data for
# every tenant they served; restarting bounds that memory.
max_requests = 5000
max_requests_jitter = 500
timeout = 30
graceful_timeout = 30
# No access log of gunicorn's own: its request line carries the query string, where links
# hold tokens. The platform logs requests itself, as redacted JSON (core.redaction).
accesslog = None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


# Prometheus multiprocess mode (docs/observability.md): every worker writes its samples to
# PROMETHEUS_MULTIPROC_DIR. Start each run with an empty directory, and retire a worker's
# live gauges when it exits.
def on_starting(server: object) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
