"""Safe retries of the API's POSTs: the same Idempotency-Key runs the handler once.

Every TenantApi hands its POST handler to `idempotent_call` (the API_IDEMPOTENCY setting,
core.api.views). With an `Idempotency-Key` header, the handler, the check of earlier
attempts and the record of the answer are one transaction in the workspace's schema:

- a transaction-scoped advisory lock on (workspace, credential, key) is taken without
  waiting; a second request holding the same key meanwhile is answered
  `409 idempotency_key_in_progress` and runs nothing;
- an answer recorded in the last 24 hours for the same credential and key is replayed
  (status, body, Location and the like) when the request is the same (method, path and
  parsed body), and refused with `409 idempotency_key_reused` when it is not;
- otherwise the handler runs and its answer, if below 500, is recorded in the same
  transaction as the handler's own writes: both are committed or neither is, so a crash
  can never leave work done without its record (or a record of work never done).

A server error (5xx) is not recorded: the client may retry it with the same key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.http import HttpResponseBase
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from tenancy import require_tenant
from tenant_apps.idempotency.errors import (
    IdempotencyKeyInProgressError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyReusedError,
)
from tenant_apps.idempotency.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
KEY_MAX_LENGTH = 255
# Visible ASCII: what a client generates (a UUID, typically) and what a log line can show.
KEY_PATTERN = re.compile(rf"[\x21-\x7e]{{1,{KEY_MAX_LENGTH}}}")
# Answer headers that belong to the answer itself and are replayed with it; the RateLimit
# fields, request id and the like describe the retry, and are fresh.
REPLAYED_HEADERS = ("Location", "Content-Location", "ETag", "Last-Modified", "Link")
REPLAYED_MARK = "Idempotent-Replayed"

Handler = Callable[..., HttpResponseBase]


def idempotency_key_clean(raw: str) -> str:
    """Return the key as sent, bare or as a structured-field string (`"…"`).

    Raises:
        IdempotencyKeyInvalidError: empty, longer than 255 characters, or not visible ASCII.
    """
    key = raw[1:-1] if len(raw) > 2 and raw[0] == raw[-1] == '"' else raw
    if not KEY_PATTERN.fullmatch(key):
        raise IdempotencyKeyInvalidError(
            f"Send {HEADER} as 1 to {KEY_MAX_LENGTH} visible ASCII characters, e.g. a UUID."
        )
    return key


def _credential(request: Request) -> str | None:
    key_id = getattr(request.auth, "pk", None)
    if key_id is not None:
        return f"key:{key_id}"
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def _canonical(value: Any) -> Any:
    """The parsed body as plain data, files as digests of their content."""
    if hasattr(value, "lists"):  # QueryDict (forms, multipart): every value of every field
        return sorted((name, [_canonical(item) for item in items]) for name, items in value.lists())
    if hasattr(value, "chunks"):  # an uploaded file
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "sha256": digest.hexdigest()}
    return value


def request_fingerprint(request: Request) -> str:
    """A digest of what makes two POSTs the same request: method, path and query, body."""
    body = json.dumps(_canonical(request.data), sort_keys=True, cls=JSONEncoder)
    text = "\n".join([request.method or "", request.get_full_path(), body])
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_key(credential: str, key: str) -> int:
    name = f"idempotency:{require_tenant().schema_name}:{credential}:{key}"
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # PostgreSQL's bigint


def _lock(credential: str, key: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_key(credential, key)])
        row = cursor.fetchone()
    return bool(row and row[0])


def _replay(record: IdempotencyRecord) -> Response:
    headers = dict(record.headers)
    content_type = headers.pop("Content-Type", None)
    response = Response(
        json.loads(record.body),
        status=record.status_code,
        headers=headers,
        content_type=content_type,
    )
    response[REPLAYED_MARK] = "true"
    return response


def _record(
    response: HttpResponseBase, *, credential: str, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    if not isinstance(response, Response) or response.status_code >= 500:
        return None  # only JSON answers of the API are kept, and never a server error
    headers = {name: response[name] for name in REPLAYED_HEADERS if response.has_header(name)}
    if response.content_type:
        headers["Content-Type"] = response.content_type
    body = json.dumps(response.data, cls=JSONEncoder)
    return IdempotencyRecord.objects.create(
        credential=credential,
        idempotency_key=key,
        fingerprint=fingerprint,
        status_code=response.status_code,
        body=body,
        headers=headers,
    )


def idempotent_call(
    view: Any, handler: Handler, request: Request, *args: Any, **kwargs: Any
) -> HttpResponseBase:
    """Answer a POST through `handler`, at most once per credential and Idempotency-Key.

    Without the header, or without a credential to bind the key to, the handler simply runs.

    Raises:
        IdempotencyKeyInvalidError: the header is malformed.
        IdempotencyKeyInProgressError: a request with this key has not finished.
        IdempotencyKeyReusedError: the key was used, within 24 hours, for another request.
    """
    raw = request.headers.get(HEADER)
    credential = _credential(request)
    if raw is None or credential is None:
        return handler(request, *args, **kwargs)
    key = idempotency_key_clean(raw)
    fingerprint = request_fingerprint(request)
    with transaction.atomic():
        if not _lock(credential, key):
            raise IdempotencyKeyInProgressError(
                "A request with this Idempotency-Key is still running; retry it shortly.",
                retry_after=1,
            )
        # READ COMMITTED: this statement's snapshot is taken after the lock, so it sees the
        # record the previous holder committed.
        record = IdempotencyRecord.objects.filter(
            credential=credential, idempotency_key=key
        ).first()
        if record is not None and record.created_at <= timezone.now() - RETENTION:
            record.delete()  # older than a day: the key is free again
            record = None
        if record is not None:
            if record.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError(
                    "This Idempotency-Key was used for a different request in the last 24 "
                    "hours; send a new key for a new request."
                )
            logger.info("idempotent replay", extra={"status_code": record.status_code})
            return _replay(record)
        try:
            response = handler(request, *args, **kwargs)
        except Exception as error:
            # Rendered here, inside the transaction, so that a refusal is recorded too.
            response = view.handle_exception(error)
        _record(response, credential=credential, key=key, fingerprint=fingerprint)
    return response


def idempotency_records_clear() -> int:
    """Delete the active workspace's records older than a day; return how many went."""
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lte=timezone.now() - RETENTION
    ).delete()
    return deleted
