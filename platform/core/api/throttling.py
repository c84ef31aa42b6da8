from __future__ import annotations

from django.core.cache import caches
from rest_framework.throttling import AnonRateThrottle


class PlatformAnonThrottle(AnonRateThrottle):
    """Per client IP, counted in the platform cache (not a tenant's namespace).

    The client IP is REMOTE_ADDR unless REST_FRAMEWORK["NUM_PROXIES"] (TRUSTED_PROXY_COUNT)
    says how many proxies append to X-Forwarded-For: a client cannot spoof its address.
    """

    cache = caches["platform"]


class SignupThrottle(PlatformAnonThrottle):
    scope = "signup"
