"""Bounded fuzzing: hostile input to signup and to a workspace's forms and API.

Whatever arrives, the answer is a success or a 4xx (problem+json with a documented code on
the API, form errors on pages): never a 5xx, never a traceback, never a half-made tenant.

Derandomized, so every run tries the same examples. Each example runs in a savepoint that
is rolled back, so one example's tenant, project or invitation is gone before the next.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.db import connection, transaction
from django.test import Client
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from shared_apps.accounts.models import User
from shared_apps.tenants.models import Domain, Tenant
from tenancy import public_context, tenant_context
from tenancy.db import tenant_connection
from tenancy.host_routes import ROUTES
from tenant_apps.members.models import Invitation
from tenant_apps.projects.models import Attachment, Project, Task
from tests.factories import TEST_PASSWORD, ProjectFactory
from tests.fixtures import TENANT_A, browser_for, follow_handoff

PROBLEM = "application/problem+json"
DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
DOCUMENTED_CODES = frozenset(
    re.findall(r"^\| `([a-z_]+)` \| \d{3} \|", DOC.read_text(), flags=re.MULTILINE)
)


def fuzz(max_examples: int) -> settings:
    """Settings for one fuzz target: a fixed set of examples, the same on every run."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
        database=None,  # derandomized: nothing to replay, nothing written to disk
        print_blob=False,
    )


# -- strategies ---------------------------------------------------------------------------

# Text people (or scripts) type that breaks something somewhere: a header, a log line, a
# terminal, a template, a query, a length check that counts before normalizing.
SPECIALS = [
    "\x00",
    "\r\n",
    "\n",
    "\r",
    "\t",
    "\x0b",
    "\x7f",
    "\x85",
    "\x1b[31m",
    "\x1b[2J",
    "\x1b]0;owned\x07",
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u2066",
    "\u200b",
    "\ufeff",
    "\u2028",
    "\u00a0",
    "\U0001f469\u200d\U0001f4bb",  # emoji joined by a zero-width joiner
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "e\u0301",  # decomposed: NFC makes one character
    "\u0958",  # NFC makes it two characters
    "\ufdfa",  # one character, eighteen under NFKC
    "\u0130",  # lower() makes it two characters
    "\u212a",  # Kelvin sign: lower() makes ASCII k
    "\u017f",
    "\u00df",
    "' OR 1=1 --",
    "%s%n",
    "{0}{name}",
    "{{ 7|add:7 }}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\\",
    '"',
    "@",
    ".",
    "-",
    " ",
]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight (one_of counts a repeat once)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


# Every code point but surrogates: controls, private use, unassigned, every plane.
hostile_char = st.characters(exclude_categories=["Cs"])
fragment = st.one_of(st.sampled_from(SPECIALS), st.text(hostile_char, min_size=1, max_size=20))
hostile_text = st.one_of(
    st.text(hostile_char, max_size=40),
    st.lists(fragment, max_size=8).map("".join),
    # Long: a fragment repeated to a few thousand characters.
    st.builds(lambda part, times: (part * times)[:4000], fragment, st.integers(20, 400)),
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=8,
)

# Bodies a JSON parser has to refuse (or survive): broken syntax, JavaScript's constants,
# numbers past float and int limits, lone surrogates, invalid UTF-8.
RAW_JSON = [
    b"",
    b"{",
    b'{"name": ',
    b"NaN",
    b'{"name": NaN}',
    b'{"name": Infinity}',
    b"1e999999",
    b"9" * 5000,
    b'{"name": "\\ud800"}',
    b'{"name": "\\udfff\\ud800"}',
    b'{"name": "caf\xc3"}',
    b"\xff\xfe{\x00}\x00",
    b'{"a": 1, "a": 2}',
    b"[" * 31 + b"]" * 31,
]
raw_body = st.one_of(st.sampled_from(RAW_JSON), st.binary(max_size=200))


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for part in parts:
        body.update(part)
    return body


@st.composite
def mutated(
    draw: st.DrawFn,
    valid: dict[str, st.SearchStrategy[Any]],
    hostile: st.SearchStrategy[Any],
) -> dict[str, Any]:
    """A body that would pass, with up to two fields made hostile or left out, and perhaps
    fields nobody asked for; every field hostile or missing in one example of five.

    Mostly valid bodies get past the parser and serializer to the service and the database,
    where a refusal has to be an answer too.
    """
    if draw(st.integers(0, 4)) == 0:
        return draw(
            st.builds(
                merged,
                st.fixed_dictionaries(
                    {}, optional={n: weighted((1, v), (2, hostile)) for n, v in valid.items()}
                ),
                st.dictionaries(hostile_text, hostile, max_size=3),
            )
        )
    body = {key: draw(value) for key, value in valid.items()}
    for key in draw(st.lists(st.sampled_from(sorted(valid)), max_size=2, unique=True)):
        if draw(st.booleans()):
            body[key] = draw(hostile)
        else:
            del body[key]
    body.update(draw(st.dictionaries(hostile_text, hostile, max_size=1)))
    return body


def wrapped(value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A plausible value with hostile text around it, sometimes."""
    edge = weighted((3, st.just("")), (1, fragment))
    return st.tuples(edge, value, edge).map("".join)


def without_nul(text: str) -> str:
    return text.replace("\x00", "")


# Values a client would send, in hostile clothes where the service is meant to cope:
# names full of controls and emoji, subdomains and e-mails in odd case with spaces around.
name = st.tuples(st.sampled_from(["Fz", "Ünï", "\U0001f680"]), hostile_text).map(
    lambda parts: without_nul(parts[0] + parts[1])[:120]
)
free_subdomain = st.from_regex(r"\A[ ]?[Ff][Zz][a-z0-9]{1,10}(-[a-z0-9]{1,6})?[ ]?\Z")
subdomain = weighted(
    (4, free_subdomain),
    # Taken by tenant A (in any case), or kept for the platform.
    (1, st.sampled_from(["alpha", " ALPHA ", "Alpha", "www", "admin", "api"])),
)
email = st.one_of(
    st.from_regex(r"\A[a-zA-Z0-9._+-]{1,20}@[Ff]uzz\.test\Z"),
    st.from_regex(r"\A[a-z0-9]{1,8}@[a-z]{1,8}\.test\Z"),
    # Letters a case-insensitive [A-Z] matches in Unicode; international domains.
    st.tuples(
        st.sampled_from(["\u017f", "\u0131", "\u212a", "\u0130", "\u00e9", "\u01c6", "x"]),
        st.sampled_from(["fuzz.test", "b\u00fccher.test", "xn--bcher-kva.test", "\uff46uzz.test"]),
    ).map(lambda parts: f"{parts[0]}@{parts[1]}"),
    st.emails(),
)
password = st.one_of(
    st.just(TEST_PASSWORD),
    st.text(hostile_char, min_size=12, max_size=60).map(without_nul).filter(lambda p: len(p) > 11),
)
plan = st.sampled_from(["", "free", "pro", " pro "])
description = hostile_text.map(without_nul)

# JSON can carry what UTF-8 cannot: a lone surrogate, escaped as \\udXXX by json.dumps.
surrogate_text = st.tuples(
    name, st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
).map("".join)
json_hostile = st.one_of(
    hostile_text, json_value, surrogate_text, wrapped(subdomain), wrapped(email)
)
signup_object = mutated(
    {"name": name, "subdomain": subdomain, "email": email, "password": password, "plan": plan},
    json_hostile,
)


@st.composite
def json_request(draw: st.DrawFn, obj: st.SearchStrategy[dict[str, Any]]) -> tuple[bytes, str]:
    """A body and its Content-Type: usually a JSON object, else anything else."""
    kind = draw(st.sampled_from(["object"] * 6 + ["value", "raw", "type"]))
    if kind == "object":
        return json.dumps(draw(obj)).encode(), "application/json"
    if kind == "value":
        return json.dumps(draw(json_value)).encode(), "application/json"
    if kind == "raw":
        return draw(raw_body), "application/json"
    content_type = draw(
        st.sampled_from(
            [
                "text/plain",
                "application/xml",
                "application/json; charset=latin-1",
                "application/json; charset=utf-16",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/form-data; boundary=x",
                "",
            ]
        )
    )
    return json.dumps(draw(obj)).encode(), content_type


# What a form field holds when it is not what the form expects: text, a near miss of a
# subdomain or address, a value sent twice, or an odd choice, number or date.
ODD_VALUES = [
    *["0000-00-00", "2024-02-30", "2024-13-01", "10000-01-01", "-0001-01-01", "1e10", "today"],
    *["0", "-1", "99999", "9" * 30, "1.0", "1e3", "0x1", "\uff11"],  # last: fullwidth 1
    *["archived", "TODO", "todo ", "superuser", "Owner", "owner"],
]
form_value = st.one_of(
    hostile_text,
    wrapped(subdomain),
    wrapped(email),
    st.sampled_from(ODD_VALUES),
    st.lists(hostile_text, min_size=2, max_size=3),
)


def form_body(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A form post: fields valid, hostile, repeated or missing, plus strangers."""
    return mutated(fields, form_value)


URLENCODED = "application/x-www-form-urlencoded"
# Form bodies no browser sends: broken escapes, UTF-8 that is not, a surrogate encoded as
# UTF-8, more fields than Django parses.
RAW_FORMS = [
    b"%",
    b"name=%zz&subdomain=%",
    b"name=%ED%A0%80&subdomain=fzsur&email=s%40fuzz.test&password=correct-horse-battery-staple",
    b"name=%FF%FE&subdomain=fz%00x&email=%C0%80%40fuzz.test",
    b"&&&==&=",
    b"a=1&" * 1200,
]


@st.composite
def form_request(draw: st.DrawFn, body: st.SearchStrategy[dict[str, Any]]) -> Any:
    """What the test client posts: a dict (multipart), or urlencoded bytes and their type."""
    kind = draw(st.sampled_from(["multipart"] * 5 + ["urlencoded", "raw"]))
    if kind == "multipart":
        return draw(body)
    if kind == "urlencoded":
        return urlencode(draw(body), doseq=True).encode(), URLENCODED
    return draw(st.one_of(st.sampled_from(RAW_FORMS), st.binary(max_size=200))), URLENCODED


def form_post(client: Client, path: str, sent: Any) -> Any:
    if isinstance(sent, tuple):
        return client.post(path, data=sent[0], content_type=sent[1])
    return client.post(path, sent)


# -- checks -------------------------------------------------------------------------------


def _described(method: str, path: str, body: Any, response: Any) -> str:
    shown = body if len(repr(body)) < 2000 else f"{repr(body)[:2000]}..."
    return f"{method} {path} {shown!r} -> {response.status_code}: {response.content[:600]!r}"


def assert_no_server_error(
    request: str, response: Any, caplog: pytest.LogCaptureFixture, *, counted: bool = True
) -> None:
    """No 5xx, no traceback in the body, nothing logged as an error.

    Django logs a refused suspicious request (too many fields, say) to `django.security`
    at ERROR by design; that is the refusal, not a failure.
    """
    if counted:  # shown by --hypothesis-show-statistics
        code = response.json().get("code") if response["Content-Type"] == PROBLEM else None
        event(f"{response.status_code} {code or ''}".strip())
    assert response.status_code < 500, request
    assert b"Traceback" not in response.content, request
    errors = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and not record.name.startswith("django.security.")
    ]
    assert errors == [], f"{request}\nlogged: {[record.getMessage() for record in errors]}"


def assert_form_answer(request: str, response: Any, form: str, allowed: set[int]) -> None:
    """A page's answer: one of `allowed`; a 200 or 400 page shows the form with its errors.

    A body Django cannot parse (a multipart header past its limit) gets Django's own plain
    400 page before any view runs: refused, not a failure.
    """
    assert response.status_code in allowed, request
    if response.status_code in {200, 400}:
        if response.context is None:
            assert response.status_code == 400, request
            assert b"<h1>Bad Request (400)</h1>" in response.content, request
            event("unparsed body")
        else:
            errors = response.context[form].errors
            assert errors, request
            event(f"form errors: {', '.join(sorted(errors))}")


def assert_problem(request: str, response: Any) -> None:
    assert response["Content-Type"] == PROBLEM, request
    body = response.json()
    assert body["status"] == response.status_code, request
    assert body["code"] in DOCUMENTED_CODES, request


@contextmanager
def rolled_back(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Run one example in a savepoint that is rolled back, with fresh routes and logs."""
    ROUTES.forget()
    caplog.clear()
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        ROUTES.forget()
        tenant_connection().set_schema_to_public()


def _tenant_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE 't\\_%%'")
        return {row[0] for row in cursor.fetchall()}


def _fleet() -> tuple[frozenset[str], frozenset[str]]:
    """The tenants (by subdomain) and the tenant schemas that exist now."""
    with public_context():
        return frozenset(Tenant.objects.values_list("subdomain", flat=True)), frozenset(
            _tenant_schemas()
        )


def assert_no_half_made_tenant(request: str) -> None:
    """Every tenant has its primary domain, its schema and an owner in it."""
    with public_context():
        schemas = _tenant_schemas()
        tenants = list(Tenant.objects.all())
        with_domain = set(
            Domain.objects.filter(is_primary=True).values_list("tenant_id", flat=True)
        )
    for tenant in tenants:
        assert tenant.pk in with_domain, f"{request}\n{tenant.subdomain} has no domain"
        assert tenant.schema_name in schemas, f"{request}\n{tenant.subdomain} has no schema"
        with tenant_context(tenant):
            has_owner = User.objects.filter(role=User.Role.OWNER).exists()
        assert has_owner, f"{request}\n{tenant.subdomain} has no owner"


def assert_signup_outcome(
    request: str, created: bool, before: tuple[frozenset[str], frozenset[str]]
) -> None:
    """A signup made exactly one whole tenant, or nothing at all."""
    tenants, schemas = _fleet()
    if created:
        assert len(tenants - before[0]) == 1, request
        assert len(schemas - before[1]) == 1, request
    else:
        assert (tenants, schemas) == before, request
    assert_no_half_made_tenant(request)


def _count(tenant: Tenant, model: Any) -> int:
    with tenant_context(tenant):
        return int(model.objects.count())


# -- signup, on the root host -------------------------------------------------------------


@pytest.fixture
def fuzz_root(root: Client, settings: Any, caplog: pytest.LogCaptureFixture) -> Client:
    """The root site for many signups in one test: limits out of reach, 500s as answers."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signup": {"client": "100000/m"}}
    caplog.set_level(logging.WARNING)
    root.raise_request_exception = False
    return root


@fuzz(120)
@given(sent=json_request(signup_object))
@example(
    sent=(
        b'{"name": "\\ud800", "subdomain": "fzs", "email": "s@fuzz.test", '
        b'"password": "correct-horse-battery-staple"}',
        "application/json",
    )
)
def test_signup_api_answers_201_or_a_problem_and_never_half_makes_a_tenant(
    fuzz_root: Client, tenant_a: Tenant, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    body, content_type = sent
    with rolled_back(caplog):
        before = _fleet()
        response = fuzz_root.post("/api/v1/signup", data=body, content_type=content_type)
        described = _described("POST", "/api/v1/signup", body, response)

        assert_no_server_error(described, response, caplog)
        if response.status_code == 201:
            assert response.json()["subdomain"] in _fleet()[0] - before[0], described
        else:
            assert 400 <= response.status_code < 500, described
            assert_problem(described, response)
        assert_signup_outcome(described, response.status_code == 201, before)
    assert _fleet() == before  # the example's tenant went with its savepoint


signup_form = form_request(
    form_body(name=name, subdomain=subdomain, email=email, password=password, plan=plan)
)


@fuzz(70)
@given(sent=signup_form)
@example(sent={"name": "\x00", "subdomain": "fzn", "email": "n@fuzz.test", "password": "\x00"})
def test_signup_page_redirects_or_shows_form_errors_and_never_half_makes_a_tenant(
    fuzz_root: Client, tenant_a: Tenant, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    with rolled_back(caplog):
        before = _fleet()
        response = form_post(fuzz_root, "/signup/", sent)
        described = _described("POST", "/signup/", sent, response)

        assert_no_server_error(described, response, caplog)
        assert_form_answer(described, response, "form", {200, 302, 400, 429})
        assert_signup_outcome(described, response.status_code == 302, before)
        if response.status_code == 302:
            # The new owner lands on a home page that shows the name they typed.
            browser, landed = follow_handoff(response["Location"])
            assert landed.status_code == 302, described
            browser.raise_request_exception = False
            assert_renders(browser, "/", described, caplog)
    assert _fleet() == before


# -- a workspace, as its owner ------------------------------------------------------------


@pytest.fixture
def fuzz_owner(
    tenant_a: Tenant, settings: Any, caplog: pytest.LogCaptureFixture
) -> tuple[Client, User]:
    """Tenant A's owner, signed in, for many posts in one test."""
    settings.RATE_LIMITS = {
        **settings.RATE_LIMITS,
        "invitation": {"actor": "100000/m", "client": "100000/m"},
    }
    caplog.set_level(logging.WARNING)
    with tenant_context(tenant_a):
        owner = User.objects.get(email=TENANT_A.owner_email)
    client = browser_for(tenant_a, owner)
    client.raise_request_exception = False
    return client, owner


def assert_renders(
    client: Client, path: str, request: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The page that shows what the request stored renders it."""
    page = client.get(path)
    assert_no_server_error(f"{request}\nthen GET {path}", page, caplog, counted=False)
    assert page.status_code == 200, f"{request}\nthen GET {path} -> {page.status_code}"


@fuzz(60)
@given(sent=form_request(form_body(name=name, description=description)))
def test_project_form_redirects_or_shows_form_errors(
    fuzz_owner: tuple[Client, User], tenant_a: Tenant, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    client, _owner = fuzz_owner
    with rolled_back(caplog):
        before = _count(tenant_a, Project)
        response = form_post(client, "/projects/new/", sent)
        described = _described("POST", "/projects/new/", sent, response)

        assert_no_server_error(described, response, caplog)
        assert_form_answer(described, response, "form", {302, 400})
        assert _count(tenant_a, Project) == before + (response.status_code == 302), described
        if response.status_code == 302:
            assert_renders(client, response["Location"], described, caplog)
            assert_renders(client, "/projects/", described, caplog)


@pytest.fixture
def fuzz_project(tenant_a: Tenant) -> Project:
    with tenant_context(tenant_a):
        return ProjectFactory.create()


due_date = st.one_of(st.just(""), st.dates(min_value=date(1, 1, 1)).map(date.isoformat))
task_form = form_request(
    form_body(
        title=name,
        status=st.sampled_from(Task.Status.values),
        assignee=st.sampled_from(["", "owner"]),
        due_date=due_date,
    )
)


@fuzz(80)
@given(
    sent=task_form,
    project=weighted((4, st.just("ours")), (1, st.integers(min_value=0, max_value=2**80))),
)
def test_task_form_redirects_or_shows_form_errors(
    fuzz_owner: tuple[Client, User],
    fuzz_project: Project,
    tenant_a: Tenant,
    caplog: pytest.LogCaptureFixture,
    sent: Any,
    project: Any,
) -> None:
    client, owner = fuzz_owner
    if isinstance(sent, dict) and sent.get("assignee") == "owner":  # an id known only now
        sent = {**sent, "assignee": str(owner.pk)}
    project_id = fuzz_project.pk if project == "ours" else project
    path = f"/projects/{project_id}/tasks/"
    with rolled_back(caplog):
        before = _count(tenant_a, Task)
        response = form_post(client, path, sent)
        described = _described("POST", path, sent, response)

        assert_no_server_error(described, response, caplog)
        if project_id != fuzz_project.pk:
            assert response.status_code == 404, described
        else:
            assert_form_answer(described, response, "task_form", {302, 400})
        assert _count(tenant_a, Task) == before + (response.status_code == 302), described
        if response.status_code == 302:
            assert_renders(client, response["Location"], described, caplog)
            assert_renders(client, "/", described, caplog)  # the dashboard counts open tasks


@fuzz(60)
@given(sent=form_request(form_body(email=email, role=st.sampled_from(User.Role.values))))
def test_invitation_form_redirects_or_shows_form_errors(
    fuzz_owner: tuple[Client, User], tenant_a: Tenant, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    client, _owner = fuzz_owner
    with rolled_back(caplog):
        before = _count(tenant_a, Invitation)
        response = form_post(client, "/members/invite/", sent)
        described = _described("POST", "/members/invite/", sent, response)

        assert_no_server_error(described, response, caplog)
        assert_form_answer(described, response, "invite_form", {302, 400, 429})
        assert _count(tenant_a, Invitation) == before + (response.status_code == 302), described
        if response.status_code == 302:
            assert_renders(client, response["Location"], described, caplog)


project_object = mutated({"name": name, "description": description}, json_hostile)


@fuzz(80)
@given(sent=json_request(project_object))
def test_project_api_answers_201_or_a_problem(
    fuzz_owner: tuple[Client, User], tenant_a: Tenant, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    client, _owner = fuzz_owner
    body, content_type = sent
    with rolled_back(caplog):
        before = _count(tenant_a, Project)
        response = client.post("/api/v1/projects", data=body, content_type=content_type)
        described = _described("POST", "/api/v1/projects", body, response)

        assert_no_server_error(described, response, caplog)
        if response.status_code != 201:
            assert 400 <= response.status_code < 500, described
            assert_problem(described, response)
        assert _count(tenant_a, Project) == before + (response.status_code == 201), described
        if response.status_code == 201:
            assert_renders(client, f"/projects/{response.json()['id']}/", described, caplog)


invitation_object = mutated(
    {"email": email, "role": st.sampled_from(User.Role.values)}, json_hostile
)


@fuzz(60)
@given(sent=json_request(invitation_object))
def test_invitation_api_answers_201_or_a_problem(
    fuzz_owner: tuple[Client, User], tenant_a: Tenant, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    client, _owner = fuzz_owner
    body, content_type = sent
    with rolled_back(caplog):
        before = _count(tenant_a, Invitation)
        response = client.post("/api/v1/invitations", data=body, content_type=content_type)
        described = _described("POST", "/api/v1/invitations", body, response)

        assert_no_server_error(described, response, caplog)
        if response.status_code != 201:
            assert 400 <= response.status_code < 500, described
            assert_problem(described, response)
        assert _count(tenant_a, Invitation) == before + (response.status_code == 201), described
        if response.status_code == 201:
            assert_renders(client, "/members/", described, caplog)


# A file's name is the uploader's to choose: any text, a path, nothing at all.
file_name = st.one_of(hostile_text, st.sampled_from(["", ".", "..", "../../x.txt", "a\x00b.txt"]))


def sent_file(name: str, body: bytes) -> io.BytesIO:
    """A file part as the test client encodes it, named as a hostile client would name it
    (SimpleUploadedFile refuses some of these names before anything is sent)."""
    part = io.BytesIO(body)
    part.name = name
    return part


file_part = st.builds(sent_file, file_name, weighted((4, st.binary(min_size=1)), (1, st.just(b""))))
upload_fields = weighted(
    (4, st.fixed_dictionaries({"file": file_part})),
    # No file, or a stranger beside it.
    (1, st.fixed_dictionaries({}, optional={"file": file_part, "extra": hostile_text})),
)


@pytest.fixture
def fuzz_media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tenancy.storage.TenantFileSystemStorage"},
    }
    return tmp_path


@fuzz(40)
@given(fields=upload_fields)
def test_attachment_upload_api_answers_201_or_a_problem(
    fuzz_owner: tuple[Client, User],
    fuzz_media: Path,
    tenant_a: Tenant,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, Any],
) -> None:
    client, _owner = fuzz_owner
    with rolled_back(caplog):
        with tenant_context(tenant_a):
            project = ProjectFactory.create()
        path = f"/api/v1/projects/{project.pk}/attachments"
        response = client.post(path, fields)
        described = _described("POST", path, fields, response)

        assert_no_server_error(described, response, caplog)
        with tenant_context(tenant_a):
            stored = Attachment.objects.filter(project=project).count()
        if response.status_code != 201:
            assert 400 <= response.status_code < 500, described
            assert_problem(described, response)
        assert stored == (response.status_code == 201), described
        if response.status_code == 201:
            link = client.get(urlsplit(response.json()["download_url"]).path)
            assert link.status_code == 200, described
            assert_renders(client, f"/projects/{project.pk}/", described, caplog)
