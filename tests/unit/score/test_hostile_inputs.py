"""Inputs built to hang or break a scorer: each ends as one record's error, within about its limit."""
from __future__ import annotations

import _thread
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures import make_singer_db
import tradeoff_ray.commands.score_sql  # noqa: F401 - imported now, so a timed Ctrl-C lands in the scoring
from tradeoff_ray.cli import app
from tradeoff_ray.records import read_jsonl
from tradeoff_ray.score.hardness import UnparseableSQL, hardness
from tradeoff_ray.score.sql_batch import make_task
from tradeoff_ray.score.sql_exec import ReadOnlyDatabase
from tradeoff_ray.score.sql_extract import extract_sql
from tradeoff_ray.score.sql_score import SqlScorer
from tradeoff_ray.score.sql_text import first_statement
from tradeoff_ray.score_options import SqlScoringOptions

MAX_TEXT_CHARS = 100_000  # sql_text.MAX_TEXT_CHARS, the documented limit (README, Failure behaviour)

GOLD = "SELECT name FROM singer WHERE age = 25"
LOOP = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
DEEP = "SELECT " + "(" * 70 + "1" + ")" * 70
MANY_ANDS = "SELECT name FROM singer WHERE " + " AND ".join(f"age <> {i}" for i in range(1000))
NESTED_CASE = "SELECT " + "CASE WHEN 1 THEN " * 300 + "1" + " END" * 300


@pytest.fixture()
def spider(tmp_path) -> Path:
    make_singer_db(tmp_path / "spider" / "database" / "singer" / "singer.sqlite")
    return tmp_path / "spider"


def _invoke(*args):
    return CliRunner().invoke(app, ["score-sql", *map(str, args)])


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("sql", ["SELECT printf('%.*c', 2000000000, 'x')", "SELECT printf('%.2000000000c', 'x')",
                                 "SELECT format('%.*c', 2000000000, 'x') FROM singer"])
def test_one_huge_function_call_is_refused_quickly(tmp_path, sql):
    with ReadOnlyDatabase(make_singer_db(tmp_path / "s.sqlite")) as db:
        start = time.monotonic()
        r = db.execute(sql, timeout_s=1.0)
        assert r.error in ("timeout", "other_exec_error") and "too large" in r.message
        assert time.monotonic() - start < 1.5
        assert db.execute("SELECT printf('%s-%03d', name, age) FROM singer WHERE age = 40").rows == [("Di-040",)]


def test_a_statement_that_overruns_its_limit_is_a_timeout(tmp_path):
    with ReadOnlyDatabase(make_singer_db(tmp_path / "s.sqlite")) as db:
        db._con.create_function("stall", 0, lambda: time.sleep(0.3) or 1)  # one step SQLite cannot interrupt
        r = db.execute("SELECT stall()", timeout_s=0.1)
    assert r.error == "timeout" and r.rows is None


@pytest.fixture()
def plain_sigint():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal: a Ray session started earlier in this test process
    installs its own SIGINT handler, which would swallow the simulated Ctrl-C."""
    import signal

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_during_a_query_is_not_recorded_as_its_timeout(tmp_path, plain_sigint):
    with ReadOnlyDatabase(make_singer_db(tmp_path / "s.sqlite")) as db:
        timer = threading.Timer(0.2, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            db.execute(LOOP, timeout_s=5.0)
        timer.cancel()  # a no-op once it fired; never leave a pending Ctrl-C behind
        assert db.execute("SELECT count(*) FROM singer").rows == [(4,)]


def test_ctrl_c_keeps_finished_records_and_writes_nothing_to_out(tmp_path, spider, plain_sigint):
    preds = _write(tmp_path / "p.jsonl", [{"db_id": "singer", "query": GOLD, "pred": GOLD}] * 3
                   + [{"db_id": "singer", "query": GOLD, "pred": LOOP}])
    timer = threading.Timer(1.5, _thread.interrupt_main)  # the three quick records take milliseconds
    timer.start()
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--timeout", 20, "--workers", 1)
    timer.cancel()  # a no-op once it fired; never leave a pending Ctrl-C behind
    assert result.exit_code == 130, result.output
    assert not (tmp_path / "p.scored.jsonl").exists()
    kept = list(read_jsonl(tmp_path / "p.scored.partial.jsonl"))
    assert [(r["ex"], r["partial"]) for r in kept] == [(1, True)] * 3
    assert "3 of 4 records finished" in result.output and "nothing written" in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_timeout_must_be_finite_and_positive(tmp_path, spider, value):
    preds = _write(tmp_path / "p.jsonl", [{"db_id": "singer", "query": GOLD, "pred": LOOP}])
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--timeout", value, "--workers", 1)
    assert result.exit_code == 2 and "--timeout" in result.output
    assert not (tmp_path / "p.scored.jsonl").exists()


def test_deeply_nested_queries_are_one_records_problem(tmp_path, spider):
    for sql in (DEEP, MANY_ANDS, NESTED_CASE):
        with pytest.raises(UnparseableSQL):
            hardness(sql)
    preds = _write(tmp_path / "p.jsonl", [{"db_id": "singer", "query": DEEP, "pred": GOLD},
                                          {"db_id": "singer", "query": GOLD, "pred": DEEP},
                                          {"db_id": "singer", "query": GOLD, "pred": MANY_ANDS},
                                          {"db_id": "singer", "query": GOLD, "pred": GOLD},
                                          {"db_id": "singer", "query": NESTED_CASE, "pred": NESTED_CASE}])
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--workers", 1)
    assert result.exit_code == 0, result.output
    out = list(read_jsonl(tmp_path / "p.scored.jsonl"))
    assert len(out) == 5 and out[3]["ex"] == 1 and out[3]["hardness"] == "easy"
    assert out[0]["hardness"] is None and out[1]["ex"] == 0 and out[2]["ex"] == 0


def test_long_texts_are_handled_in_linear_time_and_capped():
    start = time.monotonic()
    assert first_statement("SELECT '" + ";" * 90_000).startswith("SELECT '")
    assert extract_sql("select the x\n" * 7_000) is None
    assert extract_sql(":select (" * 11_000) is None
    assert extract_sql("Here:\nSELECT a\n" + "FROM b\n" * 12_000).startswith("SELECT a")
    assert time.monotonic() - start < 3.0  # each was quadratic or worse: minutes at these sizes
    with pytest.raises(ValueError, match="too large: query of 100,009 characters"):
        first_statement("SELECT 1 " + " " * MAX_TEXT_CHARS)
    with pytest.raises(ValueError, match="too large: generation"):
        extract_sql("x" * (MAX_TEXT_CHARS + 1))


def test_too_long_prediction_is_a_clear_record_error(tmp_path):
    scorer = SqlScorer(SqlScoringOptions(timeout_s=1.0))
    db = make_singer_db(tmp_path / "s.sqlite")
    huge = "SELECT '" + ";" * MAX_TEXT_CHARS
    r = scorer.score("singer", db, GOLD, huge, extract=False)
    assert r["ex"] == 0 and r["error"] == "other_exec_error" and "too large" in r["error_detail"]
    r = scorer.score("singer", db, GOLD, "Answer:\n" + huge, extract=True)
    assert r["ex"] == 0 and r["error"] == "extraction_failed" and "too large" in r["error_detail"]
    scorer.close()


@pytest.mark.parametrize("where", ["directory", "under_file", "exists"])
def test_unwritable_out_fails_before_scoring(tmp_path, spider, where):
    preds = _write(tmp_path / "p.jsonl", [{"db_id": "singer", "query": GOLD, "pred": GOLD}])
    out = {"directory": tmp_path / "d", "under_file": tmp_path / "f" / "out.jsonl", "exists": tmp_path / "o.jsonl"}[where]
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("a file")
    (tmp_path / "o.jsonl").write_text("earlier results\n")
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--out", out, "--workers", 1)
    assert result.exit_code == 2 and str(out) in result.output.replace("\n", "")
    assert "scoring" not in result.output and "records" not in result.output
    assert (tmp_path / "o.jsonl").read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f", "o.jsonl", "p.jsonl", "spider"]
    if where == "exists":
        assert "--force" in result.output
        result = _invoke("--spider-dir", spider, "--predictions", preds, "--out", out, "--workers", 1, "--force")
        assert result.exit_code == 0 and next(read_jsonl(out))["ex"] == 1


def test_wal_database_folder_stays_byte_identical(tmp_path, spider):
    folder = tmp_path / "spider" / "database" / "walled"
    path = make_singer_db(folder / "walled.sqlite")
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    con.close()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    preds = _write(tmp_path / "p.jsonl", [{"db_id": "walled", "query": GOLD, "pred": GOLD}])
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--workers", 1)
    assert result.exit_code == 0 and next(read_jsonl(tmp_path / "p.scored.jsonl"))["ex"] == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("db_id", ["/elsewhere/x/x", "../outside", "singer/../singer", ".."])
def test_db_id_must_be_a_plain_name(tmp_path, spider, db_id):
    outside = tmp_path / "outside"
    make_singer_db(outside / "outside.sqlite")
    make_singer_db(tmp_path / "elsewhere" / "x" / "x" / "x.sqlite")
    task = make_task(0, {"db_id": db_id.replace("/elsewhere", str(tmp_path / "elsewhere")), "query": GOLD,
                         "pred": GOLD}, spider)
    assert isinstance(task, dict) and task["error"] == "missing_db" and "plain" in task["error_detail"]
