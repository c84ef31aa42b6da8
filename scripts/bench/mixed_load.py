"""Many workspaces under a mixed load through a real server, every answer checked.

Prepares BENCH_TENANTS workspaces through the platform's own tenant creation (the template
replayed, no pool), each with an owner, a signed-in session of that owner (made in
preparation, so sign-in and its rate limits are not what is measured), an API key, two
projects, three tasks and a file. Every name a workspace holds carries its marker
`m-<subdomain>-`: the workspace's name, the owner's e-mail, projects, tasks and files (and
the files' contents).

Simulated people then visit their own workspaces back to back, no think time. A visit is
the home page, the project list, a project's page, adding a task and changing another
(page forms, the CSRF token taken from the cookie), uploading a small file, opening the
project's file (a signed link) and fetching it, and listing projects through the API with
the workspace's key. Then what belongs to this workspace is tried on the next one's host:
its API key (must be 401), its file link (404) and its session cookie (signed out: sent to
the sign-in page). Each person keeps its workspaces' cookies and one keep-alive connection
(gunicorn's sync workers close it after each answer, uvicorn keeps it) and takes its turn
in a disjoint share of the workspaces, so every level reaches every workspace and each
server process switches tenants between requests.

Every answer is checked: its status (no 5xx; 4xx only where expected), that the pages and
the API show the person's own workspace, and that no marker of another workspace appears
anywhere in the body (a cross-tenant answer, printed with its request). After the load the
database is checked too: every task and file the server accepted sits in its own workspace
(its file under that workspace's storage prefix) and no workspace holds another's marker.

For each server, gunicorn with sync workers (WSGI, persistent connections) and gunicorn
with uvicorn workers (ASGI, Django's psycopg pool), both from deploy/gunicorn.conf.py, a
short warm-up and then each concurrency level in turn. Exits non-zero if any check failed.

Run with `make bench-mixed-load` (about 6 minutes at the defaults). Writes its section of
docs/benchmarks.md. Knobs (environment variables):

  BENCH_TENANTS=100              workspaces prepared
  BENCH_LEVELS=1,2,4,8,16,32     concurrency levels: simulated people at once
  BENCH_LEVEL_SECONDS=10         seconds of load per level
  BENCH_WARMUP_SECONDS=3         warm-up per server (checked, not reported)
  BENCH_CLIENT_PROCESSES=2       client processes; the people of a level are shared among
                                 them, one thread each
  BENCH_SERVERS=wsgi-2,wsgi-4,asgi-2,asgi-4   which servers, as <wsgi|asgi>-<workers>
  BENCH_P95_TARGET_MS=200        the latency target of the "best rate" column
  BENCH_REPORT=1                 0: print the section, leave docs/benchmarks.md alone

The platform's own settings pass through to the servers as well: for example
TENANT_CONNECTION_MAX_SCHEMAS=20 makes database connections recycle during the load.

The test suite drives a live server with the same client (tests/test_mixed_load.py).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "bench_mixed_load"

TENANTS = int(os.environ.get("BENCH_TENANTS", "100"))
LEVELS = [int(level) for level in os.environ.get("BENCH_LEVELS", "1,2,4,8,16,32").split(",")]
LEVEL_SECONDS = float(os.environ.get("BENCH_LEVEL_SECONDS", "10"))
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "3"))
CLIENT_PROCESSES = int(os.environ.get("BENCH_CLIENT_PROCESSES", "2"))
SERVERS = os.environ.get("BENCH_SERVERS", "wsgi-2,wsgi-4,asgi-2,asgi-4").split(",")
P95_TARGET_MS = float(os.environ.get("BENCH_P95_TARGET_MS", "200"))
REPORT = os.environ.get("BENCH_REPORT", "1") == "1"

# A marker is `m-<subdomain>-`; subdomains made here have no hyphen, so the first one ends it.
MARKER = re.compile(r"(?<![a-z0-9])m-([a-z0-9]+)-")
STEPS = [
    "home",
    "project list",
    "project page",
    "add task",
    "change task",
    "upload file",
    "open file",
    "file",
    "API list",
    "API, other key",
    "file link, other host",
    "session, other host",
]
# The level table; the CPU columns are in cores (CPU seconds per second), but for the
# server's CPU time per answer.
COLUMNS = [
    "server",
    "people",
    "req/s",
    "p50 ms",
    "p95 ms",
    "server CPU",
    "server CPU ms/answer",
    "database CPU",
    "client CPU",
    "other work",
    "5xx",
    "cross-tenant",
]
FAILURE_KINDS = ["cross-tenant", "server error", "unexpected", "no answer"]
SHOWN_FAILURES = 20


def marker_of(subdomain: str) -> str:
    return f"m-{subdomain}-"


# WORKSPACES ----------------------------------------------------------------------------


@dataclass
class Workspace:
    """What a simulated person needs to use one prepared workspace."""

    subdomain: str
    host: str
    cookies: dict[str, str]  # the owner's session, signed in during preparation
    api_key: str
    roadmap_id: int  # viewed on every visit; its tasks are the ones changed
    inbox_id: int  # receives the new tasks and files, so the viewed page does not grow
    roadmap_task_ids: list[int]
    attachment_id: int  # a file of the inbox, downloaded on every visit

    @property
    def marker(self) -> str:
        return marker_of(self.subdomain)


def workspace_prepare(subdomain: str) -> Workspace:
    """Create one workspace with its owner, session, key, projects and tasks (Django set up)."""
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from shared_apps.fleet.creation import tenant_create
    from tenancy import tenant_context
    from tenant_apps.apikeys.services import api_key_create
    from tenant_apps.projects.services import attachment_upload, project_create, task_create

    mark = marker_of(subdomain)
    created = tenant_create(
        name=f"{mark}workspace",
        subdomain=subdomain,
        owner_email=f"{mark}owner@{subdomain}.test",
        owner_password=secrets.token_urlsafe(18),
        actor="bench",
    )
    owner, host = created.owner, created.domain.domain
    browser = Client(HTTP_HOST=host)
    with tenant_context(created.tenant):
        browser.force_login(owner)
        _, api_key = api_key_create(actor=owner, name=f"{mark}load", scopes=["read"])
        roadmap = project_create(actor=owner, name=f"{mark}roadmap")
        inbox = project_create(actor=owner, name=f"{mark}inbox")
        tasks = [
            task_create(actor=owner, project=roadmap, title=f"{mark}roadmap-{number}")
            for number in range(1, 4)
        ]
        brief = SimpleUploadedFile(f"{mark}brief.txt", f"{mark}brief\n".encode(), "text/plain")
        attachment = attachment_upload(actor=owner, project=inbox, upload=brief)
    return Workspace(
        subdomain=subdomain,
        host=host,
        cookies={settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value},
        api_key=api_key,
        roadmap_id=roadmap.pk,
        inbox_id=inbox.pk,
        roadmap_task_ids=[task.pk for task in tasks],
        attachment_id=attachment.pk,
    )


def workspaces_verify(
    subdomains: list[str], created: dict[str, list[str]], uploaded: dict[str, list[str]]
) -> list[str]:
    """Problems found in the database after a load (Django set up): every task and file the
    server accepted sits in its own workspace, and no workspace holds another's marker."""
    from django.core.files.storage import default_storage

    from shared_apps.accounts.models import User
    from shared_apps.tenants.models import Tenant
    from tenancy import public_context, tenant_context
    from tenant_apps.apikeys.models import ApiKey
    from tenant_apps.projects.models import Attachment, Project, Task

    problems: list[str] = []
    with public_context():
        tenants = {t.subdomain: t for t in Tenant.objects.filter(subdomain__in=subdomains)}
    for subdomain in subdomains:
        with tenant_context(tenants[subdomain]):
            names = [
                *Task.objects.values_list("title", flat=True),
                *Project.objects.values_list("name", flat=True),
                *Attachment.objects.values_list("original_name", flat=True),
                *User.objects.values_list("email", flat=True),
                *ApiKey.objects.values_list("name", flat=True),
            ]
            for name in names:
                owners = set(MARKER.findall(name)) - {subdomain}
                if owners:
                    problems.append(f"{subdomain} holds {name!r} of {', '.join(sorted(owners))}")
            wanted = set(created.get(subdomain, []))
            found = set(Task.objects.filter(title__in=wanted).values_list("title", flat=True))
            problems += [f"{subdomain}: accepted task {t!r} is missing" for t in wanted - found]
            files = set(uploaded.get(subdomain, []))
            for attachment in Attachment.objects.filter(original_name__in=files):
                files.discard(attachment.original_name)
                # The storage resolves the name under this workspace's own prefix.
                with default_storage.open(attachment.file.name) as stored:
                    content = stored.read().decode()
                if marker_of(subdomain) not in content:
                    problems.append(
                        f"{subdomain}: file {attachment.original_name!r} holds {content!r}"
                    )
            problems += [f"{subdomain}: accepted file {name!r} is missing" for name in files]
    return problems


# THE CLIENT ----------------------------------------------------------------------------


@dataclass
class Failure:
    kind: str  # one of FAILURE_KINDS
    request: str
    status: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.request} -> {self.status}: {self.detail}"


@dataclass
class Tally:
    """What one or more simulated people saw; merged across threads and processes."""

    requests: int = 0  # answered within the measured window
    latencies: list[float] = field(default_factory=list)
    by_step: dict[str, list[float]] = field(default_factory=dict)
    checked: int = 0  # every answer, the window's and those after it
    failures: Counter[str] = field(default_factory=Counter)
    shown: list[Failure] = field(default_factory=list)
    created: dict[str, list[str]] = field(default_factory=dict)  # subdomain: task titles
    uploaded: dict[str, list[str]] = field(default_factory=dict)  # subdomain: file names
    reconnects: int = 0
    throttled: int = 0  # API answers 429: a budget of core.api.limits was spent
    cpu_seconds: float = 0.0

    def fail(self, failure: Failure) -> None:
        self.failures[failure.kind] += 1
        if len(self.shown) < SHOWN_FAILURES:
            self.shown.append(failure)

    def merge(self, other: Tally) -> Tally:
        self.requests += other.requests
        self.latencies += other.latencies
        for step, values in other.by_step.items():
            self.by_step.setdefault(step, []).extend(values)
        self.checked += other.checked
        self.failures.update(other.failures)
        self.shown += other.shown[: max(0, SHOWN_FAILURES - len(self.shown))]
        for mine, theirs in ((self.created, other.created), (self.uploaded, other.uploaded)):
            for subdomain, names in theirs.items():
                mine.setdefault(subdomain, []).extend(names)
        self.reconnects += other.reconnects
        self.throttled += other.throttled
        self.cpu_seconds += other.cpu_seconds
        return self

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str


class Person:
    """One simulated person: a keep-alive connection and a browser per workspace it visits."""

    def __init__(
        self,
        port: int,
        workspaces: list[Workspace],
        others: list[Workspace],
        tally: Tally,
        window_ends: float | None,
    ) -> None:
        self.port = port
        self.workspaces = workspaces
        self.others = others  # every prepared workspace: the source of a wrong key
        self.position = {other.subdomain: index for index, other in enumerate(others)}
        self.tally = tally
        self.window_ends = window_ends
        self.jars = {ws.subdomain: dict(ws.cookies) for ws in workspaces}
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def close(self) -> None:
        self.connection.close()

    def run(self, *, until: float | None = None, visits: int | None = None) -> None:
        """Visit the workspaces in turn until the time `until` or for `visits` visits."""
        done = 0
        while (visits is None or done < visits) and (until is None or time.monotonic() < until):
            workspace = self.workspaces[done % len(self.workspaces)]
            self.visit(workspace, number=done, until=until)
            done += 1

    def visit(self, ws: Workspace, *, number: int, until: float | None) -> None:
        """One person's round through their workspace (stopping early at `until`), then
        three tries of what belongs to it on another workspace's host, which must fail."""
        tag = uuid.uuid4().hex[:10]
        jar = self.jars[ws.subdomain]
        roadmap, inbox = f"/projects/{ws.roadmap_id}/", f"/projects/{ws.inbox_id}/"
        task_number = number % len(ws.roadmap_task_ids)
        title = f"{ws.marker}task-{tag}"
        file_name = f"{ws.marker}note-{tag}.txt"
        link: list[str] = []  # the signed file link the download step was given
        steps = [
            lambda: self.page(ws, jar, "home", "/"),
            lambda: self.page(ws, jar, "project list", "/projects/"),
            lambda: self.page(ws, jar, "project page", roadmap),
            lambda: self.form(
                ws,
                jar,
                "add task",
                f"{inbox}tasks/",
                {"title": title, "status": "todo", "assignee": "", "due_date": ""},
                goes_to=inbox,
                accepted=(self.tally.created, title),
            ),
            lambda: self.form(
                ws,
                jar,
                "change task",
                f"{roadmap}tasks/{ws.roadmap_task_ids[task_number]}/",
                {
                    "title": f"{ws.marker}roadmap-{task_number + 1}",
                    "status": ["todo", "doing", "done"][number % 3],
                    "assignee": "",
                    "due_date": "",
                },
                goes_to=roadmap,
            ),
            lambda: self.form(
                ws,
                jar,
                "upload file",
                f"{inbox}attachments/",
                {},
                file=(file_name, f"{ws.marker}note {tag}\n".encode()),
                goes_to=inbox,
                accepted=(self.tally.uploaded, file_name),
            ),
            lambda: link.extend(self.file_link(ws, jar, f"{inbox}attachments/{ws.attachment_id}/")),
            lambda: self.file_fetch(ws, jar, link),
            lambda: self.api(ws, ws.api_key, "API list"),
        ]
        other = self.others[(self.position[ws.subdomain] + 1) % len(self.others)]
        if other is not ws:  # a single workspace has nowhere else to try
            steps += [
                lambda: self.api(ws, other.api_key, "API, other key"),
                lambda: self.file_elsewhere(other, link),
                lambda: self.session_elsewhere(other, jar),
            ]
        for step in steps:
            if until is not None and time.monotonic() >= until:
                return
            step()

    # Requests ---------------------------------------------------------------------------

    def send(
        self,
        ws: Workspace,
        step: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        body: bytes | None = None,
        jar: dict[str, str] | None = None,
    ) -> Answer | None:
        headers = {"Host": ws.host, "User-Agent": "mixed-load", **headers}
        if jar:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        line = f"{method} {ws.host}{path}"
        started = time.monotonic()
        for attempt in (1, 2):
            reused = self.connection.sock is not None  # else http.client connects anew
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                # A kept-alive connection the server closed meanwhile: open a new one, once.
                self.connection.close()
                if attempt == 2 or not reused:
                    self.tally.checked += 1
                    self.tally.fail(Failure("no answer", line, None, repr(error)))
                    return None
                self.tally.reconnects += 1
                started = time.monotonic()
            except OSError as error:
                self.connection.close()
                self.tally.checked += 1
                self.tally.fail(Failure("no answer", line, None, repr(error)))
                return None
        self.record(step, started)
        if jar is not None:
            _cookies_take(jar, response.headers.get_all("Set-Cookie") or [])
        answer = Answer(response.status, response.headers, raw.decode("utf-8", "replace"))
        self.check(ws, line, answer)
        return answer

    def record(self, step: str, started: float) -> None:
        ended = time.monotonic()
        if self.window_ends is None or ended <= self.window_ends:
            self.tally.requests += 1
            self.tally.latencies.append(ended - started)
            self.tally.by_step.setdefault(step, []).append(ended - started)

    def check(self, ws: Workspace, line: str, answer: Answer) -> None:
        """What every answer must satisfy: no 5xx, and no other workspace's marker anywhere
        in the body (error pages included)."""
        self.tally.checked += 1
        if answer.status >= 500:
            self.tally.fail(Failure("server error", line, answer.status, _excerpt(answer.text)))
        foreign = sorted(set(MARKER.findall(answer.text)) - {ws.subdomain})
        if foreign:
            found = ", ".join(foreign)
            self.tally.fail(
                Failure("cross-tenant", line, answer.status, f"markers of {found} in the answer")
            )

    def unexpected(self, ws: Workspace, method: str, path: str, answer: Answer, why: str) -> None:
        line = f"{method} {ws.host}{path}"
        if answer.status < 500:  # a 5xx is already counted as a server error
            self.tally.fail(Failure("unexpected", line, answer.status, why))

    def page(self, ws: Workspace, jar: dict[str, str], step: str, path: str) -> None:
        answer = self.send(ws, step, "GET", path, headers={}, jar=jar)
        if answer is None:
            return
        if answer.status != 200:
            self.unexpected(ws, "GET", path, answer, f"expected 200 ({_redirect(answer)})")
        elif ws.marker not in answer.text:
            self.unexpected(ws, "GET", path, answer, "the page does not show its workspace")

    def form(
        self,
        ws: Workspace,
        jar: dict[str, str],
        step: str,
        path: str,
        fields: dict[str, str],
        *,
        goes_to: str,
        file: tuple[str, bytes] | None = None,
        accepted: tuple[dict[str, list[str]], str] | None = None,
    ) -> None:
        token = jar.get("csrftoken")
        if token is None:
            answer = Answer(0, http.client.HTTPMessage(), "")
            self.unexpected(ws, "POST", path, answer, "no CSRF cookie from the pages before")
            return
        body, content_type = _form_body({"csrfmiddlewaretoken": token, **fields}, file)
        answer = self.send(
            ws, step, "POST", path, headers={"Content-Type": content_type}, body=body, jar=jar
        )
        if answer is None:
            return
        if answer.status != 302 or answer.headers.get("Location") != goes_to:
            self.unexpected(ws, "POST", path, answer, f"expected 302 to {goes_to}")
        elif accepted is not None:
            names, name = accepted
            names.setdefault(ws.subdomain, []).append(name)

    def file_link(self, ws: Workspace, jar: dict[str, str], path: str) -> list[str]:
        """Open a project's file: the answer sends the browser to a signed, short-lived link."""
        answer = self.send(ws, "open file", "GET", path, headers={}, jar=jar)
        if answer is None:
            return []
        location = answer.headers.get("Location") or ""
        if answer.status != 302 or not location.startswith("/files/"):
            self.unexpected(ws, "GET", path, answer, "expected 302 to a /files/ link")
            return []
        return [location]

    def file_fetch(self, ws: Workspace, jar: dict[str, str], link: list[str]) -> None:
        """Follow the signed link: the file itself, or (S3) a redirect to a presigned URL."""
        if not link:
            return  # the download step failed, and was counted
        answer = self.send(ws, "file", "GET", link[0], headers={}, jar=jar)
        if answer is None:
            return
        location = answer.headers.get("Location") or ""
        if answer.status == 302 and location.startswith(("http://", "https://")):
            answer = self.storage_fetch(ws, location)
            if answer is None:
                return
        if answer.status != 200 or ws.marker not in answer.text:
            self.unexpected(ws, "GET", link[0], answer, "expected the workspace's file")

    def storage_fetch(self, ws: Workspace, url: str) -> Answer | None:
        """GET a presigned storage URL on a connection of its own (another server)."""
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=60)
        started = time.monotonic()
        try:
            connection.request("GET", f"{parts.path}?{parts.query}")
            response = connection.getresponse()
            answer = Answer(
                response.status, response.headers, response.read().decode("utf-8", "replace")
            )
        except OSError as error:
            self.tally.checked += 1
            self.tally.fail(Failure("no answer", f"GET {url}", None, repr(error)))
            return None
        finally:
            connection.close()
        self.record("file, from storage", started)
        self.check(ws, f"GET {parts.netloc}{parts.path}", answer)
        return answer

    def file_elsewhere(self, other: Workspace, link: list[str]) -> None:
        """This workspace's file link opened on another workspace's host: not found there."""
        if not link:
            return
        answer = self.send(other, "file link, other host", "GET", link[0], headers={})
        if answer is not None and answer.status != 404:
            self.unexpected(other, "GET", link[0], answer, "expected 404")

    def session_elsewhere(self, other: Workspace, jar: dict[str, str]) -> None:
        """This workspace's session cookie sent to another workspace's host: signed out there."""
        copied = dict(jar)  # what that host answers must not change this person's cookies
        answer = self.send(other, "session, other host", "GET", "/", headers={}, jar=copied)
        if answer is None:
            return
        if answer.status != 302 or not answer.headers.get("Location", "").startswith("/login/"):
            self.unexpected(other, "GET", "/", answer, "expected 302 to /login/")

    def api(self, ws: Workspace, key: str, step: str) -> None:
        path = "/api/v1/projects"
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        answer = self.send(ws, step, "GET", path, headers=headers)
        if answer is None:
            return
        if answer.status == 429 and '"throttled"' in answer.text:
            # The API's budgets (core.api.limits): per key, per workspace, and per address for
            # requests without valid credentials. A refusal, rightly; counted, not a failure.
            self.tally.throttled += 1
            return
        if key != ws.api_key:
            if answer.status != 401 or '"authentication_failed"' not in answer.text:
                self.unexpected(ws, "GET", path, answer, "expected 401 authentication_failed")
            return
        if answer.status != 200:
            self.unexpected(ws, "GET", path, answer, "expected 200")
            return
        try:
            names = [row["name"] for row in json.loads(answer.text)["results"]]
        except (ValueError, KeyError, TypeError):
            self.unexpected(ws, "GET", path, answer, "not a page of projects")
            return
        if not names or not all(name.startswith(ws.marker) for name in names):
            self.unexpected(ws, "GET", path, answer, f"projects of another workspace: {names}")


def _cookies_take(jar: dict[str, str], set_cookies: list[str]) -> None:
    for header in set_cookies:
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            if morsel["max-age"] == "0" or not morsel.value:
                jar.pop(name, None)
            else:
                jar[name] = morsel.value


def _form_body(fields: dict[str, str], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    if file is None:
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    name, content = file
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _redirect(answer: Answer) -> str:
    location = answer.headers.get("Location")
    return f"sent to {location}" if location else _excerpt(answer.text)


def _excerpt(text: str) -> str:
    return re.sub(r"\s+", " ", text)[:160]


def people_plan(count: int, people: int) -> list[list[int]]:
    """Workspace indexes per person: disjoint shares covering all `count` workspaces, or one
    workspace each (shared) when there are more people than workspaces."""
    if people >= count:
        return [[person % count] for person in range(people)]
    return [list(range(person, count, people)) for person in range(people)]


def people_run(
    port: int,
    workspaces: list[Workspace],
    plan: list[list[int]],
    *,
    seconds: float | None = None,
    visits: int | None = None,
    start_at: float | None = None,
) -> Tally:
    """Run one thread per person of `plan` in this process; return what they saw together.

    `seconds` of load counted from `start_at` (a `time.monotonic()` value, shared by the
    processes of a level), or `visits` visits per person.
    """
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.monotonic()))
    begun = time.monotonic()
    until = begun + seconds if seconds is not None else None
    cpu = time.process_time()
    tallies = [Tally() for _ in plan]
    people = [
        Person(port, [workspaces[i] for i in share], workspaces, tally, until)
        for share, tally in zip(plan, tallies, strict=True)
    ]

    def work(person: Person) -> None:
        try:
            person.run(until=until, visits=visits)
        finally:
            person.close()

    threads = [threading.Thread(target=work, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    total.cpu_seconds = time.process_time() - cpu
    return total


# THE BENCHMARK -------------------------------------------------------------------------


def _routing() -> Any:
    """The routing benchmark's harness, beside this file (scripts/bench is not a package).

    Imported when the benchmark runs, not with this module: the test suite loads the client
    from here without it.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import routing

    routing.DB_NAME = DB_NAME  # a database of its own: the other benchmarks drop theirs
    return routing


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def django_step(verb: str, env: dict[str, str], payload: object) -> Any:
    """Run this file's `prepare` or `verify` in a child process set up with Django."""
    done = subprocess.run(
        [sys.executable, __file__, verb],
        input=json.dumps(payload),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{verb} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def server_start(
    routing: Any, name: str, env: dict[str, str], **extra: str
) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn as deployed (deploy/gunicorn.conf.py) with `name` = <wsgi|asgi>-<workers>;
    `extra`: more environment for the server."""
    kind, workers = name.split("-")
    port = routing.free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.asgi:application" if kind == "asgi" else "config.wsgi:application",
        "--config",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--workers",
        workers,
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    if kind == "wsgi":
        command += ["--worker-class", "sync"]  # the config names uvicorn's
    # Under ASGI Django's persistent connections are not reused: the pool is the setting there.
    server_env = {**env, "DATABASE_POOL": "true" if kind == "asgi" else "false", **extra}
    process = subprocess.Popen(command, env=server_env, cwd=ROOT)
    try:
        routing.wait_ready(port)
    except BaseException:
        process.terminate()
        process.wait()
        raise
    return process, port


def _cpu_seconds(pid: str) -> float:
    # Fields 14 and 15 of stat (utime, stime), counted after the command name's ")"; a
    # process's figures include its threads that have ended.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(master_pid: int) -> float:
    """CPU seconds used so far by a gunicorn master and its workers."""
    pids = [str(master_pid)]
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    if children.exists():
        pids += children.read_text().split()
    total = 0.0
    for pid in pids:
        try:
            total += _cpu_seconds(pid)
        except FileNotFoundError:  # a worker that just ended
            continue
    return total


def database_cpu_seconds() -> float:
    """CPU seconds used so far by the PostgreSQL sessions of the benchmark's database,
    found by their process titles (`postgres: <user> <database> <client> <state>`)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            if title.startswith(b"postgres: ") and f" {DB_NAME} ".encode() in title:
                total += _cpu_seconds(pid)
        except OSError:  # a process that just ended
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy so far, every process included (and, in
    a virtual machine, time the host gave to others: steal)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def level_run(port: int, workspaces: list[Workspace], people: int, seconds: float) -> Tally:
    """`people` people for `seconds`, shared among the client processes."""
    plan = people_plan(len(workspaces), people)
    processes = min(CLIENT_PROCESSES, people)
    shares = [plan[index::processes] for index in range(processes)]
    start_at = time.monotonic() + 0.5  # every process starts together
    with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
        futures = [
            pool.submit(people_run, port, workspaces, share, seconds=seconds, start_at=start_at)
            for share in shares
        ]
        total = Tally()
        for future in futures:
            total.merge(future.result())
    return total


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Level:
    """One concurrency level on one server; the CPU figures are in cores."""

    people: int
    rate: float
    p50_ms: float
    p95_ms: float
    server_cores: float
    server_ms_per_request: float  # steadier than the rate when the machine is shared
    database_cores: float
    client_cores: float
    other_cores: float  # everything else the machine ran: Redis, and other people's work
    tally: Tally


def level_measure(
    process: subprocess.Popen[bytes], port: int, workspaces: list[Workspace], people: int
) -> Level:
    """One level's rates and latencies, and the CPU used meanwhile (over the whole time the
    client processes ran, their start and end included, so the shares add up)."""
    began, server, database, machine = (
        time.monotonic(),
        server_cpu_seconds(process.pid),
        database_cpu_seconds(),
        machine_busy_seconds(),
    )
    tally = level_run(port, workspaces, people, LEVEL_SECONDS)
    server = server_cpu_seconds(process.pid) - server
    database = database_cpu_seconds() - database
    machine = machine_busy_seconds() - machine
    wall = time.monotonic() - began
    other = max(0.0, machine - server - database - tally.cpu_seconds)
    return Level(
        people=people,
        rate=tally.requests / LEVEL_SECONDS,
        p50_ms=percentile(tally.latencies, 0.50) * 1000,
        p95_ms=percentile(tally.latencies, 0.95) * 1000,
        server_cores=server / wall,
        server_ms_per_request=server / max(1, tally.checked) * 1000,
        database_cores=database / wall,
        client_cores=tally.cpu_seconds / wall,
        other_cores=other / wall,
        tally=tally,
    )


def server_bench(
    routing: Any, name: str, env: dict[str, str], workspaces: list[Workspace], everything: Tally
) -> list[Level]:
    process, port = server_start(routing, name, env)
    levels: list[Level] = []
    try:
        if WARMUP_SECONDS > 0:
            everything.merge(level_run(port, workspaces, max(LEVELS), WARMUP_SECONDS))
        for people in LEVELS:
            level = level_measure(process, port, workspaces, people)
            everything.merge(level.tally)
            levels.append(level)
            say(
                f"{name} {people:>3} people: {level.rate:6.1f} req/s, p50 {level.p50_ms:6.1f} ms, "
                f"p95 {level.p95_ms:6.1f} ms; cores: server {level.server_cores:.2f} "
                f"({level.server_ms_per_request:.1f} ms per answer), database "
                f"{level.database_cores:.2f}, client {level.client_cores:.2f}, other "
                f"{level.other_cores:.2f}; failures {level.tally.failed}, reconnects "
                f"{level.tally.reconnects}"
            )
    finally:
        process.terminate()
        process.wait()
    return levels


def database_settle(env: dict[str, str]) -> None:
    """VACUUM ANALYZE after creating the workspaces: otherwise autovacuum works through
    their thousands of new tables (and the catalog) while the first server is measured."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def main() -> None:
    routing = _routing()
    started = time.monotonic()
    load_before = os.getloadavg()
    media = tempfile.mkdtemp(prefix="bench-mixed-load-media-")
    try:
        routing.prepare_database()
        env = routing.bench_env("platform", MEDIA_ROOT=media, TENANT_POOL_SIZE="0")
        routing.manage("tenants", "template", env=env)
        say(f"creating {TENANTS} workspaces with sessions, keys, projects and tasks")
        prepared = django_step("prepare", {**env, "BENCH_FAST_HASH": "1"}, TENANTS)
        workspaces = [Workspace(**row) for row in prepared]
        database_settle(env)
        say(f"prepared in {time.monotonic() - started:.0f} s; loading {', '.join(SERVERS)}")
        results: dict[str, list[Level]] = {}
        everything = Tally()
        for name in SERVERS:
            results[name] = server_bench(routing, name, env, workspaces, everything)
        say("checking the database: every accepted task and file in its own workspace")
        problems = django_step(
            "verify",
            env,
            {
                "subdomains": [ws.subdomain for ws in workspaces],
                "created": everything.created,
                "uploaded": everything.uploaded,
            },
        )
    finally:
        shutil.rmtree(media, ignore_errors=True)

    for problem in problems[:SHOWN_FAILURES]:
        say(f"DATABASE: {problem}")
    for failure in everything.shown:
        say(f"FAILED {failure}")
    elapsed = time.monotonic() - started
    section = report(routing, results, everything, problems, elapsed, load_before)
    print(section)
    if everything.failed or problems:
        counts = ", ".join(f"{kind} {everything.failures[kind]}" for kind in FAILURE_KINDS)
        raise SystemExit(
            f"mixed load FAILED: {counts}; database problems {len(problems)} "
            "(docs/benchmarks.md left as it was)"
        )
    if REPORT:
        routing.write_report(section, name="mixed-load")
        say("wrote docs/benchmarks.md")


def best(levels: list[Level]) -> Level | None:
    within = [level for level in levels if level.p95_ms < P95_TARGET_MS]
    return max(within, key=lambda level: level.rate) if within else None


def report(
    routing: Any,
    results: dict[str, list[Level]],
    everything: Tally,
    problems: list[str],
    seconds: float,
    load_before: tuple[float, float, float],
) -> str:
    def label(name: str) -> str:
        kind, workers = name.split("-")
        return f"{kind.upper()}, {workers} workers"

    def people(level: Level) -> str:
        return "1 person" if level.people == 1 else f"{level.people} people"

    header = "| " + " | ".join(COLUMNS) + " |"
    rows = [
        f"| {label(name)} | {level.people} | {level.rate:.0f} | {level.p50_ms:.0f} "
        f"| {level.p95_ms:.0f} | {level.server_cores:.2f} | {level.server_ms_per_request:.1f} "
        f"| {level.database_cores:.2f} "
        f"| {level.client_cores:.2f} | {level.other_cores:.2f} "
        f"| {level.tally.failures['server error']} | {level.tally.failures['cross-tenant']} |"
        for name, levels in results.items()
        for level in levels
    ]
    summary = []
    for name, levels in results.items():
        top = best(levels)
        peak = max(levels, key=lambda level: level.rate)
        within = f"{top.rate:.0f} ({people(top)}, p95 {top.p95_ms:.0f} ms)" if top else "none"
        cpu = statistics.median(level.server_ms_per_request for level in levels)
        summary.append(
            f"| {label(name)} | {within} | {peak.rate:.0f} ({people(peak)}, "
            f"p95 {peak.p95_ms:.0f} ms) | {cpu:.1f} |"
        )
    chosen = {name: best(levels) or levels[0] for name, levels in results.items()}
    step_rows = []
    seen = {step for level in chosen.values() for step in level.tally.by_step}
    for step in [*STEPS, *sorted(seen - set(STEPS))]:  # (S3 adds the presigned download)
        cells = []
        for level in chosen.values():
            values = level.tally.by_step.get(step, [])
            cells.append(
                f"{percentile(values, 0.5) * 1000:.0f} / {percentile(values, 0.95) * 1000:.0f}"
            )
        step_rows.append(f"| {step} | " + " | ".join(cells) + " |")
    step_header = " | ".join(f"{label(name)}, {people(level)}" for name, level in chosen.items())
    failures = everything.failures
    verdict = "every check held" if not everything.failed and not problems else "THE RUN FAILED"
    tasks = sum(len(titles) for titles in everything.created.values())
    files = sum(len(names) for names in everything.uploaded.values())
    load = ", ".join(f"{value:.1f}" for value in load_before)
    throttled = (
        f" ({everything.throttled} API answers were 429 from the API's request budgets: a "
        "refusal the budgets allow, not a failure)"
        if everything.throttled
        else ""
    )
    isolation = (
        f"**Isolation: {failures['cross-tenant']} cross-tenant answers, "
        f"{failures['server error']} server errors, {failures['unexpected']} unexpected "
        f"answers, {failures['no answer']} requests without an answer and {len(problems)} "
        f"database problems; {verdict}.** All {everything.checked:,} answers, warm-ups "
        "included, were checked: no 5xx, the expected status of each step, the person's own "
        "workspace on every page and in the API, and no marker of any other workspace anywhere "
        f"in the body{throttled}. Afterwards, in the database: "
        f"each of the {tasks:,} tasks and {files:,} "
        "files the servers accepted is in its own workspace (each file read back through that "
        "workspace's storage), and no workspace holds another's marker."
    )
    machine = (
        f"Measured {time.strftime('%Y-%m-%d')} on {routing.machine()}; PostgreSQL, Redis, "
        f"the servers and the load client all on this machine (load average {load} when the "
        f"run began; the run took {seconds / 60:.0f} min). **The client competes with the "
        "server for the same cores, and the machine is shared with other work**: the table "
        "gives, in cores, the CPU used during each level by the server (gunicorn and its "
        "workers), by the benchmark database's PostgreSQL sessions, by the client, and by "
        "everything else the machine ran (Redis, and other people's work). Where \"other "
        f"work\" is large, the server had less than the machine's {os.cpu_count()} cores, and "
        "the rates measure the machine more than the server; its CPU time per answer moves "
        "much less with the machine's other load, and is the figure to compare servers by."
    )
    method = (
        f"Method: {TENANTS} workspaces made by the platform's own tenant creation, each with "
        "its owner signed in beforehand (a session made in preparation, so sign-in is not "
        "measured), an API key, two projects, three tasks and a file; every name a workspace "
        "holds carries its marker `m-<subdomain>-`. A simulated person visits its share of "
        "the workspaces in turn, back to back: home page, project list, a project's page, add "
        "a task and change another (page forms, the CSRF token from the cookie), upload a "
        "small file, open a file of the project and fetch it through its signed link, "
        "`GET /api/v1/projects` with the workspace's key; then, on the next workspace's host, "
        "this one's API key (expected: 401), its file link (404) and its session cookie (sent "
        "to sign in). Each person keeps one connection across its workspaces, as a proxy in "
        "front would (kept alive by uvicorn; sync workers close it after each answer); "
        f"{CLIENT_PROCESSES} client processes, a thread per person; {LEVEL_SECONDS:g} s per "
        f"level after a {WARMUP_SECONDS:g} s warm-up per server. Servers: gunicorn with "
        "`deploy/gunicorn.conf.py`; WSGI: sync workers, persistent database connections; "
        "ASGI: uvicorn workers, Django's psycopg pool (`DATABASE_POOL=true`). API request "
        "budgets are lifted, as for every benchmark (`bench_settings.py`). Rates count "
        "requests answered within each level's window."
    )
    prose = "\n\n".join(
        textwrap.fill(paragraph, 92, break_on_hyphens=False)
        for paragraph in (machine, isolation, method)
    )
    return f"""## Mixed load across many workspaces (`scripts/bench/mixed_load.py`)

{prose}

{header}
|---|{"---:|" * (len(COLUMNS) - 1)}
{chr(10).join(rows)}

Highest rate with p95 under {P95_TARGET_MS:.0f} ms, the peak, and the server's CPU time per
answer (median over the levels):

| server | best req/s with p95 < {P95_TARGET_MS:.0f} ms | peak req/s | server CPU ms/answer |
|---|---:|---:|---:|
{chr(10).join(summary)}

Each step's p50 / p95 in ms at that best level (at the first level where none qualified):

| step | {step_header} |
|---|{"---:|" * len(chosen)}
{chr(10).join(step_rows)}
"""


def _django_main(verb: str) -> None:
    import django

    django.setup()
    payload = json.loads(sys.stdin.read())
    if verb == "prepare":
        rows = [asdict(workspace_prepare(f"load{n:03d}")) for n in range(1, int(payload) + 1)]
        print(json.dumps(rows))
    else:
        problems = workspaces_verify(payload["subdomains"], payload["created"], payload["uploaded"])
        print(json.dumps(problems))


if __name__ == "__main__":
    if sys.argv[1:2] in (["prepare"], ["verify"]):
        _django_main(sys.argv[1])
    else:
        main()
