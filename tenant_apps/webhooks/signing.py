"""Signatures of the Standard Webhooks specification (standardwebhooks.com), stdlib only.

A receiver checks `webhook-signature` against HMAC-SHA256, keyed with the base64-decoded
part of the `whsec_…` secret, of `{webhook-id}.{webhook-timestamp}.{body}`; the header lists
one `v1,<base64>` per live secret, space-separated (two during a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
# The specification asks for 24 to 64 random bytes.
SECRET_BYTES = 32


def secret_generate() -> str:
    """Return a new signing secret, `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, *, msg_id: str, timestamp: int, body: str) -> str:
    """Return one `v1,<base64>` signature of the message with `secret`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], *, msg_id: str, timestamp: int, body: str) -> str:
    """Return the `webhook-signature` value: one signature per secret, space-separated."""
    return " ".join(
        signature(secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets_
    )
