"""The template's SQL rendered from the catalog makes the same schema, rows included, and
says so plainly when the schema holds something it does not render."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shared_apps.fleet import provisioning
from shared_apps.fleet.catalog import catalog_diff, schema_catalog_read
from shared_apps.fleet.template_sql import template_sql_render
from tenancy import public_context, schemas
from tenancy.schemas import SCHEMA_PLACEHOLDER, schema_create_from_dump, schema_name_for

# What migrations could leave in a schema, beyond what Django's own make.
_EVERYTHING = """
CREATE TABLE {s}.parent (
    id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5) PRIMARY KEY,
    code varchar(20) COLLATE "C" NOT NULL UNIQUE,
    tags text[] DEFAULT '{{}}',
    doc jsonb,
    blob bytea,
    score numeric(8, 2) CHECK (score >= 0),
    shout text GENERATED ALWAYS AS (upper(code)) STORED,
    created timestamptz DEFAULT now()
) WITH (fillfactor = 80);
CREATE TABLE {s}.child (
    id serial PRIMARY KEY,
    parent_id bigint REFERENCES {s}.parent (id) DEFERRABLE INITIALLY DEFERRED,
    self_id integer REFERENCES {s}.child (id) ON DELETE CASCADE,
    note text,
    CONSTRAINT note_or_parent CHECK (note IS NOT NULL OR parent_id IS NOT NULL) NOT VALID
);
CREATE UNLOGGED TABLE {s}.scratch (k text);
CREATE SEQUENCE {s}.ticket AS integer START WITH 7 CACHE 3 CYCLE;
CREATE INDEX child_note_lower ON {s}.child (lower(note)) WHERE note IS NOT NULL;
CREATE UNIQUE INDEX parent_code_upper ON {s}.parent (upper(code) DESC NULLS LAST);
COMMENT ON TABLE {s}.parent IS 'the parents';
COMMENT ON COLUMN {s}.parent.code IS 'it''s a code';
COMMENT ON INDEX {s}.child_note_lower IS 'notes';
COMMENT ON CONSTRAINT note_or_parent ON {s}.child IS 'one of them';
CREATE FUNCTION public.test_template_sql_touch() RETURNS trigger LANGUAGE plpgsql
    AS 'BEGIN NEW.note := coalesce(NEW.note, ''-''); RETURN NEW; END';
CREATE TRIGGER child_touch BEFORE INSERT ON {s}.child
    FOR EACH ROW EXECUTE FUNCTION public.test_template_sql_touch();
INSERT INTO {s}.parent (code, tags, doc, blob, score) VALUES
    ('a''b', '{{x,"y z"}}', '{{"k": [1, "two"]}}', '\\x00ff5c', 1.5),
    (E'line\\nbreak\\\\', NULL, NULL, NULL, NULL);
INSERT INTO {s}.child (parent_id, note) VALUES (100, NULL), (105, 'plain');
INSERT INTO {s}.child (self_id, note) VALUES (1, 'mine');
SELECT nextval('{s}.ticket');
"""


def _schema(sql: str = _EVERYTHING) -> str:
    name = schema_name_for(uuid.uuid4())
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schemas.quote(name)}")
        cursor.execute(sql.format(s=schemas.quote(name)))
    return name


def _rows(schema_name: str) -> list[object]:
    with connection.cursor() as cursor:
        found: list[object] = []
        for table in ("parent", "child", "scratch"):
            cursor.execute(f"SELECT * FROM {schemas.quote(schema_name)}.{table} ORDER BY 1")
            found.append(cursor.fetchall())
        cursor.execute(
            f"SELECT last_value, is_called FROM {schemas.quote(schema_name)}.ticket "
            f"UNION ALL SELECT last_value, is_called FROM {schemas.quote(schema_name)}.child_id_seq"
        )
        found.append(cursor.fetchall())
    return found


def test_rendered_sql_makes_the_same_schema_with_the_same_rows(db: None) -> None:
    with public_context():
        original = _schema()
        sql, why_not = template_sql_render(original)
        assert why_not == ""
        assert sql is not None
        assert original not in sql
        assert SCHEMA_PLACEHOLDER in sql
        copy = schema_name_for(uuid.uuid4())
        schema_create_from_dump(copy, sql)
        before, after = schema_catalog_read(original), schema_catalog_read(copy)
        assert before is not None
        assert after is not None
        assert catalog_diff(before, after).lines() == []
        assert _rows(copy) == _rows(original)
        with connection.cursor() as cursor:  # identity and sequences continue where they were
            cursor.execute(
                f"INSERT INTO {schemas.quote(copy)}.parent (code) VALUES ('next') RETURNING id"
            )
            assert cursor.fetchone() == (110,)
            cursor.execute("SHOW search_path")  # the reader's settings are given back
            assert cursor.fetchone() == ('"public"',)


def test_rendering_reads_the_same_number_of_queries_for_any_number_of_tables(db: None) -> None:
    with public_context():
        small = _schema("CREATE TABLE {s}.one (id int PRIMARY KEY); INSERT INTO {s}.one VALUES (1)")
        large = _schema()
        counts = []
        for name in (small, large):
            with CaptureQueriesContext(connection) as captured:
                sql, _ = template_sql_render(name)
            assert sql is not None
            counts.append(len(captured))
    # A savepoint, settings, namespace, other objects, relations, sequences, columns, rows,
    # sequence positions, constraints, indexes, triggers, comments, settings back, release;
    # the small schema has no sequence, so no positions to read.
    assert counts == [14, 15]


@pytest.mark.parametrize(
    ("ddl", "reason"),
    [
        ("CREATE VIEW {s}.v AS SELECT 1 AS one", "v is a relation of kind 'v'"),
        ("CREATE TYPE {s}.mood AS ENUM ('ok')", "objects other than tables and sequences"),
        (
            "CREATE TABLE {s}.t (a text); ALTER TABLE {s}.t ALTER a SET STORAGE external",
            "column t.a",
        ),
        (
            "CREATE TABLE {s}.t (a text); ALTER TABLE {s}.t ENABLE ROW LEVEL SECURITY",
            "t has rules, policies",
        ),
    ],
)
def test_what_rendering_does_not_cover_is_named_not_rendered(
    db: None, ddl: str, reason: str
) -> None:
    with public_context():
        sql, why_not = template_sql_render(_schema(ddl))
    assert sql is None
    assert reason in why_not


def test_template_falls_back_to_pg_dump_when_the_rendering_does_not_reproduce_it(
    provisioning_template: None,
    django_db_blocker: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outside a test transaction, as in production: pg_dump sees committed schemas only."""

    def rendered_without_an_index(schema_name: str) -> tuple[str | None, str]:
        sql, _ = template_sql_render(schema_name)
        assert sql is not None
        kept = [line for line in sql.splitlines() if "django_session_expire_date" not in line]
        return "\n".join(kept), ""

    with django_db_blocker.unblock():
        monkeypatch.setattr(provisioning, "template_sql_render", rendered_without_an_index)
        try:
            dumped = provisioning.template_refresh()
        finally:
            monkeypatch.undo()
            rendered = provisioning.template_refresh()  # the session's template, as it was
    (warning,) = [record for record in caplog.records if record.levelname == "WARNING"]
    assert warning.message == "provisioning template taken with pg_dump (slow with many tenants)"
    assert getattr(warning, "reason", "").startswith(
        "the rendered SQL does not reproduce the schema: missing index: django_session."
    )
    assert "django_session_expire_date" in dumped.sql
    assert "ADD GENERATED BY DEFAULT AS IDENTITY" in dumped.sql  # pg_dump's way of writing it
    assert "ADD GENERATED BY DEFAULT AS IDENTITY" not in rendered.sql
    assert dumped.catalog == rendered.catalog
