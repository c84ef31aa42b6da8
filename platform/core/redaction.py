"""Secrets that travel in URLs never reach a log line.

Hand-off, invitation and password-reset links carry tokens in the query string or the
path, and file links carry a signed token in the path. Every log line goes through
`redact` (the JSON formatter applies it to the whole line), so a request line, an error
message or a traceback that quotes such a URL keeps its shape but loses the secret.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

_PATTERNS = (
    # ?token=…, &code=… (query strings, also URL-encoded ones inside JSON)
    re.compile(r"(?P<keep>[?&](?:token|code|key|signature|secret|password)=)[^&\s\"'\\<>]+", re.I),
    # /files/<signed token>/
    re.compile(r"(?P<keep>/files/)[^/\s\"'\\<>?]+"),
    # /password/reset/<uid>/<token>/
    re.compile(r"(?P<keep>/reset/)[^/\s\"'\\<>?]+/[^/\s\"'\\<>?]+"),
)


def redact(text: str) -> str:
    """Return `text` with the secrets of platform URLs replaced by `[redacted]`."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: f"{match.group('keep')}{REDACTED}", text)
    return text
