"""E-mail backends that fail the way a mail server does, for the mail path's tests."""

from __future__ import annotations

import smtplib
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend


class ServerDownBackend(BaseEmailBackend):
    """Every delivery fails as an unreachable SMTP server does; attempts are counted."""

    attempts = 0

    def send_messages(self, email_messages: Any) -> int:
        type(self).attempts += 1
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
