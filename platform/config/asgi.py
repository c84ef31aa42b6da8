import os

from django.core.asgi import get_asgi_application

from core.telemetry import telemetry_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_asgi_application()

telemetry_init("web")  # after Django is set up: it reads the settings
