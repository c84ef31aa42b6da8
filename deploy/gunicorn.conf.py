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
