"""The provisioning template's SQL, rendered from the migrated template schema's catalog.

`pg_dump` reads the whole database's catalog before it dumps one schema: seven minutes
with 10,000 tenants (docs/benchmarks.md), however small the template, and every release
rebuilds the template. What Django's migrations make of a tenant schema is a short list of
things (tables with their columns, identity columns and defaults, sequences, constraints,
indexes, triggers, comments, and the rows migrations seed), and PostgreSQL deparses each
of them itself (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
`pg_get_triggerdef`). Read for one schema through its dependencies, that is a dozen index
probes whatever the size of the fleet.

Anything else in the schema (views, types, functions, rules, policies, partitions,
per-column storage settings, ...) makes `template_sql_render` answer None with the reason,
and the caller falls back to `pg_dump`. The caller also replays what is rendered and
compares its catalog with the migrated schema's (`provisioning._replayed_catalog`), so a
rendering that missed something is refused rather than stored.

The deparsing runs with `search_path` set to pg_catalog alone, so every name outside it
comes out qualified, as in pg_dump's output; the template schema's own name is then the
placeholder that `schemas.schema_create_from_dump` replaces.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from psycopg import sql as pgsql

from tenancy.schemas import SCHEMA_PLACEHOLDER

ROWS_PER_INSERT = 500

_RELATIONS = """
SELECT c.oid, c.relname::text, c.relkind::text, c.relpersistence::text,
       coalesce(array_to_string(c.reloptions, ', '), ''),
       c.relrowsecurity OR c.relforcerowsecurity OR c.relhasrules OR c.relispartition
           OR (c.relkind = 'r' AND c.relreplident <> 'd') OR coalesce(am.amname, 'heap') <> 'heap'
           OR EXISTS (SELECT FROM pg_catalog.pg_inherits h
                      WHERE h.inhrelid = c.oid OR h.inhparent = c.oid)
           OR EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class c ON c.oid = d.objid
LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = %(nsp)s
  AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'n'
ORDER BY c.oid
"""

# Objects in the schema that are not relations (a table's row type has no dependency on
# the schema of its own): types, functions, collations, statistics, ...
_OTHER_OBJECTS = """
SELECT d.classid::regclass::text, count(*)
FROM pg_catalog.pg_depend d
WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = %(nsp)s
  AND d.classid <> 'pg_catalog.pg_class'::regclass
GROUP BY 1
"""

_COLUMNS = """
SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.attidentity::text, a.attgenerated::text,
       CASE WHEN a.attcollation <> t.typcollation THEN (
           SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
           FROM pg_catalog.pg_collation co
           JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
           WHERE co.oid = a.attcollation) END,
       (SELECT pg_catalog.pg_get_expr(f.adbin, f.adrelid) FROM pg_catalog.pg_attrdef f
        WHERE f.adrelid = a.attrelid AND f.adnum = a.attnum),
       a.attoptions IS NOT NULL OR a.attfdwoptions IS NOT NULL OR a.attcompression <> ''
           OR a.attstorage <> t.typstorage OR coalesce(a.attstattarget::int, -1) >= 0
           OR a.attinhcount > 0
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY(%(tables)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_SEQUENCES = """
SELECT s.seqrelid, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle, d.deptype::text, d.refobjid,
       (SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = d.refobjid AND a.attnum = d.refobjsubid)
FROM pg_catalog.pg_sequence s
LEFT JOIN pg_catalog.pg_depend d
  ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.seqrelid
 AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
WHERE s.seqrelid = ANY(%(sequences)s)
"""

# Constraints. NOT NULL constraints (PostgreSQL 18 lists them here) come with the columns.
_CONSTRAINTS = """
SELECT k.conrelid, k.conname::text, k.contype::text, pg_catalog.pg_get_constraintdef(k.oid),
       k.coninhcount > 0
FROM pg_catalog.pg_constraint k
WHERE k.conrelid = ANY(%(tables)s) AND k.contype <> 'n'
ORDER BY k.conrelid, k.conname
"""

# Indexes that no constraint made (those come with their constraint).
_INDEXES = """
SELECT pg_catalog.pg_get_indexdef(i.indexrelid), i.indisclustered OR i.indisreplident
FROM pg_catalog.pg_index i
WHERE i.indrelid = ANY(%(tables)s)
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k
                  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                    AND k.contype IN ('p', 'u', 'x'))
ORDER BY i.indexrelid
"""

_TRIGGERS = """
SELECT pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled <> 'O'
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = ANY(%(tables)s) AND NOT t.tgisinternal
ORDER BY t.tgrelid, t.tgname
"""

# Comments on the schema's tables, sequences, columns, indexes, constraints and triggers,
# as the object each names: ('table'|'column'|'index'|'constraint'|'trigger', relation,
# name, text).
_COMMENTS = """
SELECT CASE WHEN dsc.objsubid > 0 THEN 'column'
            WHEN c.relkind = 'S' THEN 'sequence'
            WHEN c.relkind = 'i' THEN 'index' ELSE 'table' END,
       coalesce(i.indrelid, c.oid), c.relname::text,
       coalesce(a.attname::text, ''), dsc.description
FROM pg_catalog.pg_description dsc
JOIN pg_catalog.pg_class c ON c.oid = dsc.objoid
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = dsc.objsubid
WHERE dsc.classoid = 'pg_catalog.pg_class'::regclass
  AND (dsc.objoid = ANY(%(relations)s)
       OR dsc.objoid IN (SELECT indexrelid FROM pg_catalog.pg_index
                         WHERE indrelid = ANY(%(tables)s)))
UNION ALL
SELECT 'constraint', k.conrelid, '', k.conname::text, dsc.description
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_description dsc
  ON dsc.objoid = k.oid AND dsc.classoid = 'pg_catalog.pg_constraint'::regclass
WHERE k.conrelid = ANY(%(tables)s)
UNION ALL
SELECT 'trigger', t.tgrelid, '', t.tgname::text, dsc.description
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_description dsc
  ON dsc.objoid = t.oid AND dsc.classoid = 'pg_catalog.pg_trigger'::regclass
WHERE t.tgrelid = ANY(%(tables)s)
"""


@dataclass
class _Column:
    name: str
    type: str
    not_null: bool
    identity: str  # 'a' always, 'd' by default, '' none
    generated: str  # 's' stored, '' none
    collation: str | None
    default: str | None


@dataclass
class _Table:
    oid: int
    name: str
    unlogged: bool
    options: str
    columns: list[_Column] = field(default_factory=list)


class _Unsupported(Exception):
    """Something in the schema this module does not render (pg_dump will)."""


def template_sql_render(schema_name: str) -> tuple[str | None, str]:
    """The schema's DDL and rows as portable SQL (its name a placeholder), or None and why
    not (something in it this module does not render; `pg_dump` does)."""
    # In a transaction or savepoint of its own: a failed read rolls the settings back too.
    with transaction.atomic(), connection.cursor() as cursor:
        previous = _settings_swap(cursor, _RENDER_SETTINGS)
        try:
            sql = _Renderer(cursor, schema_name).render()
        except _Unsupported as reason:
            _settings_swap(cursor, previous)
            return None, str(reason)
        _settings_swap(cursor, previous)
    own = re.compile(rf"(?<![\w\"])(?:{re.escape(_ident(schema_name))}|{re.escape(schema_name)})\.")
    portable = own.sub(f"{SCHEMA_PLACEHOLDER}.", sql)
    if schema_name in portable:
        return None, f"the rendered SQL names {schema_name} where it cannot be replaced"
    return portable, ""


# Every name outside pg_catalog written qualified, the schema's own included; values in
# the forms pg_dump writes them, which read back the same whatever the reader's settings.
_RENDER_SETTINGS = {
    "search_path": "pg_catalog",
    "DateStyle": "ISO",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
}


def _settings_swap(cursor: Any, wanted: dict[str, str]) -> dict[str, str]:
    """Set these session settings; return what they were."""
    names = list(wanted)
    read = ", ".join("pg_catalog.current_setting(%s)" for _ in names)
    write = ", ".join("pg_catalog.set_config(%s, %s, false)" for _ in names)
    # Read first (a materialized CTE), then write.
    cursor.execute(
        f"WITH previous AS MATERIALIZED (SELECT {read}) SELECT previous.*, {write} FROM previous",
        [*names, *(value for name in names for value in (name, wanted[name]))],
    )
    row = cursor.fetchone()
    return dict(zip(names, row[: len(names)], strict=True))


def _ident(name: str) -> str:
    return pgsql.Identifier(name).as_string(None)


def _literal(value: str) -> str:
    return pgsql.Literal(value).as_string(None)


class _Renderer:
    def __init__(self, cursor: Any, schema_name: str) -> None:
        self.cursor = cursor
        self.schema_name = schema_name
        self.schema = _ident(schema_name)
        self.relations: dict[int, str] = {}
        self.tables: dict[int, _Table] = {}
        self.sequences: list[int] = []

    def rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        self.cursor.execute(query, params)
        return list(self.cursor.fetchall())

    def qualified(self, name: str) -> str:
        return f"{self.schema}.{_ident(name)}"

    def render(self) -> str:
        self.cursor.execute(
            "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = %s", [self.schema_name]
        )
        found = self.cursor.fetchone()
        if found is None:
            raise _Unsupported("the schema does not exist")
        nsp = found[0]
        others = self.rows(_OTHER_OBJECTS, nsp=nsp)
        if others:
            kinds = ", ".join(f"{count} in {catalog}" for catalog, count in sorted(others))
            raise _Unsupported(f"it holds objects other than tables and sequences ({kinds})")
        self._read_relations(nsp)
        tables = list(self.tables)
        self._read_columns(tables)
        standalone, identity, owned_by = self._sequence_statements()
        keys, foreign_keys = self._constraints(tables)
        statements = [
            *standalone,
            *(self._create_table(table, identity) for table in self.tables.values()),
            *owned_by,
            *self._inserts(),
            *self._sequence_positions(),
            *keys,
            *self._indexes(tables),
            *foreign_keys,
            *self._triggers(tables),
            *self._comments(tables),
        ]
        return "\n".join(statements)

    def _read_relations(self, nsp: int) -> None:
        for oid, name, kind, persistence, options, exotic in self.rows(_RELATIONS, nsp=nsp):
            if kind not in ("r", "S"):
                raise _Unsupported(f"{name} is a relation of kind {kind!r}")
            if exotic:
                raise _Unsupported(
                    f"{name} has rules, policies, inheritance, a replica identity or an "
                    "access method of its own"
                )
            if persistence == "t":
                raise _Unsupported(f"{name} is temporary")
            self.relations[oid] = name
            if kind == "r":
                self.tables[oid] = _Table(oid, name, persistence == "u", options)
            else:
                self.sequences.append(oid)

    def _sequence_statements(self) -> tuple[list[str], dict[tuple[int, str], str], list[str]]:
        """CREATE SEQUENCE for standalone sequences, identity options by (table, column),
        and OWNED BY for sequences a column owns."""
        standalone: list[str] = []
        identity: dict[tuple[int, str], str] = {}
        owned_by: list[str] = []
        for row in self.rows(_SEQUENCES, sequences=self.sequences):
            oid, type_name, start, increment, minimum, maximum, cache, cycle = row[:8]
            deptype, table_oid, column = row[8:]
            sequence = self.qualified(self.relations[oid])
            options = (
                f"START WITH {start} INCREMENT BY {increment} "
                f"MINVALUE {minimum} MAXVALUE {maximum} CACHE {cache}"
                f"{' CYCLE' if cycle else ' NO CYCLE'}"
            )
            if deptype == "i":  # an identity sequence's type is its column's
                identity[(table_oid, column)] = f"SEQUENCE NAME {sequence} {options}"
                continue
            standalone.append(f"CREATE SEQUENCE {sequence} AS {type_name} {options};")
            if deptype == "a":
                if table_oid not in self.tables:
                    raise _Unsupported(f"sequence {self.relations[oid]} is owned elsewhere")
                owned_by.append(
                    f"ALTER SEQUENCE {sequence} OWNED BY "
                    f"{self.qualified(self.tables[table_oid].name)}.{_ident(column)};"
                )
        return standalone, identity, owned_by

    def _read_columns(self, tables: list[int]) -> None:
        for row in self.rows(_COLUMNS, tables=tables):
            table_oid, name, type_name, not_null, identity, generated = row[:6]
            collation, default, exotic = row[6:]
            if exotic or generated not in ("", "s"):
                raise _Unsupported(
                    f"column {self.tables[table_oid].name}.{name} is virtual, has storage, "
                    "statistics, compression or options of its own, or is inherited"
                )
            self.tables[table_oid].columns.append(
                _Column(name, type_name, not_null, identity, generated, collation, default)
            )

    def _create_table(self, table: _Table, identity: dict[tuple[int, str], str]) -> str:
        lines = []
        for column in table.columns:
            parts = [_ident(column.name), column.type]
            if column.collation:
                parts.append(f"COLLATE {column.collation}")
            if column.generated == "s":
                parts.append(f"GENERATED ALWAYS AS ({column.default}) STORED")
            elif column.identity:
                options = identity.get((table.oid, column.name))
                if options is None:
                    raise _Unsupported(
                        f"identity column {table.name}.{column.name} has no sequence"
                    )
                kind = "ALWAYS" if column.identity == "a" else "BY DEFAULT"
                parts.append(f"GENERATED {kind} AS IDENTITY ({options})")
            elif column.default is not None:
                parts.append(f"DEFAULT {column.default}")
            if column.not_null:
                parts.append("NOT NULL")
            lines.append("    " + " ".join(parts))
        unlogged = "UNLOGGED " if table.unlogged else ""
        options = f" WITH ({table.options})" if table.options else ""
        body = ",\n".join(lines)
        return f"CREATE {unlogged}TABLE {self.qualified(table.name)} (\n{body}\n){options};"

    def _inserts(self) -> list[str]:
        """The rows migrations seeded, as INSERTs of each value's text (which PostgreSQL
        reads back as the column's type), in one query over every table."""
        parts = []
        writable: dict[int, list[_Column]] = {}
        for index, table in enumerate(self.tables.values()):
            columns = [column for column in table.columns if column.generated != "s"]
            if not columns:
                continue
            writable[index] = columns
            values = pgsql.SQL(" || ', ' || ").join(
                pgsql.SQL("quote_nullable({}::text)").format(pgsql.Identifier(column.name))
                for column in columns
            )
            parts.append(
                pgsql.SQL("SELECT {}, {} FROM {}.{}").format(
                    pgsql.Literal(index),
                    values,
                    pgsql.Identifier(self.schema_name),
                    pgsql.Identifier(table.name),
                )
            )
        if not parts:
            return []
        by_table: dict[int, list[str]] = defaultdict(list)
        for index, values in self.rows(pgsql.SQL(" UNION ALL ").join(parts).as_string(None)):
            by_table[index].append(f"({values})")
        tables = list(self.tables.values())
        statements = []
        for index, rows in sorted(by_table.items()):
            table, columns = tables[index], writable[index]
            names = ", ".join(_ident(column.name) for column in columns)
            overriding = (
                " OVERRIDING SYSTEM VALUE" if any(c.identity == "a" for c in columns) else ""
            )
            for start in range(0, len(rows), ROWS_PER_INSERT):
                chunk = ",\n    ".join(rows[start : start + ROWS_PER_INSERT])
                statements.append(
                    f"INSERT INTO {self.qualified(table.name)} ({names}){overriding} VALUES\n"
                    f"    {chunk};"
                )
        return statements

    def _sequence_positions(self) -> list[str]:
        if not self.sequences:
            return []
        parts = [
            pgsql.SQL("SELECT {}, last_value, is_called FROM {}.{}").format(
                pgsql.Literal(self.relations[oid]),
                pgsql.Identifier(self.schema_name),
                pgsql.Identifier(self.relations[oid]),
            )
            for oid in self.sequences
        ]
        return [
            f"SELECT pg_catalog.setval({_literal(self.qualified(name))}, {value}, "
            f"{'true' if called else 'false'});"
            for name, value, called in self.rows(
                pgsql.SQL(" UNION ALL ").join(parts).as_string(None)
            )
        ]

    def _constraints(self, tables: list[int]) -> tuple[list[str], list[str]]:
        """Keys and checks, then foreign keys (added after the indexes, which a foreign key
        may rely on)."""
        keys: list[str] = []
        foreign_keys: list[str] = []
        for row in self.rows(_CONSTRAINTS, tables=tables):
            table_oid, name, kind, definition, inherited = row
            if inherited:
                raise _Unsupported(f"constraint {name} is inherited")
            (foreign_keys if kind == "f" else keys).append(
                f"ALTER TABLE ONLY {self.qualified(self.tables[table_oid].name)} "
                f"ADD CONSTRAINT {_ident(name)} {definition};"
            )
        return keys, foreign_keys

    def _indexes(self, tables: list[int]) -> list[str]:
        return self._definitions(_INDEXES, tables, "an index is clustered or the replica identity")

    def _triggers(self, tables: list[int]) -> list[str]:
        return self._definitions(_TRIGGERS, tables, "a trigger is disabled")

    def _definitions(self, query: str, tables: list[int], refusal: str) -> list[str]:
        """Statements PostgreSQL deparsed, each with whether it needs what is not rendered."""
        statements = []
        for definition, unsupported in self.rows(query, tables=tables):
            if unsupported:
                raise _Unsupported(f"{refusal}: {definition}")
            statements.append(f"{definition};")
        return statements

    def _comments(self, tables: list[int]) -> list[str]:
        statements = []
        rows = self.rows(_COMMENTS, relations=list(self.relations), tables=tables)
        for kind, relation_oid, relation, name, text in sorted(rows):
            table = (
                self.qualified(self.tables[relation_oid].name)
                if relation_oid in self.tables
                else ""
            )
            target = {
                "table": f"TABLE {self.qualified(relation)}",
                "sequence": f"SEQUENCE {self.qualified(relation)}",
                "index": f"INDEX {self.qualified(relation)}",
                "column": f"COLUMN {self.qualified(relation)}.{_ident(name)}",
                "constraint": f"CONSTRAINT {_ident(name)} ON {table}",
                "trigger": f"TRIGGER {_ident(name)} ON {table}",
            }[kind]
            statements.append(f"COMMENT ON {target} IS {_literal(text)};")
        return statements
