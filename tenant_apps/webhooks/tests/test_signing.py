from __future__ import annotations

import base64
import time

from tenant_apps.webhooks.signing import secret_generate, signature, signature_header
from tests.webhook_receiver import documented_verify


def test_signature_matches_the_specifications_reference_vector() -> None:
    # The Standard Webhooks reference libraries' own test vector.
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            body='{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    first, second = secret_generate(), secret_generate()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_the_documented_snippet_accepts_either_secret_during_a_rotation() -> None:
    verify = documented_verify()
    old, new = secret_generate(), secret_generate()
    now = str(int(time.time()))
    body = '{"type":"project.created"}'
    headers = {
        "webhook-id": "msg_abc",
        "webhook-timestamp": now,
        "webhook-signature": signature_header(
            [new, old], msg_id="msg_abc", timestamp=int(now), body=body
        ),
    }
    assert verify(new, headers, body.encode())
    assert verify(old, headers, body.encode())
    assert not verify(secret_generate(), headers, body.encode())
    assert not verify(new, headers, body.encode() + b" ")  # the body changed
    assert not verify(new, {**headers, "webhook-id": "msg_other"}, body.encode())
    stale = str(int(time.time()) - 600)
    replayed = {
        **headers,
        "webhook-timestamp": stale,
        "webhook-signature": signature(new, msg_id="msg_abc", timestamp=int(stale), body=body),
    }
    assert not verify(new, replayed, body.encode())  # signed too long ago
