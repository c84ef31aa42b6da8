"""The Celery application: worker and beat load it with `-A config`.

Every task is a TenantTask unless it says otherwise (see tenancy.tasks).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("platform", task_cls="tenancy.tasks:TenantTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
