"""The one mail path: rendered where it is sent, delivered after commit, never failing the
action that sent it, retried by the worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client, override_settings

from shared_apps.mail.services import mail_send
from shared_apps.mail.tasks import mail_deliver_task
from shared_apps.tenants.models import Tenant
from tenancy import tenant_context
from tenant_apps.members.models import Invitation
from tests.infra import wait_for
from tests.mail_backends import ServerDownBackend

WELCOME = {"workspace": "Acme Rockets", "url": "http://acme.localhost/", "email": "w@acme.test"}
SERVER_DOWN = "tests.mail_backends.ServerDownBackend"


def test_a_mail_leaves_only_once_the_transaction_commits_with_text_and_html(
    db: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        mail_send(to=["w@acme.test"], template="signup/mail/welcome", context=WELCOME)
        assert mail.outbox == []

    [message] = mail.outbox
    assert (message.to, message.subject) == (["w@acme.test"], "Welcome to Acme Rockets")
    assert "ready at http://acme.localhost/" in message.body
    [(html, mimetype)] = message.alternatives  # type: ignore[attr-defined]
    assert mimetype == "text/html"
    assert '<a href="http://acme.localhost/"' in html


def test_a_mail_of_a_rolled_back_action_is_never_sent(db: None) -> None:
    def failing_action() -> None:
        with transaction.atomic():
            mail_send(to=["w@acme.test"], template="signup/mail/welcome", context=WELCOME)
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError, match="the action failed"):
        failing_action()
    assert mail.outbox == []


def test_a_line_break_in_a_workspace_name_cannot_start_another_header(
    db: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        context = {**WELCOME, "workspace": "Acme\r\nBcc: everyone@evil.test"}
        mail_send(to=["w@acme.test"], template="signup/mail/welcome", context=context)
    assert mail.outbox[0].subject == "Welcome to Acme Bcc: everyone@evil.test"
    assert mail.outbox[0].bcc == []


@override_settings(EMAIL_BACKEND=SERVER_DOWN)
def test_an_invitation_is_kept_and_the_page_answers_when_the_mail_server_is_down(
    owner_a: Client,
    tenant_a: Tenant,
    django_capture_on_commit_callbacks: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        response = owner_a.post("/members/invite/", {"email": "new@alpha.test", "role": "member"})

    assert (response.status_code, response["Location"]) == (302, "/members/")
    with tenant_context(tenant_a):
        assert Invitation.objects.filter(email="new@alpha.test").count() == 1
    assert [record.message for record in caplog.records] == ["e-mail failed"]


@override_settings(EMAIL_BACKEND=SERVER_DOWN)
def test_the_delivery_task_retries_a_server_that_is_down_then_gives_up(db: None) -> None:
    ServerDownBackend.attempts = 0
    rendered = {
        "to": ["w@acme.test"],
        "subject": "Welcome",
        "text": "Hello",
        "html": "<p>Hello</p>",
        "kind": "signup/mail/welcome",
    }
    result = mail_deliver_task.apply(kwargs={"mail": rendered})
    assert result.failed()
    assert ServerDownBackend.attempts == 1 + (mail_deliver_task.max_retries or 0)


@override_settings(MAIL_DELIVERY="task")
def test_with_the_broker_down_a_mail_is_sent_at_once_instead(
    db: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(mail_deliver_task, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        mail_send(to=["w@acme.test"], template="signup/mail/welcome", context=WELCOME)
    assert [message.subject for message in mail.outbox] == ["Welcome to Acme Rockets"]


@override_settings(MAIL_DELIVERY="task")
def test_the_worker_delivers_the_mail_to_the_smtp_server(
    committed: Any, celery_worker_log: Any, smtp_sink: Any
) -> None:
    subject = "Welcome to Worker Delivered"
    with transaction.atomic():
        context = {**WELCOME, "workspace": "Worker Delivered"}
        mail_send(to=["w@acme.test"], template="signup/mail/welcome", context=context)
    assert mail.outbox == []  # not sent by this process

    [message] = wait_for(lambda: smtp_sink.received(subject), message="no mail from the worker")
    assert message["To"] == "w@acme.test"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
