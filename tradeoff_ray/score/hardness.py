"""Spider hardness (easy / medium / hard / extra) of a query, by the official Spider rules.

Spider reports accuracy per hardness level, so ours must bin questions exactly as the official
evaluator does (Yu et al. 2018, `evaluation.py`: `eval_hardness`). Its rules, restated from the
published evaluator and applied to a `sqlglot` parse here (no database needed):

- Only the outermost SELECT counts ("top"). For a set operation `A UNION B ...` the top is the
  leftmost SELECT `A`; the right side, and ORDER BY / LIMIT written after the compound, belong
  to the other operand and are not counted. Subqueries count only as "nested", never by content.
- component1 = one each for WHERE, GROUP BY, ORDER BY, LIMIT present at the top; plus one per
  joined table (tables in FROM minus one; a FROM subquery is one table); plus one per OR
  connector and one per LIKE condition in the JOIN ... ON, WHERE and HAVING conditions.
- component2 = one if the top is a set operation (INTERSECT / UNION / EXCEPT), plus one per
  subquery used as a value in the ON, WHERE and HAVING conditions (FROM subqueries excluded).
- others = one each for: more than one aggregation, more than one SELECT column, more than one
  WHERE condition, more than one GROUP BY column.
- easy:   c1 <= 1 and others == 0 and c2 == 0
  medium: (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0)
  hard:   (others > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and others <= 2 and c2 == 0)
          or (c1 <= 1 and others == 0 and c2 <= 1)
  extra:  everything else.

"More than one aggregation" reproduces two quirks of the official counting, because the
published level counts (dev: easy 248 / medium 446 / hard 174 / extra 166) depend on them:
its aggregation counter reads a condition's NOT flag as if it were an aggregate, so each
`NOT ...` condition in WHERE or HAVING counts as one aggregation, and each AND/OR connector in
HAVING counts as one too. Aggregations proper are counted once per aggregated SELECT column
and GROUP BY column and once per aggregate function in an ORDER BY term.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sqlglot
from sqlglot import exp

Hardness = Literal["easy", "medium", "hard", "extra"]
LEVELS: tuple[Hardness, ...] = ("easy", "medium", "hard", "extra")

_QUERY = (exp.Select, exp.SetOperation, exp.Subquery)


class UnparseableSQL(ValueError):
    """The query could not be parsed, so its hardness is undefined."""


@dataclass(frozen=True)
class Components:
    """The three counts the hardness rules read (exposed for tests and error analysis)."""

    component1: int
    component2: int
    others: int


@lru_cache(maxsize=8192)
def hardness(sql: str) -> Hardness:
    """Official Spider hardness level of `sql`; raises UnparseableSQL when sqlglot cannot parse it."""
    return level(components(sql))


def level(c: Components) -> Hardness:
    c1, c2, others = c.component1, c.component2, c.others
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if ((others > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and others <= 2 and c2 == 0)
            or (c1 <= 1 and others == 0 and c2 <= 1)):
        return "hard"
    return "extra"


def components(sql: str) -> Components:
    """component1 / component2 / others of the top SELECT of `sql` (see the module docstring).

    UnparseableSQL also for a query nested too deeply for sqlglot's recursive parser (about 60
    parentheses, hundreds of ANDs or nested CASEs): Python's RecursionError becomes that error.
    """
    try:
        return _components(sql)
    except RecursionError:
        raise UnparseableSQL("query nested too deeply to parse for hardness") from None


def _components(sql: str) -> Components:
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError as err:
        raise UnparseableSQL(f"cannot parse SQL for hardness: {err}") from None
    if tree is None:
        raise UnparseableSQL("empty SQL")
    top, is_set_op = _top_select(tree)
    if top is None:
        raise UnparseableSQL(f"not a SELECT query: {sql[:80]!r}")

    from_conds = [j.args["on"] for j in top.args.get("joins") or [] if j.args.get("on") is not None]
    from_leaves, from_conn = _flatten_all(from_conds)
    where_leaves, where_conn = _flatten_clause(top.args.get("where"))
    having_leaves, having_conn = _flatten_clause(top.args.get("having"))
    cond_leaves = from_leaves + where_leaves + having_leaves
    connectors = from_conn + where_conn + having_conn

    group_exprs = list(top.args["group"].expressions) if top.args.get("group") else []
    order_exprs = [o.this if isinstance(o, exp.Ordered) else o
                   for o in (top.args["order"].expressions if top.args.get("order") else [])]
    n_tables = (1 + len(top.args.get("joins") or [])) if top.args.get("from_") is not None else 0

    c1 = sum(top.args.get(k) is not None for k in ("where", "group", "order", "limit"))
    c1 += max(n_tables - 1, 0)
    c1 += connectors.count("or")
    c1 += sum(_is_like(leaf) for leaf in cond_leaves)

    c2 = int(is_set_op) + sum(_direct_subqueries(_unwrap_not(leaf)) for leaf in cond_leaves)

    aggs = sum(_has_agg(e) for e in top.expressions)
    aggs += sum(isinstance(leaf, exp.Not) for leaf in where_leaves)  # official quirk, see docstring
    aggs += sum(_has_agg(e) for e in group_exprs)
    aggs += sum(_count_aggs(e) for e in order_exprs)
    aggs += len(having_conn) + sum(isinstance(leaf, exp.Not) for leaf in having_leaves)  # quirk
    others = int(aggs > 1) + int(len(top.expressions) > 1) + int(len(where_leaves) > 1)
    others += int(len(group_exprs) > 1)
    return Components(c1, c2, others)


def _top_select(tree: exp.Expression) -> tuple[exp.Select | None, bool]:
    node, is_set_op = tree, False
    while True:
        if isinstance(node, exp.SetOperation):
            is_set_op, node = True, node.this
        elif isinstance(node, (exp.Subquery, exp.Paren)):
            node = node.this
        else:
            break
    return (node if isinstance(node, exp.Select) else None), is_set_op


def _unwrap(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _unwrap_not(node: exp.Expression) -> exp.Expression:
    return _unwrap(node.this) if isinstance(node, exp.Not) else node


def _flatten(cond: exp.Expression, leaves: list, connectors: list) -> None:
    """Conditions as the official parser sees them: leaves joined by a flat list of and/or."""
    cond = _unwrap(cond)
    if isinstance(cond, exp.Connector):
        _flatten(cond.this, leaves, connectors)
        connectors.append("or" if isinstance(cond, exp.Or) else "and")
        _flatten(cond.expression, leaves, connectors)
    else:
        leaves.append(cond)


def _flatten_clause(clause: exp.Expression | None) -> tuple[list, list]:
    return _flatten_all([clause.this] if clause is not None else [])


def _flatten_all(conds: list[exp.Expression]) -> tuple[list, list]:
    leaves: list = []
    connectors: list = []
    for i, cond in enumerate(conds):
        if i:
            connectors.append("and")  # the official parser joins successive ON conditions with 'and'
        _flatten(cond, leaves, connectors)
    return leaves, connectors


def _is_like(leaf: exp.Expression) -> bool:
    return isinstance(_unwrap_not(leaf), (exp.Like, exp.ILike))


def _direct_subqueries(node: exp.Expression) -> int:
    """Queries directly inside `node`, not counting queries nested inside those."""
    n = 0
    for child in node.iter_expressions():
        n += 1 if isinstance(child, _QUERY) else _direct_subqueries(child)
    return n


def _count_aggs(node: exp.Expression) -> int:
    """Aggregate calls in `node`, outside subqueries and not counting aggregates inside aggregates."""
    if isinstance(node, exp.AggFunc):
        return 1
    if isinstance(node, _QUERY):
        return 0
    return sum(_count_aggs(child) for child in node.iter_expressions())


def _has_agg(node: exp.Expression) -> bool:
    return _count_aggs(node) > 0
