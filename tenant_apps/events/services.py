"""Announcing what happened in a workspace, for whoever listens (webhooks today).

The bottom layer of the workspace apps: projects and members announce through it without
knowing who listens, and listeners (the webhooks app, above members) register themselves
when Django starts, the way billing's deletion guard registers with the tenants app.

`event_emit` runs inside the caller's transaction and hands the event to every listener at
once, so what a listener writes (the webhooks app's delivery rows) commits or rolls back
with the change it describes; listeners queue their own work with `transaction.on_commit`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from tenant_apps.events.catalogue import EventType


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    type: str
    occurred_at: datetime
    data: dict[str, Any]


Listener = Callable[[Event], object]
_listeners: list[Listener] = []


def timestamp_iso(moment: datetime) -> str:
    """A moment as events write it: ISO 8601 in UTC with a `Z`, as the API writes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_listener_register(listener: Listener) -> None:
    """Hand every event emitted from now on to `listener` (once, however often registered)."""
    if listener not in _listeners:
        _listeners.append(listener)


def event_emit(*, event_type: EventType, data: dict[str, Any]) -> Event:
    """Announce that `event_type` happened in the active workspace, with its JSON `data`.

    Call it inside the transaction that made the change: a change that rolls back
    announces nothing.
    """
    event = Event(
        id=uuid.uuid4(), type=EventType(event_type).value, occurred_at=timezone.now(), data=data
    )
    for listener in _listeners:
        listener(event)
    return event
