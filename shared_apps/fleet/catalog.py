"""What a tenant schema is made of, read from pg_catalog for many schemas in one query.

A schema's catalog is a set of facts, each a kind, a key and a detail: relations (tables,
sequences, views, with their kind, persistence and options), columns (place, type,
nullability, identity, generation, collation, default), indexes (method, uniqueness, keys,
operator classes, expressions, comment), constraints (kind, keys, referenced table and
keys, actions, comment), check expressions, sequences (type, bounds), comments, triggers,
policies, functions and types. The schema's own name is taken out of expressions, so two
schemas built from the same migrations have equal catalogs, and a difference is drift.

The query hands back one text per schema and kind (its facts as sorted lines), so the usual
case, a schema equal to the template, costs one string comparison per kind in Python; only
a schema whose texts differ is parsed and compared fact by fact. Attribute numbers are
mapped to names and places then (a dropped column leaves a gap in a migrated schema that a
schema replayed from the template does not have: not drift).

Why not information_schema: its views check privileges row by row and are slow on a
catalog of thousands of schemas. Why no deparsing (`pg_get_indexdef`,
`pg_get_constraintdef`) and no name lookups per key in SQL: over a thousand schemas those
calls alone take seconds; the raw catalog columns say the same.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import connection

CATALOG_VERSION = 3
TABLE_KINDS = ("r", "p")  # ordinary and partitioned tables

# Where the relations of the schemas in `nsp` (oid, nspname, is_public) come from. For one
# or a few schemas, through their dependency on the schema: index probes, whatever the size
# of the fleet (pg_class has no index on the namespace). For the fleet, one scan of pg_class
# hashed against the schemas, inlined into each part so the planner sees its true size and
# hashes the other catalogs too (nested index probes are several times slower there).
_REL_BY_DEPENDENCY = """
rel AS MATERIALIZED (
    SELECT n.nspname, n.oid AS nsp, n.is_public, c.oid, c.relname::text AS relname,
           c.relkind, c.relpersistence, c.relrowsecurity, c.reloptions
    FROM nsp n
    JOIN pg_catalog.pg_depend d
      ON d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = n.oid
     AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'n'
    JOIN pg_catalog.pg_class c ON c.oid = d.objid
),
"""
_REL_BY_SCAN = """
rel AS NOT MATERIALIZED (
    SELECT n.nspname, n.oid AS nsp, n.is_public, c.oid, c.relname::text AS relname,
           c.relkind, c.relpersistence, c.relrowsecurity, c.reloptions
    FROM pg_catalog.pg_class c
    JOIN nsp n ON n.oid = c.relnamespace
    WHERE c.relkind NOT IN ('i', 'I', 't')
),
"""

# Each fact: schema, kind, table (sort key), place (columns), name, detail. For public, its
# relation names only (a tenant table of the same name would hide public's). Check
# expressions only with %(expressions)s: deparsing costs about 0.1 ms each, seconds over a
# fleet (their names, keys and flags are compared there all the same).
_FACTS = """
fact AS (
SELECT nspname, 'relation' AS kind, relname AS tab, 0 AS place, '' AS name,
       concat_ws('|', relkind, relpersistence, relrowsecurity,
                 coalesce(reloptions::text, '')) AS detail
FROM rel
UNION ALL
SELECT r.nspname, 'column', r.relname, a.attnum, a.attname::text,
       concat_ws('|', a.attnum, a.atttypid, a.atttypmod, a.attnotnull, a.attidentity,
                 a.attgenerated, a.attcollation,
                 coalesce(CASE WHEN a.atthasdef THEN (
                     SELECT replace(pg_catalog.pg_get_expr(f.adbin, f.adrelid),
                                    r.nspname || '.', '')
                     FROM pg_catalog.pg_attrdef f
                     WHERE f.adrelid = a.attrelid AND f.adnum = a.attnum) END, ''))
FROM rel r
JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE NOT r.is_public
UNION ALL
SELECT r.nspname, 'index', r.relname, 0, ic.relname::text,
       concat_ws('|', am.amname, i.indisunique, i.indisprimary, i.indnullsnotdistinct,
                 i.indclass::text, i.indoption::text, coalesce(ic.reloptions::text, ''),
                 coalesce(replace(pg_catalog.pg_get_expr(i.indexprs, i.indrelid),
                                  r.nspname || '.', ''), ''),
                 coalesce(replace(pg_catalog.pg_get_expr(i.indpred, i.indrelid),
                                  r.nspname || '.', ''), ''),
                 coalesce(dsc.description, ''), i.indkey::text)
FROM rel r
JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_description dsc
  ON dsc.objoid = ic.oid AND dsc.classoid = 'pg_catalog.pg_class'::regclass AND dsc.objsubid = 0
WHERE NOT r.is_public
UNION ALL
SELECT r.nspname, 'constraint', r.relname, 0, k.conname::text,
       concat_ws('|', k.contype, k.condeferrable, k.condeferred, k.convalidated, k.connoinherit,
                 k.confupdtype, k.confdeltype, k.confmatchtype, coalesce(dsc.description, ''),
                 k.conkey::text,
                 CASE WHEN k.confrelid = 0 THEN ''
                      WHEN rc.relnamespace = r.nsp THEN rc.relname::text
                      ELSE rc.relnamespace::regnamespace::text || '.' || rc.relname END,
                 coalesce(k.confkey::text, ''))
FROM rel r
JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype <> 'n'
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_description dsc
  ON dsc.objoid = k.oid AND dsc.classoid = 'pg_catalog.pg_constraint'::regclass
WHERE NOT r.is_public
UNION ALL
SELECT r.nspname, 'check', r.relname, 0, k.conname::text,
       replace(pg_catalog.pg_get_constraintdef(k.oid), r.nspname || '.', '')
FROM rel r
JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype IN ('c', 'x')
WHERE NOT r.is_public AND %(expressions)s
UNION ALL
SELECT r.nspname, 'sequence', r.relname, 0, '',
       concat_ws('|', s.seqtypid, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache,
                 s.seqcycle)
FROM rel r
JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
WHERE NOT r.is_public
UNION ALL
SELECT r.nspname, 'comment', r.relname, coalesce(a.attnum, 0), coalesce(a.attname::text, ''),
       dsc.description
FROM rel r
JOIN pg_catalog.pg_description dsc
  ON dsc.objoid = r.oid AND dsc.classoid = 'pg_catalog.pg_class'::regclass
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum = dsc.objsubid
WHERE NOT r.is_public
UNION ALL
SELECT r.nspname, 'trigger', r.relname, 0, t.tgname::text,
       replace(pg_catalog.pg_get_triggerdef(t.oid), r.nspname || '.', '')
FROM rel r
JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
WHERE NOT r.is_public
UNION ALL
SELECT r.nspname, 'policy', r.relname, 0, p.polname::text,
       concat_ws('|', p.polcmd, p.polpermissive, p.polroles::text,
                 coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),
                 coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''))
FROM rel r
JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid
WHERE NOT r.is_public
UNION ALL
SELECT n.nspname, 'function', '', 0,
       f.proname || '(' || pg_catalog.pg_get_function_identity_arguments(f.oid) || ')',
       pg_catalog.md5(f.prosrc)
FROM nsp n
JOIN pg_catalog.pg_proc f ON f.pronamespace = n.oid
WHERE NOT n.is_public
UNION ALL
SELECT n.nspname, 'type', '', 0, t.typname::text, t.typtype::text
FROM nsp n
JOIN pg_catalog.pg_depend d
  ON d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = n.oid
 AND d.classid = 'pg_catalog.pg_type'::regclass
JOIN pg_catalog.pg_type t ON t.oid = d.objid
WHERE NOT n.is_public
)
SELECT nspname, kind,
       pg_catalog.string_agg(
           replace(CASE WHEN name = '' THEN tab WHEN tab = '' THEN name
                        ELSE tab || '.' || name END || '=' || detail, E'\\n', '\\n'),
           E'\\n' ORDER BY tab, place, name)
FROM fact
GROUP BY nspname, kind
"""


def catalog_query(namespaces: str, *, fleet: bool, ctes: str = "", rows: str = "") -> str:
    """The catalog query over the schemas that `namespaces` selects (`oid, nspname,
    is_public`; public's row included): rows of (schema, kind, text). `fleet`: many schemas,
    read by scanning. `ctes` come first (each ending in a comma); `rows` are more rows of
    the same shape (after UNION ALL).
    """
    rel = _REL_BY_SCAN if fleet else _REL_BY_DEPENDENCY
    more = f"UNION ALL\n{rows}" if rows else ""
    return f"WITH {ctes}\nnsp AS ({namespaces}),{rel}{_FACTS}{more}"


_SCHEMAS_NAMESPACES = """
    SELECT oid, nspname::text, nspname = 'public' AS is_public
    FROM pg_catalog.pg_namespace
    WHERE nspname = ANY(%(schemas)s::text[]) OR nspname = 'public'
"""
# Kinds a fleet read leaves out (see _FACTS); compared where both sides have them.
FLEET_SKIPPED_KINDS = frozenset({"check"})


@dataclass
class SchemaCatalog:
    """One schema's catalog: per kind, its facts as sorted `key=detail` lines."""

    texts: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"version": CATALOG_VERSION, "texts": self.texts}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SchemaCatalog | None:
        """The catalog a template stored, or None for one of an older kind."""
        if not data or data.get("version") != CATALOG_VERSION:
            return None
        return cls(texts=dict(data["texts"]))

    @cached_property
    def _column_facts(
        self,
    ) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
        """Columns keyed `table.column`; each table's column order; each table's names by
        attribute number. The order is a fact of its own: a column's number is not (a
        dropped column leaves a gap), and one missing column should not change the others.
        """
        names: dict[str, dict[str, str]] = defaultdict(dict)
        columns: dict[str, str] = {}
        order: dict[str, list[str]] = defaultdict(list)
        for key, detail in _lines(self.texts.get("column", "")):  # in each table's order
            table, _, column = key.partition(".")
            number, _, rest = detail.partition("|")
            names[table][number] = column
            order[table].append(column)
            columns[key] = rest
        return columns, {table: ",".join(found) for table, found in order.items()}, names

    def of(self, kind: str) -> dict[str, str]:
        """The facts of one kind, key → detail, attribute numbers as names and places."""
        found = self._parsed.get(kind)
        if found is None:
            if kind == "column":
                found = self._column_facts[0]
            elif kind == "column_order":
                found = self._column_facts[1]
            elif kind in ("index", "constraint"):
                names = self._column_facts[2]
                found = {
                    key: _keys_named(kind, detail, names[key.partition(".")[0]], names)
                    for key, detail in _lines(self.texts.get(kind, ""))
                }
            elif kind == "check":
                found = {
                    key: _expression_plain(detail)
                    for key, detail in _lines(self.texts.get(kind, ""))
                }
            else:
                found = dict(_lines(self.texts.get(kind, "")))
            self._parsed[kind] = found
        return found

    @cached_property
    def _parsed(self) -> dict[str, dict[str, str]]:
        return {}

    def tables(self) -> list[str]:
        """The schema's tables (ordinary and partitioned), by name."""
        return sorted(
            name
            for name, detail in self.of("relation").items()
            if detail.split("|", 1)[0] in TABLE_KINDS
        )

    def sequences(self) -> list[str]:
        return sorted(self.of("sequence"))

    def columns(self, table: str) -> list[str]:
        """The table's columns in their order; generated ones left out (nothing is written
        to them)."""
        details = self.of("column")
        return [
            column
            for column in self.of("column_order").get(table, "").split(",")
            if column and not details[f"{table}.{column}"].split("|")[4]  # attgenerated
        ]

    def references(self, table: str) -> set[str]:
        """The tables of this schema that the table's foreign keys point at."""
        parents = set()
        for key, detail in self.of("constraint").items():
            owner, _, _ = key.partition(".")
            if owner == table and detail.startswith("f|"):
                parent = detail.rsplit("|ref=", 1)[-1].split("(", 1)[0]
                if parent and "." not in parent:
                    parents.add(parent)
        return parents


@dataclass(frozen=True)
class CatalogDiff:
    """How a schema differs from the catalog it should have, kind by kind."""

    missing: dict[str, list[str]]
    extra: dict[str, list[str]]
    changed: dict[str, list[str]]

    @property
    def is_empty(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def lines(self, limit: int = 20) -> list[str]:
        """The differences for people, e.g. `extra index: projects_task.task_title_idx`."""
        found = [
            f"{label} {kind}: {key}"
            for label, keyed in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("changed", self.changed),
            )
            for kind, keys in sorted(keyed.items())
            for key in keys
        ]
        if len(found) > limit:
            found = [*found[:limit], f"and {len(found) - limit} more"]
        return found

    def as_dict(self) -> dict[str, Any]:
        return {"missing": self.missing, "extra": self.extra, "changed": self.changed}


NO_DIFFERENCE = CatalogDiff(missing={}, extra={}, changed={})


def catalog_diff(
    expected: SchemaCatalog, actual: SchemaCatalog, *, skipped: frozenset[str] = frozenset()
) -> CatalogDiff:
    """Compare a schema's catalog with the expected one, but for the `skipped` kinds (not
    read). What belongs to a missing or an extra table is not listed again (its columns,
    indexes, constraints)."""
    kinds = (expected.texts.keys() | actual.texts.keys()) - skipped
    if all(expected.texts.get(kind) == actual.texts.get(kind) for kind in kinds):
        return NO_DIFFERENCE  # the usual case: one string comparison per kind
    if "column" in kinds and expected.texts.get("column") != actual.texts.get("column"):
        kinds = kinds | {"column_order"}
    missing: dict[str, list[str]] = {}
    extra: dict[str, list[str]] = {}
    changed: dict[str, list[str]] = {}
    want, have = expected.of("relation"), actual.of("relation")
    gone_or_new = (want.keys() - have.keys()) | (have.keys() - want.keys())
    for kind in sorted(kinds):
        if kind != "column_order" and expected.texts.get(kind) == actual.texts.get(kind):
            continue
        want_kind, have_kind = expected.of(kind), actual.of(kind)
        if want_kind == have_kind:
            continue  # the same once numbers are names and places (a dropped column's gap)
        nested = kind not in ("relation", "sequence", "function", "type")

        def shown(key: str, nested: bool = nested) -> bool:
            return not (nested and key.partition(".")[0] in gone_or_new)

        if keys := sorted(k for k in want_kind.keys() - have_kind.keys() if shown(k)):
            missing[kind] = keys
        if keys := sorted(k for k in have_kind.keys() - want_kind.keys() if shown(k)):
            extra[kind] = keys
        both = want_kind.keys() & have_kind.keys()
        if keys := sorted(k for k in both if want_kind[k] != have_kind[k]):
            changed[kind] = keys
    return CatalogDiff(missing=missing, extra=extra, changed=changed)


def catalogs_from_rows(
    rows: Iterable[tuple[Any, ...]],
) -> tuple[dict[str, SchemaCatalog], set[str]]:
    """Each schema's catalog from the query's (schema, kind, text) rows; also the names of
    public's relations."""
    texts: dict[str, dict[str, str]] = defaultdict(dict)
    public: set[str] = set()
    for schema, kind, text, *_ in rows:
        if schema == "public":
            public.update(line.partition("=")[0] for line in text.split("\n"))
        else:
            texts[schema][kind] = text
    return {schema: SchemaCatalog(texts=kinds) for schema, kinds in texts.items()}, public


# PostgreSQL prints a check expression differently once it was dumped and read back (casts
# and parentheses move: `ARRAY[('a'::character varying)::text]` against
# `(ARRAY['a'::character varying])::text[]`); compared without them, what is checked remains.
_CAST = re.compile(
    r"::(?:character varying|bit varying|double precision|time(?:stamp)? with(?:out)? time zone"
    r"|\"?[\w.]+\"?)(?:\(\d+(?:,\d+)?\))?(?:\[\])*"
)


def _expression_plain(expression: str) -> str:
    return "".join(_CAST.sub("", expression).replace("(", "").replace(")", "").split())


def _lines(text: str) -> list[tuple[str, str]]:
    """A kind's text as (key, detail) pairs, in order."""
    if not text:
        return []
    return [(key, detail) for key, _, detail in (line.partition("=") for line in text.split("\n"))]


def _keys_named(
    kind: str, detail: str, own: dict[str, str], every: dict[str, dict[str, str]]
) -> str:
    """An index's or constraint's attribute numbers as column names."""
    if kind == "index":
        head, _, keys = detail.rpartition("|")
        # A key of 0 is an expression (shown in the detail already).
        return f"{head}|cols={','.join(own.get(n, '(expression)') for n in _numbers(keys))}"
    head, keys, ref, ref_keys = detail.rsplit("|", 3)
    named = f"{head}|cols={','.join(own.get(n, n) for n in _numbers(keys))}"
    if ref:
        theirs = every.get(ref, {})
        named += f"|ref={ref}({','.join(theirs.get(n, n) for n in _numbers(ref_keys))})"
    return named


def _numbers(attnums: str) -> list[str]:
    """Attribute numbers from an int2vector (`1 2`) or an int2[] (`{1,2}`)."""
    return attnums.strip("{}").replace(",", " ").split()


def schema_catalogs(schema_names: list[str]) -> tuple[dict[str, SchemaCatalog], set[str]]:
    """Read the catalogs of these schemas in one query (changes nothing); also return the
    names of public's relations. A schema that does not exist is left out."""
    sql = catalog_query(_SCHEMAS_NAMESPACES, fleet=False)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"schemas": schema_names, "expressions": True})
        return catalogs_from_rows(cursor.fetchall())


def schema_catalog_read(schema_name: str) -> SchemaCatalog | None:
    """One schema's catalog, or None when the schema does not exist."""
    return schema_catalogs([schema_name])[0].get(schema_name)
