"""`manage.py tenants create|list`: the operator's first verbs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from shared_apps.fleet import creation
from shared_apps.tenants.models import Domain, Tenant
from tenancy import public_context, tenant_context
from tenancy.schemas import schema_exists
from tests.factories import TEST_PASSWORD
from tests.fixtures import CliResult, sign_in_request


def run_tenants(*args: str) -> str:
    out = io.StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def feed(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    return feed


def test_create_makes_an_active_tenant_with_its_owner(
    db: None, stdin: Callable[[str], None]
) -> None:
    stdin(TEST_PASSWORD + "\n")
    output = run_tenants(
        "create",
        "--subdomain",
        " Acme ",
        "--name",
        "Acme",
        "--owner-email",
        "Owner@Acme.test",
        "--password-stdin",
    )
    assert "Created tenant 'acme' (Acme) at http://acme.localhost/" in output
    assert "password" not in output.lower()  # the operator chose it; never echo it

    with public_context():
        tenant = Tenant.objects.get(subdomain="acme")
        assert tenant.status == Tenant.Status.ACTIVE
        assert tenant.schema_name == f"t_{tenant.id.hex}"
        assert Domain.objects.get(tenant=tenant).domain == "acme.localhost"
        assert schema_exists(tenant.schema_name)
    with tenant_context(tenant):
        owner = authenticate(sign_in_request(), username="owner@acme.test", password=TEST_PASSWORD)
        assert owner is not None
        assert owner.is_staff


def test_create_with_json_generates_a_password_and_shows_it_once(
    db: None, stdin: Callable[[str], None]
) -> None:
    stdin("")  # not a terminal, no --password-stdin: generate one
    result = json.loads(
        run_tenants(
            "create",
            "--subdomain",
            "globex",
            "--name",
            "Globex",
            "--owner-email",
            "it@globex.test",
            "--json",
        )
    )
    assert result["created"] is True
    assert result["subdomain"] == "globex"
    assert result["host"] == "globex.localhost"
    assert len(result["generated_password"]) >= 20
    with public_context():
        tenant = Tenant.objects.get(subdomain="globex")
    with tenant_context(tenant):
        assert authenticate(
            sign_in_request(), username="it@globex.test", password=result["generated_password"]
        )
    listed = json.loads(run_tenants("list", "--json"))
    assert "generated_password" not in json.dumps(listed)


def test_create_if_missing_leaves_an_existing_tenant_alone(tenant_a: Tenant) -> None:
    result = json.loads(
        run_tenants(
            "create",
            "--subdomain",
            "alpha",
            "--name",
            "Other",
            "--owner-email",
            "x@alpha.test",
            "--if-missing",
            "--json",
        )
    )
    assert result["created"] is False
    assert result["name"] == "Alpha Inc"


def test_list_shows_every_tenant(tenant_a: Tenant, tenant_b: Tenant) -> None:
    listed = json.loads(run_tenants("list", "--json"))
    by_subdomain = {row["subdomain"]: row for row in listed["tenants"]}
    assert by_subdomain["alpha"]["status"] == "active"
    assert by_subdomain["alpha"]["host"] == "alpha.localhost"
    assert by_subdomain["beta"]["schema_name"] == tenant_b.schema_name
    assert listed["count"] == len(listed["tenants"])

    text = run_tenants("list")
    assert "alpha" in text
    assert "alpha.localhost" in text
    assert "tenant(s)" in text


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [
        ("ab", "3 to 40 characters"),
        ("9lives", "start with a letter"),
        ("double--hyphen", "single hyphens"),
        ("trailing-", "not end with a hyphen"),
        ("www", "reserved"),
        ("pg_temp", "single hyphens"),
        (" API ", "reserved"),
        ("x" * 41, "3 to 40 characters"),
    ],
)
def test_create_refuses_bad_subdomains(db: None, subdomain: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run_tenants("create", "--subdomain", subdomain, "--name", "X", "--owner-email", "a@b.test")
    with public_context():
        assert not Tenant.objects.filter(name="X").exists()


def test_taken_subdomain_is_one_line_and_exit_1(manage_cli: Callable[..., CliResult]) -> None:
    result = manage_cli(
        "tenants",
        "create",
        "--subdomain",
        "ALPHA",
        "--name",
        "Again",
        "--owner-email",
        "someone@alpha.test",
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: The subdomain 'alpha' is already taken."
    assert "Traceback" not in result.stderr


def test_malformed_email_is_one_line_and_creates_nothing(
    manage_cli: Callable[..., CliResult],
) -> None:
    result = manage_cli(
        "tenants",
        "create",
        "--subdomain",
        "initech",
        "--name",
        "Initech",
        "--owner-email",
        "not-an-address",
        "--json",
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: 'not-an-address' is not a valid e-mail address."
    listed = manage_cli("tenants", "list", "--json")
    assert listed.returncode == 0
    assert "initech" not in listed.stdout


def test_weak_password_is_refused(db: None, stdin: Callable[[str], None]) -> None:
    stdin("12345\n")
    with pytest.raises(CommandError, match="too short"):
        run_tenants(
            "create",
            "--subdomain",
            "weak",
            "--name",
            "Weak",
            "--owner-email",
            "a@weak.test",
            "--password-stdin",
        )


def test_unknown_verb_is_refused(manage_cli: Callable[..., CliResult]) -> None:
    result = manage_cli("tenants", "explode")
    assert result.returncode != 0
    assert "invalid choice: 'explode'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "failing_step", ["_tenant_row_create", "_domain_create", "schema_provision", "_owner_create"]
)
def test_failure_at_any_step_leaves_no_tenant_domain_or_schema(
    db: None, monkeypatch: pytest.MonkeyPatch, failing_step: str
) -> None:
    # given: the step runs, then fails (its own writes happened)
    real_step = getattr(creation, failing_step)
    created_schemas: list[str] = []

    def step_then_fail(**kwargs: Any) -> None:
        real_step(**kwargs)
        with public_context():
            created_schemas.extend(
                Tenant.objects.filter(subdomain="doomed").values_list("schema_name", flat=True)
            )
        raise RuntimeError(f"{failing_step} failed")

    monkeypatch.setattr(creation, failing_step, step_then_fail)

    # when
    with pytest.raises(RuntimeError, match=failing_step):
        creation.tenant_create(
            name="Doomed",
            subdomain="doomed",
            owner_email="o@doomed.test",
            owner_password=TEST_PASSWORD,
        )

    # then: nothing remains, not even the schema
    with public_context():
        assert not Tenant.objects.filter(subdomain="doomed").exists()
        assert not Domain.objects.filter(domain="doomed.localhost").exists()
        assert created_schemas
        assert not schema_exists(created_schemas[0])


def test_unreachable_database_is_one_line_not_a_traceback(
    manage_cli: Callable[..., CliResult],
) -> None:
    result = manage_cli(
        "tenants", "list", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere"}
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Database error: connection failed")
    assert len(result.stderr.strip().splitlines()) == 1


def test_suspend_and_resume_are_audited_and_change_what_the_site_serves(
    tenant_a: Tenant, client_a: Any
) -> None:
    from shared_apps.audit.models import AuditRecord

    result = json.loads(run_tenants("suspend", "alpha", "--reason", "unpaid invoice", "--json"))
    assert result["status"] == "suspended"
    assert client_a.get("/login/").status_code == 403
    assert "Resumed 'alpha'." in run_tenants("resume", "alpha")
    assert client_a.get("/login/").status_code == 200
    with public_context():
        records = list(
            AuditRecord.objects.filter(subdomain="alpha")
            .order_by("created_at")
            .values_list("action", "outcome", "detail")
        )
    assert records[-2:] == [
        ("tenant.suspend", "succeeded", {"reason": "unpaid invoice", "suspended_for": "operator"}),
        ("tenant.resume", "succeeded", {}),
    ]
    assert (
        AuditRecord.objects.filter(subdomain="alpha").latest("created_at").actor.startswith("cli:")
    )


def test_suspending_an_unknown_tenant_is_one_line_and_audited(
    manage_cli: Callable[..., CliResult],
) -> None:
    result = manage_cli("tenants", "suspend", "nobody", "--reason", "test")
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: no tenant with subdomain 'nobody'"


def test_create_and_template_are_audited_with_the_operator(
    db: None, stdin: Callable[[str], None]
) -> None:
    from shared_apps.audit.models import AuditRecord

    stdin(TEST_PASSWORD + "\n")
    run_tenants(
        "create",
        "--subdomain",
        "audited",
        "--name",
        "Audited",
        "--owner-email",
        "owner@audited.test",
        "--password-stdin",
    )
    with pytest.raises(CommandError):
        run_tenants(
            "create",
            "--subdomain",
            "audited",
            "--name",
            "Again",
            "--owner-email",
            "other@audited.test",
        )
    with public_context():
        records = list(
            AuditRecord.objects.filter(action="tenant.create", subdomain="audited").order_by("id")
        )
    assert [record.outcome for record in records] == ["succeeded", "failed"]
    assert all(record.actor.startswith("cli:") for record in records)
    assert records[0].detail["owner_email"] == "owner@audited.test"
    assert records[1].detail["error"] == "subdomain_taken"


def test_read_only_verbs_are_audited_too(db: None) -> None:
    from shared_apps.audit.models import AuditRecord

    run_tenants("list", "--json")
    run_tenants("migrate", "--dry-run", "--json")
    with public_context():
        actions = set(AuditRecord.objects.values_list("action", flat=True))
    assert {"tenants.list", "tenants.migrate"} <= actions
