import os

import django
from django.core.wsgi import get_wsgi_application

from core.telemetry import telemetry_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Telemetry before the handler: the first request through the server span middleware
# must find tracing on; apps must be loaded first.
django.setup(set_prefix=False)
telemetry_init("web")
application = get_wsgi_application()
