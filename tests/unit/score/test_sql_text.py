"""Query-text helpers: first statement, ORDER BY detection, the official DISTINCT removal."""
from __future__ import annotations

from tradeoff_ray.score.sql_text import (first_statement, fix_spaced_operators, has_order_by, leading_keyword,
                                         strip_distinct)


def test_first_statement_respects_quotes_and_comments():
    assert first_statement("SELECT 1; SELECT 2") == "SELECT 1"
    assert first_statement("SELECT 'a;b' FROM t; DROP TABLE t") == "SELECT 'a;b' FROM t"
    assert first_statement('SELECT "x;y" FROM t;') == 'SELECT "x;y" FROM t'
    assert first_statement("SELECT 1 /* ; */ + 1; SELECT 2") == "SELECT 1 /* ; */ + 1"
    assert first_statement(";; SELECT 3 ;") == "SELECT 3"
    assert first_statement("SELECT name FROM singer") == "SELECT name FROM singer"


def test_leading_keyword_skips_comments_and_parens():
    assert leading_keyword("  -- hi\n/* x */ (select 1)") == "select"
    assert leading_keyword("With x AS (SELECT 1) SELECT * FROM x") == "with"
    assert leading_keyword("   ") == ""


def test_has_order_by_is_token_aware():
    assert has_order_by("SELECT a FROM t ORDER  BY a")
    assert has_order_by("select a from t order\nby a desc")
    assert has_order_by("SELECT a FROM t WHERE a IN (SELECT b FROM s ORDER BY b LIMIT 1)")  # official: anywhere
    assert not has_order_by("SELECT 'order by' FROM t")
    assert not has_order_by("SELECT border_by FROM t")


def test_strip_distinct_removes_every_distinct_keyword():
    assert strip_distinct("SELECT DISTINCT name FROM t") == "SELECT  name FROM t"
    assert strip_distinct("SELECT count(DISTINCT name) FROM t") == "SELECT count( name) FROM t"
    nested = "SELECT a FROM t WHERE b IN (SELECT distinct b FROM s)"
    assert "distinct" not in strip_distinct(nested).lower()


def test_strip_distinct_leaves_literals_identifiers_and_is_distinct_from():
    assert strip_distinct("SELECT 'distinct' FROM t") == "SELECT 'distinct' FROM t"
    assert strip_distinct('SELECT "distinct" FROM t') == 'SELECT "distinct" FROM t'
    assert strip_distinct("SELECT a IS NOT DISTINCT FROM b FROM t") == "SELECT a IS NOT DISTINCT FROM b FROM t"
    assert strip_distinct("SELECT 'unterminated") == "SELECT 'unterminated"  # untokenizable: unchanged


def test_fix_spaced_operators_outside_literals():
    assert fix_spaced_operators("SELECT a FROM t WHERE a > = 3 AND b ! = 'x > = y'") == \
        "SELECT a FROM t WHERE a >= 3 AND b != 'x > = y'"
