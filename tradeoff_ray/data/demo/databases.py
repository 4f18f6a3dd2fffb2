"""The demo benchmark's database specs and the code that writes one as a SQLite file.

Each table carries what the question templates need to talk about it: nouns, the column that names
a row, categorical and numeric columns with plain-English phrases, and for each foreign key the
phrase that links a row to its parent ("books *written by* the author ..."). The eight themed
databases themselves are in `themes.py`.
"""
from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Col:
    name: str
    sqltype: str
    words: str = ""          # how a question names it ("number of pages"); "" = a key, never asked about
    kind: str = ""           # "name" (identifies a row), "cat" (few distinct values), "num"
    additive: bool = False   # a total (sum) is meaningful


@dataclass(frozen=True)
class Fk:
    column: str
    ref: str                 # parent table (referenced column = its primary key)
    by: str                  # child-to-parent phrase: "{children} {by} the {parent} X"


@dataclass(frozen=True)
class TableSpec:
    name: str
    one: str                 # singular noun
    many: str                # plural noun
    cols: tuple[Col, ...]
    pk: tuple[str, ...]
    fks: tuple[Fk, ...] = ()
    quote_names: bool = False  # titles are quoted in questions ("the book "Silent River"")
    verb: str = ""           # bridge tables: "{A many} that {verb} the {B one} X" (A, B = its two parents)

    def col(self, name: str) -> Col:
        return next(c for c in self.cols if c.name == name)

    @property
    def name_col(self) -> Col | None:
        return next((c for c in self.cols if c.kind == "name"), None)


@dataclass(frozen=True)
class DemoDb:
    db_id: str
    split: str               # "train" or "dev"
    tables: tuple[TableSpec, ...]
    rows: Callable[[random.Random], dict[str, list[tuple]]] = field(repr=False)

    def table(self, name: str) -> TableSpec:
        return next(t for t in self.tables if t.name == name)


def create_database(db: DemoDb, path: Path) -> Path:
    """Write `db` as a SQLite file at `path` (replacing one that is there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rows = db.rows(random.Random(f"demo-db:{db.db_id}"))
    con = sqlite3.connect(path)
    try:
        for t in db.tables:
            lines = [f"  {c.name} {c.sqltype}" for c in t.cols]
            lines.append(f"  PRIMARY KEY ({', '.join(t.pk)})")
            for fk in t.fks:
                ref = db.table(fk.ref)
                lines.append(f"  FOREIGN KEY ({fk.column}) REFERENCES {ref.name}({ref.pk[0]})")
            con.execute(f"CREATE TABLE {t.name} (\n" + ",\n".join(lines) + "\n)")
            marks = ", ".join("?" * len(t.cols))
            con.executemany(f"INSERT INTO {t.name} VALUES ({marks})", rows[t.name])
        con.commit()
    finally:
        con.close()
    return path
