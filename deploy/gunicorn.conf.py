"""gunicorn settings for the web role: ASGI through uvicorn's worker class.

gunicorn config.asgi:application --config deploy/gunicorn.conf.py
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# uvicorn_worker runs each worker as an ASGI server (uvicorn.workers is deprecated).
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Recycle workers now and then: each one's database connections cache catalog data for
# every tenant they served; restarting bounds that memory.
max_requests = 5000
max_requests_jitter = 500
timeout = 30
graceful_timeout = 30
keepalive = 5
# Heartbeat files in memory: a container's /tmp may be a slow overlay or read-only.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# gunicorn 25's control socket lives under $HOME, read-only in the image; nothing uses it.
control_socket_disable = True
# No access log of gunicorn's (or uvicorn's) own: its request line carries the query
# string, where links hold tokens. The platform logs requests itself, as redacted JSON
# (core.redaction).
accesslog = None
# Proxies whose X-Forwarded-Proto/For are believed (uvicorn applies them per request).
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
