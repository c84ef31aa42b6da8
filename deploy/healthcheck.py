"""The image's HEALTHCHECK: the web role answers GET /healthz with 200; other roles pass.

Cheap on purpose (standard library only, no Django import): it runs every 30 seconds.
"""

import os
import sys
import urllib.error
import urllib.request


def _serves_web() -> bool:
    """True when gunicorn runs in this container (PID 1, or under an init such as --init)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"gunicorn") for part in argv[:2]):
            return True
    return False


def main() -> int:
    if not _serves_web():
        return 0  # worker, beat, release: nothing listens, and the runtime watches PID 1
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        # /healthz answers on any host, before tenant routing, and is exempt from the
        # HTTPS redirect: plain HTTP from inside the container gets the real answer.
        headers={"Host": os.environ.get("ROOT_DOMAIN", "localhost")},
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"health check failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
