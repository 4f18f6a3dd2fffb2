"""Database schemas: read from tables.json or from the SQLite file, and written as prompt text.

`schema_text` is THE function that turns a database into the schema part of a Text-to-SQL prompt.
Training and evaluation both call it with the same `PromptConfig`, so the model is scored on the
schema format it was trained on (seed 1 trained with FOREIGN KEY lines and evaluated without them).

The text is `CREATE TABLE` statements with column types, a PRIMARY KEY line and one
`FOREIGN KEY (...) REFERENCES t(c)` line per key, optionally followed by k sample rows as SQL
comments. Identifiers that need quoting (spaces, SQL keywords) are double-quoted.
"""
from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Any

from tradeoff_ray.config import PromptConfig
from tradeoff_ray.data.types import Column, DatabaseSchema, ForeignKey, SpiderData, Table
from tradeoff_ray.errors import UserError

MAX_CELL_CHARS = 60  # sample-row values longer than this are cut: a row should cost a line, not a page

# SQLite's keywords (sqlite.org/lang_keywords.html); an identifier equal to one of them is quoted.
SQLITE_KEYWORDS = frozenset("""
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN BETWEEN BY
CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE
CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP
EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM
FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD
INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL
NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE
RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS
SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE
USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
""".split())

_PLAIN_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """`name` as SQLite reads it: bare when it is a plain word, double-quoted otherwise."""
    if _PLAIN_IDENT.match(name) and name.upper() not in SQLITE_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- reading


def schema_from_tables_json(entry: dict[str, Any]) -> DatabaseSchema:
    """The schema of one tables.json entry, with the original (case-kept) table and column names.

    Types are tables.json's coarse ones upper-cased (TEXT, NUMBER, TIME, BOOLEAN, OTHERS).
    """
    db_id = entry.get("db_id", "?")
    needed = ("table_names_original", "column_names_original", "column_types", "primary_keys", "foreign_keys")
    lacking = [k for k in needed if k not in entry]
    if lacking:
        raise UserError(f"tables.json entry for database {db_id!r} lacks {lacking}; is this Spider's tables.json?")
    try:
        return _schema_from_entry(entry, db_id)
    except (IndexError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"tables.json entry for database {db_id!r} is malformed ({type(err).__name__}: {err}), e.g. "
                        "a foreign key or primary key naming a column index that does not exist; fix or "
                        "re-download tables.json, or set prompt.schema_source=sqlite") from None


def _index(items: list, i: Any, what: str) -> Any:
    i = int(i)
    if not 0 <= i < len(items):
        raise IndexError(f"{what} index {i} out of range 0..{len(items) - 1}")
    return items[i]


def _schema_from_entry(entry: dict[str, Any], db_id: str) -> DatabaseSchema:
    table_names: list[str] = entry["table_names_original"]
    columns: list[tuple[int, str]] = [(int(t), str(c)) for t, c in entry["column_names_original"]]
    types: list[str] = entry["column_types"]
    pk_cols: set[int] = set()
    for pk in entry["primary_keys"]:
        pk_cols.update(pk if isinstance(pk, list) else [pk])
    fks: dict[int, list[ForeignKey]] = {i: [] for i in range(len(table_names))}
    for pair in entry["foreign_keys"]:
        (t, name), (rt, rname) = _index(columns, pair[0], "foreign-key column"), _index(columns, pair[1],
                                                                                       "foreign-key column")
        fk = ForeignKey(column=name, ref_table=_index(table_names, rt, "table"), ref_column=rname)
        _index(table_names, t, "table")
        if fk not in fks[t]:
            fks[t].append(fk)
    tables = []
    for t, tname in enumerate(table_names):
        cols = tuple(
            Column(name=name, type=str(types[i]).upper(), primary_key=i in pk_cols)
            for i, (ti, name) in enumerate(columns) if ti == t
        )
        tables.append(Table(name=tname, columns=cols, foreign_keys=tuple(fks[t])))
    return DatabaseSchema(db_id=db_id, tables=tuple(tables))


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection (`mode=ro` URI): never creates a missing file, never writes."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"database file {path} does not exist; expected <database dir>/<db_id>/<db_id>.sqlite")
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    con.text_factory = lambda raw: raw.decode("utf-8", errors="replace")  # some Spider DBs hold latin-1 bytes
    return con


def _cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        value = " ".join(value.split())
        return value if len(value) <= MAX_CELL_CHARS else value[: MAX_CELL_CHARS - 1] + "…"
    return value


def _fetch_rows(con: sqlite3.Connection, table: str, columns: list[str], k: int) -> tuple[tuple, ...]:
    if k <= 0:
        return ()
    cols = ", ".join(quote_ident(c) for c in columns)
    try:
        rows = con.execute(f"SELECT {cols} FROM {quote_ident(table)} LIMIT {int(k)}").fetchall()
    except sqlite3.Error:
        return ()  # a table tables.json lists but the file lacks: show the structure only
    return tuple(tuple(_cell(v) for v in row) for row in rows)


def schema_from_sqlite(path: str | Path, *, sample_rows: int = 0) -> DatabaseSchema:
    """The schema stored in a SQLite file (declared types, PKs, FKs), plus `sample_rows` rows per table."""
    path = Path(path)
    con = connect_readonly(path)
    try:
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        info = {n: con.execute(f"PRAGMA table_info({quote_ident(n)})").fetchall() for n in names}
        tables = []
        for name in names:
            cols = tuple(Column(name=r[1], type=(r[2] or "").upper(), primary_key=r[5] > 0) for r in info[name])
            fks = []
            fk_rows = con.execute(f"PRAGMA foreign_key_list({quote_ident(name)})").fetchall()
            # SQLite numbers keys from the last declared one: sort back into declaration order
            for _id, seq, ref_table, col, ref_col, *_ in sorted(fk_rows, key=lambda r: (-r[0], r[1])):
                if ref_col is None:  # REFERENCES t without a column: the referenced table's primary key
                    ref_pk = [r[1] for r in sorted(info.get(ref_table, []), key=lambda r: r[5]) if r[5] > 0]
                    ref_col = ref_pk[seq] if seq < len(ref_pk) else "rowid"
                fk = ForeignKey(column=col, ref_table=ref_table, ref_column=ref_col)
                if fk not in fks:
                    fks.append(fk)
            rows = _fetch_rows(con, name, [c.name for c in cols], sample_rows)
            tables.append(Table(name=name, columns=cols, foreign_keys=tuple(fks), sample_rows=rows))
    except sqlite3.DatabaseError as err:
        raise UserError(f"cannot read database {path}: {err}; is it a SQLite file?") from None
    finally:
        con.close()
    return DatabaseSchema(db_id=path.stem, tables=tuple(tables))


def tables_json_entry(schema: DatabaseSchema) -> dict[str, Any]:
    """A Spider tables.json entry describing `schema` (for generated benchmarks and hub downloads)."""
    column_names: list[list] = [[-1, "*"]]
    types = ["text"]
    primary_keys: list[int] = []
    index: dict[tuple[str, str], int] = {}
    for t, table in enumerate(schema.tables):
        for col in table.columns:
            index[(table.name.lower(), col.name.lower())] = len(column_names)
            if col.primary_key:
                primary_keys.append(len(column_names))
            column_names.append([t, col.name])
            types.append(_coarse_type(col.type))
    foreign_keys = []
    for table in schema.tables:
        for fk in table.foreign_keys:
            src = index.get((table.name.lower(), fk.column.lower()))
            dst = index.get((fk.ref_table.lower(), fk.ref_column.lower()))
            if src is not None and dst is not None:
                foreign_keys.append([src, dst])
    return {
        "db_id": schema.db_id,
        "table_names_original": [t.name for t in schema.tables],
        "table_names": [_natural(t.name) for t in schema.tables],
        "column_names_original": column_names,
        "column_names": [[t, c if t < 0 else _natural(c)] for t, c in column_names],
        "column_types": types,
        "primary_keys": primary_keys,
        "foreign_keys": foreign_keys,
    }


def _natural(name: str) -> str:
    return name.replace("_", " ").lower()


def _coarse_type(declared: str) -> str:
    t = declared.upper()
    if any(k in t for k in ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC")):
        return "number"
    if "DATE" in t or "TIME" in t:
        return "time"
    if "BOOL" in t:
        return "boolean"
    return "text"


# ---------------------------------------------------------------- writing


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value) if isinstance(value, float) else str(value)


def serialize_schema(schema: DatabaseSchema, *, foreign_keys: bool = True, sample_rows: int = 0) -> str:
    """`CREATE TABLE` statements for every table; FK lines if `foreign_keys`; up to `sample_rows` rows each.

    Sample rows come from the schema itself (read them with `schema_from_sqlite(..., sample_rows=k)`).
    """
    blocks = []
    for table in schema.tables:
        lines = [f"  {quote_ident(c.name)} {c.type}".rstrip() for c in table.columns]
        pk = [quote_ident(c.name) for c in table.columns if c.primary_key]
        if pk:
            lines.append(f"  PRIMARY KEY ({', '.join(pk)})")
        if foreign_keys:
            lines += [f"  FOREIGN KEY ({quote_ident(fk.column)}) REFERENCES "
                      f"{quote_ident(fk.ref_table)}({quote_ident(fk.ref_column)})" for fk in table.foreign_keys]
        block = f"CREATE TABLE {quote_ident(table.name)} (\n" + ",\n".join(lines) + "\n);"
        rows = table.sample_rows[:sample_rows] if sample_rows > 0 else ()
        if rows:
            header = ", ".join(quote_ident(c.name) for c in table.columns)
            block += f"\n-- {len(rows)} example row{'s' if len(rows) > 1 else ''} ({header}):"
            block += "".join("\n-- (" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
        blocks.append(block)
    return "\n\n".join(blocks)


@lru_cache(maxsize=1024)
def _sqlite_schema(path: str, mtime_ns: int, sample_rows: int) -> DatabaseSchema:
    return schema_from_sqlite(path, sample_rows=sample_rows)


@lru_cache(maxsize=4096)
def _render(schema: DatabaseSchema, foreign_keys: bool, sample_rows: int) -> str:
    return serialize_schema(schema, foreign_keys=foreign_keys, sample_rows=sample_rows)


@lru_cache(maxsize=1024)
def _with_rows(schema: DatabaseSchema, path: str, mtime_ns: int, k: int) -> DatabaseSchema:
    """`schema` (from tables.json) with k rows per table read from the SQLite file."""
    con = connect_readonly(path)
    try:
        tables = tuple(
            Table(name=t.name, columns=t.columns, foreign_keys=t.foreign_keys,
                  sample_rows=_fetch_rows(con, t.name, [c.name for c in t.columns], k))
            for t in schema.tables)
    finally:
        con.close()
    return DatabaseSchema(db_id=schema.db_id, tables=tables)


def schema_text(data: SpiderData, db_id: str, cfg: PromptConfig) -> str:
    """The schema of `db_id` as prompt text — the one function training and evaluation both use.

    `cfg.schema_source`: 'sqlite' reads the database file (declared types); 'tables_json' uses the
    tables.json entry (coarse types). With 'sqlite', a database whose file is missing (e.g. Spider's
    baseball_1 and soccer_1 training databases) falls back to its tables.json entry, so its training
    examples keep a schema; those questions cannot be scored, so evaluation never sees the fallback.
    `cfg.foreign_keys` adds the FOREIGN KEY lines; `cfg.sample_rows` adds k rows per table (read from
    the file when it exists). Results are cached per (database file and its mtime, options).
    """
    path = data.db_paths.get(db_id)
    mtime = path.stat().st_mtime_ns if path is not None else 0
    schema = data.schemas.get(db_id)
    if path is not None and (cfg.schema_source == "sqlite" or schema is None):
        schema = _sqlite_schema(str(path), mtime, cfg.sample_rows)
    elif schema is not None and path is not None and cfg.sample_rows:
        schema = _with_rows(schema, str(path), mtime, cfg.sample_rows)
    if schema is None:
        raise UserError(
            f"no schema for database {db_id!r}: its .sqlite file is missing and tables.json has no entry "
            f"for it (data source: {data.source or 'unknown'}); add database/{db_id}/{db_id}.sqlite"
        )
    return _render(schema, cfg.foreign_keys, cfg.sample_rows)
