"""A tenant cloned from the template is the same schema as one built by migrations."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import connection

from shared_apps.fleet import provisioning
from shared_apps.fleet.provisioning import TEMPLATE, ProvisioningPath, schema_provision
from tenancy import TenantRef, public_context, tenant_context
from tenancy.schemas import schema_name_for


def _ref(subdomain: str) -> TenantRef:
    tenant_id = uuid.uuid4()
    return TenantRef(
        id=tenant_id,
        schema_name=schema_name_for(tenant_id),
        subdomain=subdomain,
        name=subdomain,
        status="active",
    )


def _deparsed(value: object, schema_name: str) -> str:
    """Text of a catalog value, schema name removed and casts and parentheses dropped: pg_dump
    re-parses CHECK expressions into an equivalent form that PostgreSQL prints differently."""
    text = str(value).replace(schema_name, "<schema>")
    text = re.sub(r"::[a-z ]+(\[\])?", "", text)
    return re.sub(r"[()]", "", text)


def schema_signature(schema_name: str) -> dict[str, list[tuple[object, ...]]]:
    """Tables, columns, indexes, constraints, sequences and seeded rows, schema name removed."""
    queries = {
        "columns": """
            SELECT table_name, column_name, data_type, is_nullable, column_default,
                   is_identity, character_maximum_length
            FROM information_schema.columns WHERE table_schema = %(s)s""",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s",
        "constraints": """
            SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid)
            FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
            JOIN pg_namespace ns ON ns.oid = rel.relnamespace WHERE ns.nspname = %(s)s""",
        "sequences": """
            SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %(s)s""",
    }
    signature: dict[str, list[tuple[object, ...]]] = {}
    with connection.cursor() as cursor:
        for name, sql in queries.items():
            cursor.execute(sql, {"s": schema_name})
            rows = [tuple(_deparsed(v, schema_name) for v in row) for row in cursor.fetchall()]
            signature[name] = sorted(rows)
        for table in ("django_migrations", "django_content_type", "auth_permission"):
            cursor.execute(f'SELECT count(*) FROM "{schema_name}"."{table}"')
            signature[f"rows:{table}"] = [tuple(cursor.fetchone())]
        cursor.execute(f'SELECT app, name FROM "{schema_name}".django_migrations')
        signature["migrations"] = sorted(cursor.fetchall())
    return signature


def test_cloned_schema_equals_migrated_schema(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    cloned, migrated = _ref("cloned"), _ref("migrated")
    with public_context():
        assert schema_provision(tenant=cloned) == ProvisioningPath.TEMPLATE
        monkeypatch.setattr(TEMPLATE, "sql", lambda: None)
        assert schema_provision(tenant=migrated) == ProvisioningPath.MIGRATE
        assert schema_signature(cloned.schema_name) == schema_signature(migrated.schema_name)


def test_cloned_schema_is_usable(db: None) -> None:
    tenant = _ref("usable")
    with public_context():
        schema_provision(tenant=tenant)
    with tenant_context(tenant):
        from shared_apps.accounts.models import User
        from tenant_apps.workspace.selectors import workspace_settings_get
        from tests.factories import UserFactory

        UserFactory.create(email="first@usable.test")
        UserFactory.create(email="second@usable.test")
        ids = sorted(User.objects.values_list("id", flat=True))
        assert ids == [1, 2]  # identity sequences start fresh, not at the template's values
        assert workspace_settings_get().timezone == "UTC"


def test_stale_template_falls_back_to_migrations_with_a_warning(
    db: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given: migrations on disk that the stored template does not match
    TEMPLATE.forget()
    monkeypatch.setattr(provisioning, "tenant_migration_state", lambda: "0" * 64)
    try:
        with public_context():
            path = schema_provision(tenant=_ref("stale"))
    finally:
        TEMPLATE.forget()
    assert path == ProvisioningPath.MIGRATE
    assert "Run `manage.py tenants template`" in caplog.text


def test_failed_signup_returns_its_pooled_schema(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared_apps.fleet import creation
    from shared_apps.fleet.provisioning import pool_fill
    from shared_apps.tenants.models import PooledSchema, Tenant
    from tests.factories import TEST_PASSWORD

    assert pool_fill(size=1) == 1
    with public_context():
        pooled_id = PooledSchema.objects.get().id

    def fail(**kwargs: object) -> None:
        raise RuntimeError("owner step failed")

    monkeypatch.setattr(creation, "_owner_create", fail)
    with pytest.raises(RuntimeError):
        creation.tenant_create(
            name="Pooled",
            subdomain="pooled",
            owner_email="o@pooled.test",
            owner_password=TEST_PASSWORD,
        )
    with public_context():
        assert list(PooledSchema.objects.values_list("id", flat=True)) == [pooled_id]
        assert not Tenant.objects.filter(subdomain="pooled").exists()


def test_signup_claims_a_pooled_schema(db: None) -> None:
    from shared_apps.accounts.models import User
    from shared_apps.fleet import creation
    from shared_apps.fleet.provisioning import pool_fill
    from shared_apps.tenants.models import PooledSchema
    from tenancy.schemas import schema_exists
    from tests.factories import TEST_PASSWORD

    assert pool_fill(size=1) == 1
    with public_context():
        pooled_id = PooledSchema.objects.get().id
    created = creation.tenant_create(
        name="Pooled",
        subdomain="pooled",
        owner_email="o@pooled.test",
        owner_password=TEST_PASSWORD,
    )
    assert created.provisioning == ProvisioningPath.POOL
    assert created.tenant.id == pooled_id  # its schema t_<id hex> was made ahead of time
    with public_context():
        assert not PooledSchema.objects.exists()
        assert schema_exists(created.tenant.schema_name)
    with tenant_context(created.tenant):
        assert User.objects.get().email == "o@pooled.test"


def test_template_refresh_drops_pooled_schemas_of_old_migrations(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_apps.fleet.provisioning import pool_fill, pool_prune
    from shared_apps.tenants.models import PooledSchema
    from tenancy.schemas import schema_exists

    pool_fill(size=1)
    with public_context():
        stale = PooledSchema.objects.get()
    TEMPLATE.forget()
    monkeypatch.setattr(provisioning, "tenant_migration_state", lambda: "f" * 64)
    try:
        assert pool_prune() == 1
    finally:
        TEMPLATE.forget()
    with public_context():
        assert not PooledSchema.objects.exists()
        assert not schema_exists(schema_name_for(stale.id))


def test_signup_reads_the_public_tables_through_their_indexes_only(db: None) -> None:
    """Every read a signup makes of the public tables can be answered from an index: a scan
    of every tenant would make each signup slower than the last as the fleet grows."""
    from django.test.utils import CaptureQueriesContext

    from shared_apps.fleet import creation
    from shared_apps.fleet.provisioning import pool_fill
    from tests.factories import TEST_PASSWORD

    pool_fill(size=1)
    with CaptureQueriesContext(connection) as captured:
        creation.tenant_create(
            name="Indexed",
            subdomain="indexed",
            owner_email="o@indexed.test",
            owner_password=TEST_PASSWORD,
        )
    reads = [q["sql"] for q in captured if q["sql"].startswith("SELECT") and "tenants_" in q["sql"]]
    assert len(reads) >= 2  # at least the subdomain's uniqueness and the pool claim
    scans = []
    with public_context(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a scan stays only where no index serves
        for sql in reads:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            scans += [
                f"{table}: {sql}" for table in _read_end_to_end(cursor.fetchone()[0][0]["Plan"])
            ]
    assert scans == []


def _read_end_to_end(node: dict[str, Any]) -> list[str]:
    """What a plan reads whole: a sequential scan of a public table, or an index walked end to
    end (no condition on it)."""
    found = []
    if node["Node Type"] == "Seq Scan" and node.get("Relation Name", "").startswith("tenants_"):
        found.append(node["Relation Name"])
    if "Index Name" in node and "Index Cond" not in node:
        found.append(node["Index Name"])
    for child in node.get("Plans", []):
        found += _read_end_to_end(child)
    return found
