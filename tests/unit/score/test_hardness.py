"""Spider hardness by the official rules, on queries shaped like Spider's (no database needed)."""
from __future__ import annotations

import pytest

from tradeoff_ray.score.hardness import Components, UnparseableSQL, components, hardness, level


@pytest.mark.parametrize("sql, expected", [
    ("SELECT count(*) FROM singer", "easy"),
    ("SELECT name FROM singer WHERE age > 20", "easy"),
    ("SELECT name FROM singer ORDER BY age LIMIT 1", "medium"),  # c1 = 2
    ("SELECT name, country, age FROM singer ORDER BY age DESC", "medium"),  # others = 1
    ("SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
     "GROUP BY T1.stadium_id", "medium"),  # c1 = 2 (join, group), others = 1
    ("SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
     "WHERE T1.year >= 2014 GROUP BY T2.stadium_id", "hard"),  # c1 = 3
    ("SELECT name FROM stadium WHERE capacity > 5000 INTERSECT SELECT name FROM stadium WHERE year < 2000",
     "hard"),  # c1 = 1, c2 = 1
    ("SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)", "hard"),
    ("SELECT name, age FROM singer WHERE age > (SELECT avg(age) FROM singer)", "extra"),
    ("SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id WHERE T1.year = 2014 "
     "OR T1.year = 2015 GROUP BY T2.name ORDER BY count(*) DESC LIMIT 1", "extra"),
])
def test_levels(sql, expected):
    assert hardness(sql) == expected


def test_counts_follow_the_official_components():
    sql = ("SELECT T1.a, count(*) FROM t AS T1 JOIN s AS T2 ON T1.x = T2.y WHERE T1.b LIKE '%z%' OR T1.c = 1 "
           "GROUP BY T1.a ORDER BY count(*) DESC LIMIT 3")
    # where, group, order, limit (4) + 1 join + 1 OR + 1 LIKE = 7; aggregations: select + order = 2 (> 1),
    # 2 select columns, 2 where conditions
    assert components(sql) == Components(component1=7, component2=0, others=3)


def test_only_the_left_operand_of_a_set_operation_counts():
    left = "SELECT a FROM t"
    right = "SELECT a FROM s WHERE b = 1 AND c = 2 GROUP BY a ORDER BY a LIMIT 1"
    assert components(f"{left} UNION {right}") == Components(0, 1, 0)
    assert hardness(f"{left} EXCEPT {right}") == "hard"


def test_from_subquery_is_one_table_not_a_nested_query():
    assert components("SELECT count(*) FROM (SELECT a FROM t WHERE b = 1)") == Components(0, 0, 0)


def test_official_aggregation_quirks_are_reproduced():
    # A NOT condition in WHERE counts as an aggregation in the official evaluator ...
    assert components("SELECT count(*) FROM t WHERE a NOT IN (SELECT a FROM s)").others == 1
    # ... and each AND/OR connector in HAVING does too.
    assert components("SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1 AND sum(b) > 2").others == 2
    assert components("SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1").others == 1


def test_level_boundaries():
    assert level(Components(1, 0, 0)) == "easy"
    assert level(Components(2, 0, 1)) == "medium"
    assert level(Components(1, 0, 2)) == "medium"
    assert level(Components(2, 0, 3)) == "hard"
    assert level(Components(3, 0, 2)) == "hard"
    assert level(Components(1, 1, 0)) == "hard"
    assert level(Components(4, 0, 0)) == "extra"
    assert level(Components(0, 2, 0)) == "extra"


def test_unparseable_sql_raises():
    with pytest.raises(UnparseableSQL):
        hardness("SELECT FROM WHERE (((")
    with pytest.raises(UnparseableSQL):
        hardness("DROP TABLE t")
