import os

import django
from django.core.asgi import get_asgi_application

from core.telemetry import telemetry_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# Telemetry before the handler: the handler builds its middleware chain once, and the
# Django instrumentation adds its middleware to the settings; apps must be loaded first.
django.setup(set_prefix=False)
telemetry_init("web")
application = get_asgi_application()
