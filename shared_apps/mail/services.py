"""E-mail: the one way the platform writes to people.

A message is rendered where it is sent (in the sender's tenant and language), from three
templates: `<name>_subject.txt`, `<name>.txt` and `<name>.html`. It leaves once the sender's
transaction commits, through the worker, which retries with backoff. A mail server that is
down, or a broker that is, never fails the action that sent the mail.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from core.metrics import mail_failure_count
from tenancy import public_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedMail:
    to: list[str]
    subject: str
    text: str
    html: str
    # Why it was sent, for logs (never the address itself: logs carry no personal data).
    kind: str


def mail_render(*, to: list[str], template: str, context: dict[str, Any]) -> RenderedMail:
    """Render the three templates of `template` for these recipients."""
    subject = render_to_string(f"{template}_subject.txt", context)
    return RenderedMail(
        to=list(to),
        # A header is one line: a newline from a workspace name must not start another.
        subject=" ".join(subject.split()),
        text=render_to_string(f"{template}.txt", context),
        html=render_to_string(f"{template}.html", context),
        kind=template,
    )


def mail_send(*, to: list[str], template: str, context: dict[str, Any]) -> None:
    """Send an e-mail once the current transaction commits; failures are logged, not raised."""
    if not to:
        return
    mail = mail_render(to=to, template=template, context=context)
    transaction.on_commit(lambda: _dispatch(mail))


def mail_deliver(mail: RenderedMail) -> None:
    """Hand the message to the mail server (raises what the server raises)."""
    message = EmailMultiAlternatives(
        subject=mail.subject, body=mail.text, from_email=None, to=mail.to
    )
    message.attach_alternative(mail.html, "text/html")
    message.send()


def _dispatch(mail: RenderedMail) -> None:
    if settings.MAIL_DELIVERY == "inline":
        try:
            mail_deliver(mail)
        except Exception:
            logger.exception("e-mail failed", extra={"mail_kind": mail.kind})
            mail_failure_count("inline")
        return
    from shared_apps.mail.tasks import mail_deliver_task

    try:
        # Queued from public: a message must leave even when its workspace was just suspended.
        with public_context():
            mail_deliver_task.apply_async(kwargs={"mail": asdict(mail)})
    except Exception:  # the broker is down: try once now rather than lose the message
        logger.warning("could not queue e-mail; sending inline", extra={"mail_kind": mail.kind})
        try:
            mail_deliver(mail)
        except Exception:
            logger.exception("e-mail failed", extra={"mail_kind": mail.kind})
            mail_failure_count("inline")
