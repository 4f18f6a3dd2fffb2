"""Safe execution: read-only, timeouts, row caps, bad text, error classes, first statement only."""
from __future__ import annotations

import sqlite3
import time

import pytest

from tests.fixtures import make_singer_db
from tradeoff_ray.score.sql_exec import (ConnectionCache, MissingDatabase, ReadOnlyDatabase, classify_error,
                                         guard_connection)


@pytest.fixture()
def db(tmp_path):
    with ReadOnlyDatabase(make_singer_db(tmp_path / "singer.sqlite")) as opened:
        yield opened


def test_select_returns_rows_and_timing(db):
    r = db.execute("SELECT name FROM singer WHERE age = 25 ORDER BY name")
    assert r.ok and r.rows == [("Bo",), ("Cy",)] and not r.truncated and r.elapsed_s >= 0


@pytest.mark.parametrize("sql, error", [
    ("SELECT name FRM singer", "syntax_error"),
    ("SELECT name FROM singer WHERE", "syntax_error"),
    ("SELECT 'open", "syntax_error"),
    ("SELECT * FROM singers", "unknown_table"),
    ("SELECT height FROM singer", "unknown_column"),
    ("SELECT name FROM singer JOIN country ON singer.country_id = country.country_id", "unknown_column"),
    ("SELECT nosuchfn(name) FROM singer", "other_exec_error"),
    ("DELETE FROM singer", "other_exec_error"),
])
def test_error_classes(db, sql, error):
    r = db.execute(sql)
    assert r.rows is None and r.error == error and r.message


def test_classify_error_messages():
    assert classify_error('near "FRM": syntax error') == "syntax_error"
    assert classify_error("no such table: main.x") == "unknown_table"
    assert classify_error("interrupted") == "timeout"
    assert classify_error("not authorized") == "other_exec_error"


def test_only_first_statement_runs(db):
    r = db.execute("SELECT count(*) FROM singer; DELETE FROM singer; SELECT 1")
    assert r.rows == [(4,)]
    assert db.execute("SELECT count(*) FROM singer").rows == [(4,)]


def test_semicolon_inside_string_does_not_split(db):
    assert db.execute("SELECT 'a;b' AS x; SELECT 2").rows == [("a;b",)]


def test_empty_statement_is_a_syntax_error(db):
    assert db.execute("  ;  ").error == "syntax_error"


def test_row_cap_truncates(db):
    r = db.execute("SELECT * FROM singer a, singer b", max_rows=5)
    assert r.ok and len(r.rows) == 5 and r.truncated
    assert not db.execute("SELECT * FROM singer", max_rows=4).truncated


def test_timeout_interrupts_runaway_query(db):
    start = time.monotonic()
    r = db.execute("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r",
                   timeout_s=0.3)
    assert r.error == "timeout" and time.monotonic() - start < 1.3
    assert db.execute("SELECT count(*) FROM singer", timeout_s=0.3).rows == [(4,)]  # connection still usable


def test_non_utf8_text_is_decoded(tmp_path):
    path = tmp_path / "bad.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (s TEXT)")
    con.execute("INSERT INTO t VALUES (CAST(X'66FF6F' AS TEXT))")
    con.commit()
    con.close()
    with ReadOnlyDatabase(path) as db:
        r = db.execute("SELECT s FROM t")
    assert r.ok and r.rows == [("f\ufffdo",)]


def test_missing_file_raises(tmp_path):
    with pytest.raises(MissingDatabase):
        ReadOnlyDatabase(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_guard_denies_writes_even_on_a_writable_connection(tmp_path):
    con = guard_connection(sqlite3.connect(make_singer_db(tmp_path / "w.sqlite"), isolation_level=None))
    for sql in ("INSERT INTO singer VALUES (9, 'X', 1, 1)", "UPDATE singer SET age = 0",
                "WITH x AS (SELECT 1) DELETE FROM singer", "CREATE TABLE z (a)", "DROP TABLE singer",
                "ALTER TABLE singer ADD COLUMN z", "PRAGMA writable_schema = 1", "PRAGMA query_only = 0",
                f"ATTACH DATABASE '{tmp_path / 'o.db'}' AS o", "BEGIN", "SELECT load_extension('x')"):
        with pytest.raises(sqlite3.DatabaseError):
            con.execute(sql)
    assert con.execute("SELECT count(*) FROM singer").fetchone() == (4,)
    assert con.execute("PRAGMA table_info(singer)").fetchall()  # schema-reading pragma allowed
    assert not (tmp_path / "o.db").exists()


def test_connection_cache_is_lru_bounded(tmp_path):
    paths = [make_singer_db(tmp_path / f"db{i}.sqlite") for i in range(3)]
    cache = ConnectionCache(max_open=2)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first
    cache.get(paths[1])
    cache.get(paths[2])
    assert len(cache) == 2
    assert cache.get(paths[0]) is not first  # evicted and reopened
    cache.close()
    assert len(cache) == 0


def test_result_size_is_capped(db, monkeypatch):
    import tradeoff_ray.score.sql_exec as mod
    monkeypatch.setattr(mod, "MAX_RESULT_BYTES", 10_000)
    monkeypatch.setattr(mod, "FETCH_BATCH", 2)
    r = db.execute("SELECT zeroblob(3000) FROM singer a, singer b")
    assert r.error == "other_exec_error" and "result larger" in r.message
    assert db.execute("SELECT zeroblob(1000) FROM singer").ok
