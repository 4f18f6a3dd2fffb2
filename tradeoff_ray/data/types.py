"""Records every stage passes around: Spider examples, database schemas, MMLU questions.

Plain frozen dataclasses (no torch, no Ray) so scoring, prompts and tests can use them anywhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_PLAIN_DB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

LETTERS = ("A", "B", "C", "D")
CATEGORIES = ("STEM", "humanities", "social_sciences", "other")


def database_file(db_dir: Path, db_id: str) -> Path | None:
    """`<db_dir>/<db_id>/<db_id>.sqlite`, or None when `db_id` is not a plain name (a path such as
    '/elsewhere/x' or '../x' would reach a file outside the benchmark's database folder)."""
    if not isinstance(db_id, str) or not _PLAIN_DB_ID.fullmatch(db_id) or ".." in db_id:
        return None
    return Path(db_dir) / db_id / f"{db_id}.sqlite"


@dataclass(frozen=True)
class SqlExample:
    """One Text-to-SQL pair. `example_id` is stable across runs (e.g. 'dev-0042')."""

    example_id: str
    split: str
    db_id: str
    question: str
    query: str


@dataclass(frozen=True)
class Column:
    name: str
    type: str = ""
    primary_key: bool = False


@dataclass(frozen=True)
class ForeignKey:
    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    sample_rows: tuple[tuple, ...] = ()


@dataclass(frozen=True)
class DatabaseSchema:
    """A database's tables, read from tables.json or from the SQLite file itself."""

    db_id: str
    tables: tuple[Table, ...]


@dataclass
class SpiderData:
    """Spider (or a Spider-format benchmark): examples per split plus where each database lives."""

    train: list[SqlExample]
    dev: list[SqlExample]
    db_paths: dict[str, Path]
    schemas: dict[str, DatabaseSchema] = field(default_factory=dict)
    missing_dbs: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    is_demo: bool = False

    def executable(self, split: str) -> list[SqlExample]:
        """Examples of `split` whose database file exists (the only ones that can be scored)."""
        return [e for e in getattr(self, split) if e.db_id in self.db_paths]


@dataclass(frozen=True)
class McQuestion:
    """One four-option multiple-choice question in MMLU format."""

    example_id: str
    subject: str
    category: str
    split: str
    index: int
    question: str
    choices: tuple[str, str, str, str]
    answer: str

    @property
    def answer_index(self) -> int:
        return LETTERS.index(self.answer)


@dataclass
class MmluData:
    """MMLU (or an MMLU-format set): questions per split and subject, and the subject -> category map."""

    splits: dict[str, dict[str, list[McQuestion]]]
    subject_category: dict[str, str]
    source: str = ""
    is_demo: bool = False

    def questions(self, split: str) -> list[McQuestion]:
        return [q for subject in sorted(self.splits.get(split, {})) for q in self.splits[split][subject]]

    def dev_exemplars(self, subject: str, k: int) -> list[McQuestion]:
        """The first k dev-split questions of `subject` (the harness's few-shot source)."""
        return self.splits.get("dev", {}).get(subject, [])[:k]
