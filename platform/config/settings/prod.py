"""Production: every secret comes from the environment; nothing has a default."""

import sys

from config.settings.base import *  # noqa: F403
from config.settings.base import ENV

# Django signs sessions, hand-off and reset links with it: a guessable key forges them all.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
_secret = ENV.SECRET_KEY.get_secret_value() if ENV.SECRET_KEY else ""
if not _secret:
    print(
        "Configuration error: SECRET_KEY is not set: expected a long random string", file=sys.stderr
    )
    raise SystemExit(78)
if (
    len(_secret) < SECRET_KEY_MIN_LENGTH
    or len(set(_secret)) < SECRET_KEY_MIN_UNIQUE
    or _secret.startswith("django-insecure")
):
    print(
        f"Configuration error: SECRET_KEY is weak: expected at least {SECRET_KEY_MIN_LENGTH} "
        "random characters (python -c 'import secrets; print(secrets.token_urlsafe(64))')",
        file=sys.stderr,
    )
    raise SystemExit(78)
if ENV.ADMIN_URL == "admin/":
    print("Configuration error: ADMIN_URL is 'admin/': expected a private path", file=sys.stderr)
    raise SystemExit(78)

DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Preloading is a promise browsers keep for months even after the header goes: an operator
# opts in (HSTS_PRELOAD=true) once every subdomain is HTTPS-only for good.
SECURE_HSTS_PRELOAD = ENV.HSTS_PRELOAD
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]  # noqa: F405
# Probes speak plain HTTP to the pod; the load balancer terminates TLS for everything else.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^(healthz|readyz|version|metrics)$"]
if ENV.TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# STATIC FILES --------------------------------------------------------------------------
# Collected into the image at build time (`collectstatic`): names carry a content hash and
# each file has .gz and .br twins, so WhiteNoise serves them compressed and cacheable for
# a year. A {% static %} name missing from the manifest is an error, not a broken link.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
