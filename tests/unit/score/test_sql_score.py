"""Scoring verdicts: the error taxonomy, DISTINCT handling, gold errors, the scorer's caches."""
from __future__ import annotations

import sqlite3

import pytest

from tests.fixtures import make_singer_db
from tradeoff_ray.score.sql_exec import ReadOnlyDatabase
from tradeoff_ray.score.sql_score import SqlScorer, prepare_query, score_prediction
from tradeoff_ray.score_options import SqlScoringOptions

GOLD = "SELECT name FROM singer WHERE age = 25"


@pytest.fixture()
def db_path(tmp_path):
    return make_singer_db(tmp_path / "singer.sqlite")


@pytest.mark.parametrize("pred, ex, error, detail", [
    ("SELECT name FROM singer WHERE age = 25", 1, "ok", None),
    ("SELECT name FROM singer WHERE age < 30 AND age > 20", 1, "ok", None),
    (None, 0, "extraction_failed", None),
    ("SELEC name FROM singer", 0, "syntax_error", 'near "SELEC": syntax error'),
    ("SELECT name FROM singers", 0, "unknown_table", "no such table: singers"),
    ("SELECT nom FROM singer", 0, "unknown_column", "no such column: nom"),
    ("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r", 0, "timeout",
     "interrupted"),
    ("DROP TABLE singer", 0, "other_exec_error", None),
    ("SELECT name FROM singer WHERE age > 100", 0, "wrong_result", "empty_vs_nonempty"),
    ("SELECT name FROM singer", 0, "wrong_result", "different_rows"),
    ("SELECT name, age FROM singer WHERE age = 25", 0, "wrong_result", "different_columns"),
    ("SELECT s.name FROM singer s, country c WHERE s.age = 25 AND c.country_id < 3", 0, "wrong_result",
     "distinct_only"),
])
def test_taxonomy(db_path, pred, ex, error, detail):
    v = score_prediction(db_path, GOLD, pred, options=SqlScoringOptions(timeout_s=0.5))
    assert (v.ex, v.error) == (ex, error)
    if detail is not None:
        assert v.detail.startswith(detail) if error not in ("ok", "wrong_result") else v.detail == detail


def test_row_order_only_matters_when_gold_orders(db_path):
    asc = "SELECT name FROM singer ORDER BY age, name"
    desc = "SELECT name FROM singer ORDER BY age DESC, name DESC"
    v = score_prediction(db_path, asc, desc)
    assert (v.ex, v.error, v.detail) == (0, "wrong_result", "row_order")
    assert score_prediction(db_path, "SELECT name FROM singer", desc).ex == 1


def test_column_permutation_scores_one_with_note(db_path):
    v = score_prediction(db_path, "SELECT name, age FROM singer", "SELECT age, name FROM singer")
    assert (v.ex, v.error, v.detail) == (1, "ok", "column_order_only")


def test_distinct_removed_by_default_and_kept_on_request(db_path):
    gold = "SELECT DISTINCT age FROM singer"
    pred = "SELECT age FROM singer"
    assert score_prediction(db_path, gold, pred).ex == 1  # official default: DISTINCT dropped on both sides
    v = score_prediction(db_path, gold, pred, options=SqlScoringOptions(keep_distinct=True))
    assert (v.ex, v.detail) == (0, "distinct_only")
    assert prepare_query("SELECT count(DISTINCT age) FROM singer;") == "SELECT count( age) FROM singer"
    assert prepare_query("SELECT DISTINCT age FROM singer", keep_distinct=True) == "SELECT DISTINCT age FROM singer"


def test_gold_error_is_not_scored(db_path):
    v = score_prediction(db_path, "SELECT nope FROM singer", "SELECT name FROM singer")
    assert v.ex is None and v.error == "gold_error" and "no such column" in v.detail
    v = score_prediction(db_path, "SELECT * FROM singer a, singer b", "SELECT 1", options=SqlScoringOptions(max_rows=3))
    assert v.ex is None and v.error == "gold_error" and "max_rows" in v.detail


def test_prediction_with_too_many_rows_is_wrong(db_path):
    v = score_prediction(db_path, "SELECT name FROM singer", "SELECT a.name FROM singer a, singer b",
                         options=SqlScoringOptions(max_rows=5))
    assert (v.ex, v.error, v.detail) == (0, "wrong_result", "different_rows")


def test_missing_db(tmp_path):
    v = score_prediction(tmp_path / "none.sqlite", GOLD, GOLD)
    assert v.ex is None and v.error == "missing_db"


def test_accepts_an_open_database(db_path):
    with ReadOnlyDatabase(db_path) as db:
        assert score_prediction(db, GOLD, GOLD).ex == 1


def test_scorer_extracts_caches_gold_and_reports_hardness(db_path, monkeypatch):
    scorer = SqlScorer(SqlScoringOptions(timeout_s=1.0))
    calls = []
    import tradeoff_ray.score.sql_score as mod
    real = mod.run_gold
    monkeypatch.setattr(mod, "run_gold", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    r1 = scorer.score("singer", db_path, GOLD, f"```sql\n{GOLD}\n```\nThis lists them.", extract=True)
    r2 = scorer.score("singer", db_path, GOLD, "SELECT name FROM singer", extract=False)
    assert r1["ex"] == 1 and r1["error"] == "ok" and r1["pred_sql"] == GOLD and r1["hardness"] == "easy"
    assert r2["ex"] == 0 and r2["error_detail"] == "different_rows"
    assert calls == [GOLD]  # the gold ran once for both predictions
    r3 = scorer.score("singer", db_path, GOLD, "no sql here", extract=True)
    assert (r3["ex"], r3["error"], r3["pred_sql"]) == (0, "extraction_failed", None)
    assert scorer.score("x", None, GOLD, GOLD, extract=False)["error"] == "missing_db"
    scorer.close()


def test_database_unchanged_after_scoring_writes(db_path):
    before = sqlite3.connect(db_path).execute("SELECT count(*) FROM singer").fetchone()
    for pred in ("DELETE FROM singer", "SELECT 1; DELETE FROM singer", "WITH x AS (SELECT 1) DELETE FROM singer"):
        score_prediction(db_path, GOLD, pred)
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM singer").fetchone() == before
