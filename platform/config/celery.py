"""The Celery application: worker and beat load it with `-A config`.

Every task is a TenantTask unless it says otherwise (see tenancy.tasks).
"""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("platform", task_cls="tenancy.tasks:TenantTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_process_init.connect
def _worker_telemetry(**_: Any) -> None:
    # In each process that runs tasks (prefork children, or the solo worker), after Django
    # is set up: exporters' threads do not survive a fork.
    from core.telemetry import telemetry_init

    telemetry_init("worker")


@signals.beat_init.connect
def _beat_telemetry(**_: Any) -> None:
    from core.telemetry import telemetry_init

    telemetry_init("beat")
