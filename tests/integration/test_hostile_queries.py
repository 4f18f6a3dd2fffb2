"""Hostile predictions cannot change a database file or hang the scorer.

Each query runs against a temporary copy of a database (one built here, and world_1 from a real
Spider copy when SPIDER_DIR is set); afterwards the file must be byte-identical (sha256), the
folder must hold no new file, and every query must have returned within timeout + 1 s.
"""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tradeoff_ray.score.sql_exec import ReadOnlyDatabase
from tradeoff_ray.score.sql_score import score_prediction
from tradeoff_ray.score_options import SqlScoringOptions

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, value REAL);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
        INSERT INTO big SELECT i, 'name' || i, i * 0.5 FROM n;
        CREATE TABLE bad_text (s TEXT);
        INSERT INTO bad_text VALUES (CAST(X'C328FFFE41' AS TEXT)), ('ok');
        """
    )
    con.commit()
    con.close()
    return path


def _hostile(table: str, folder: Path) -> list[str]:
    t = table
    return [
        f"INSERT INTO {t} SELECT * FROM {t}",
        f"UPDATE {t} SET rowid = rowid + 1",
        f"DELETE FROM {t}",
        f"REPLACE INTO {t} SELECT * FROM {t}",
        f"WITH x AS (SELECT 1) DELETE FROM {t}",
        f"SELECT 1; DROP TABLE {t}",
        f"DROP TABLE {t}",
        "CREATE TABLE evil (a)",
        "CREATE TEMP TABLE evil (a)",
        f"CREATE INDEX evil ON {t}(rowid)",
        f"ALTER TABLE {t} RENAME TO evil",
        f"ATTACH DATABASE '{folder / 'other.sqlite'}' AS other",
        "PRAGMA writable_schema = 1",
        "PRAGMA writable_schema = 1; UPDATE sqlite_master SET sql = 'x'",
        "PRAGMA query_only = 0",
        "PRAGMA journal_mode = WAL",
        "VACUUM",
        f"VACUUM INTO '{folder / 'copy.sqlite'}'",
        "BEGIN EXCLUSIVE",
        "SELECT load_extension('/nonexistent/evil')",
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
        "WITH RECURSIVE r(x) AS (SELECT 'a' UNION ALL SELECT x || x FROM r) SELECT length(x) FROM r",
        f"SELECT count(*) FROM {t} a, {t} b, {t} c",
        f"SELECT * FROM {t} a, {t} b ORDER BY random()",
        f"SELECT * FROM {t} a, {t} b, {t} c LIMIT 1000000000",
        "SELECT zeroblob(2000000000)",
        f"SELECT zeroblob(7000000), randomblob(10) FROM {t} a, {t} b",  # 7 MB per row: memory bomb
    ]


def _run_suite(db_path: Path, table: str) -> None:
    folder = db_path.parent
    before_hash, before_files = _sha256(db_path), sorted(p.name for p in folder.iterdir())
    queries = _hostile(table, folder)
    with ReadOnlyDatabase(db_path) as db:
        for sql in queries:
            start = time.monotonic()
            result = db.execute(sql, timeout_s=TIMEOUT_S, max_rows=10_000)
            assert time.monotonic() - start < TIMEOUT_S + 1, sql
            if "LIMIT 1000000000" in sql:
                assert result.ok and result.truncated and len(result.rows) == 10_000
            elif not sql.startswith("SELECT 1;"):
                assert result.error is not None, sql
        assert db.execute(f"SELECT count(*) FROM {table}").ok  # still usable afterwards
    for sql in queries:  # the same through the whole scoring path
        start = time.monotonic()
        verdict = score_prediction(db_path, f"SELECT count(*) FROM {table}", sql,
                                   options=SqlScoringOptions(timeout_s=TIMEOUT_S, max_rows=10_000))
        assert time.monotonic() - start < 2 * TIMEOUT_S + 1, sql
        assert verdict.ex == 0, sql
    assert _sha256(db_path) == before_hash
    assert sorted(p.name for p in folder.iterdir()) == before_files


def test_hostile_queries_on_built_db(tmp_path):
    (tmp_path / "db").mkdir()
    _run_suite(_make_db(tmp_path / "db" / "hostile.sqlite"), "big")


def test_non_utf8_text_is_read_not_raised(tmp_path):
    db_path = _make_db(tmp_path / "bad.sqlite")
    with ReadOnlyDatabase(db_path) as db:
        result = db.execute("SELECT s FROM bad_text ORDER BY rowid")
    assert result.ok and result.rows[1] == ("ok",) and "\ufffd" in result.rows[0][0]
    verdict = score_prediction(db_path, "SELECT s FROM bad_text", "SELECT s FROM bad_text ORDER BY s DESC")
    assert verdict.ex == 1


def test_hostile_queries_on_real_spider_db(tmp_path, spider_dir):
    source = spider_dir / "database" / "world_1" / "world_1.sqlite"
    if not source.is_file():
        pytest.skip("world_1 database not in this Spider copy")
    (tmp_path / "db").mkdir()
    db_path = Path(shutil.copy(source, tmp_path / "db" / "world_1.sqlite"))
    _run_suite(db_path, "city")
