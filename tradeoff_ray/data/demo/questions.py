"""Question / gold-SQL pairs for the demo databases, from templates over the table annotations.

Families span Spider's hardness levels: counts and filters (easy), ORDER BY / LIMIT, GROUP BY,
HAVING and joins (medium, hard), nested queries and INTERSECT / EXCEPT / UNION (extra). Values
come from the database itself, and every candidate is executed before it is kept: a query that
returns nothing (or a zero count) is dropped, and so is an ORDER BY ... LIMIT k whose k-th and
(k+1)-th rows tie (the question would have two right answers). Full orderings are asked only
over columns without ties.
"""
from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterator

from tradeoff_ray.data.demo.databases import Col, DemoDb, Fk, TableSpec


@dataclass(frozen=True)
class Candidate:
    family: str
    question: str
    query: str
    check: str = ""          # values of the ORDER BY expression, ordered, LIMIT k+1: row k-1 must differ from row k
    k: int = 0


class _Ctx:
    """The database being asked about: value look-ups and phrasing helpers for the templates."""

    def __init__(self, db: DemoDb, con: sqlite3.Connection, rng: random.Random):
        self.db, self.con, self.rng = db, con, rng

    def q(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def values(self, t: TableSpec, col: Col) -> list[Any]:
        return [r[0] for r in self.q(f"SELECT DISTINCT {col.name} FROM {t.name} WHERE {col.name} IS NOT NULL "
                                     f"ORDER BY {col.name}")]

    def pick(self, items: list) -> Any:
        return self.rng.choice(items)

    def mid(self, t: TableSpec, col: Col) -> Any:
        """A value from the middle half of the column, so both sides of a comparison hold rows."""
        vals = self.values(t, col)
        return vals[self.rng.randint(len(vals) // 4, max(len(vals) // 4, (3 * len(vals)) // 4 - 1))]

    def distinct(self, t: TableSpec, col: Col) -> bool:
        return self.q(f"SELECT count(DISTINCT {col.name}) = count(*) FROM {t.name}")[0][0] == 1

    @staticmethod
    def lit(value: Any) -> str:
        return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else _num(value)

    @staticmethod
    def say(t: TableSpec, value: Any) -> str:
        return f'"{value}"' if t.quote_names else str(value)


def _a(phrase: str) -> str:
    """`phrase` with its indefinite article ("an age", "a price")."""
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cols(t: TableSpec, kind: str) -> list[Col]:
    return [c for c in t.cols if c.kind == kind]


def _single(cx: _Ctx, t: TableSpec) -> Iterator[Candidate]:
    """Questions about one table."""
    n, T, one, many = t.name_col, t.name, t.one, t.many
    if n is None:
        return
    N, ns = n.name, f"{n.words}s"
    yield Candidate("count", cx.pick([f"How many {many} are there?", f"Count the number of {many}.",
                                      f"What is the total number of {many}?"]), f"SELECT count(*) FROM {T}")
    yield Candidate("list", cx.pick([f"List the {ns} of all {many}.", f"What are the {ns} of all the {many}?",
                                     f"Show the {n.words} of every {one}."]), f"SELECT {N} FROM {T}")
    names = cx.values(t, n)
    for _ in range(2):
        v = cx.pick(names)
        for c in _cols(t, "cat") + _cols(t, "num"):
            yield Candidate("lookup", cx.pick([f"What is the {c.words} of the {one} {cx.say(t, v)}?",
                                               f"Find the {c.words} of the {one} named {cx.say(t, v)}."]),
                            f"SELECT {c.name} FROM {T} WHERE {N} = {cx.lit(v)}")
    words = sorted({w for name in names for w in str(name).split() if len(w) >= 4 and w not in ("The",)})
    hits = [w for w in words if 2 <= sum(w in str(x) for x in names) < len(names)]
    if hits:
        w = cx.pick(hits)
        yield Candidate("like", f'Find the {ns} of {many} whose {n.words} contains "{w}".',
                        f"SELECT {N} FROM {T} WHERE {N} LIKE '%{w}%'")
    for c in _cols(t, "cat"):
        C, cw = c.name, c.words
        vals = cx.values(t, c)
        for v in cx.rng.sample(vals, min(2, len(vals))):
            yield Candidate("filter_cat", cx.pick([f"What are the {ns} of the {many} whose {cw} is {v}?",
                                                   f"Which {many} have {cw} {v}? Give their {ns}.",
                                                   f"Find the {n.words} of every {one} with {cw} {v}."]),
                            f"SELECT {N} FROM {T} WHERE {C} = {cx.lit(v)}")
            yield Candidate("count_cat", cx.pick([f"How many {many} have {cw} {v}?",
                                                  f"Count the {many} whose {cw} is {v}."]),
                            f"SELECT count(*) FROM {T} WHERE {C} = {cx.lit(v)}")
        yield Candidate("group_count", cx.pick([f"How many {many} are there for each {cw}?",
                                                f"Show each {cw} and the number of {many} with it."]),
                        f"SELECT {C}, count(*) FROM {T} GROUP BY {C}")
        counts = sorted({r[0] for r in cx.q(f"SELECT count(*) FROM {T} GROUP BY {C}")})
        if len(counts) > 1:
            k = cx.pick(counts[1:])
            yield Candidate("having", cx.pick([f"List every {cw} that at least {k} {many} have.",
                                               f"Which {cw} values are shared by {k} or more {many}?"]),
                            f"SELECT {C} FROM {T} GROUP BY {C} HAVING count(*) >= {k}")
        yield Candidate("group_top", cx.pick([f"Which {cw} is the most common among the {many}?",
                                              f"What is the most frequent {cw} of the {many}?"]),
                        f"SELECT {C} FROM {T} GROUP BY {C} ORDER BY count(*) DESC LIMIT 1",
                        f"SELECT count(*) FROM {T} GROUP BY {C} ORDER BY count(*) DESC LIMIT 2", 1)
        yield Candidate("count_distinct", f"How many distinct {cw} values appear among the {many}?",
                        f"SELECT count(DISTINCT {C}) FROM {T}")
        if len(vals) >= 3:
            v1, v2 = cx.rng.sample(vals, 2)
            yield Candidate("or", f"What are the {ns} of the {many} whose {cw} is either {v1} or {v2}?",
                            f"SELECT {N} FROM {T} WHERE {C} = {cx.lit(v1)} OR {C} = {cx.lit(v2)}")
        for x in _cols(t, "num"):
            X, xw = x.name, x.words
            yield Candidate("group_avg", cx.pick([f"What is the average {xw} of the {many} for each {cw}?",
                                                  f"For each {cw}, show the average {xw} of the {many}."]),
                            f"SELECT {C}, avg({X}) FROM {T} GROUP BY {C}")
            v, a = cx.pick(vals), cx.mid(t, x)
            yield Candidate("and", f"Which {many} have {cw} {v} and {_a(xw)} greater than {_num(a)}? "
                                   f"Give their {ns}.",
                            f"SELECT {N} FROM {T} WHERE {C} = {cx.lit(v)} AND {X} > {cx.lit(a)}")
            hi, lo = cx.mid(t, x), cx.mid(t, x)
            yield Candidate("intersect", f"Which {cw} values have both {_a(one)} with {xw} above {_num(hi)} and "
                                         f"{_a(one)} with {xw} below {_num(lo)}?",
                            f"SELECT {C} FROM {T} WHERE {X} > {cx.lit(hi)} INTERSECT "
                            f"SELECT {C} FROM {T} WHERE {X} < {cx.lit(lo)}")
            yield Candidate("except", f"Which {cw} values have no {one} with {_a(xw)} above {_num(hi)}?",
                            f"SELECT {C} FROM {T} EXCEPT SELECT {C} FROM {T} WHERE {X} > {cx.lit(hi)}")
            yield Candidate("union", f"List the {ns} of {many} that have {cw} {v} or {_a(xw)} above {_num(hi)}.",
                            f"SELECT {N} FROM {T} WHERE {C} = {cx.lit(v)} UNION "
                            f"SELECT {N} FROM {T} WHERE {X} > {cx.lit(hi)}")
            yield Candidate("group_where", f"For each {cw}, how many {many} have {_a(xw)} above {_num(lo)}?",
                            f"SELECT {C}, count(*) FROM {T} WHERE {X} > {cx.lit(lo)} GROUP BY {C}")
    for x in _cols(t, "num"):
        X, xw = x.name, x.words
        a = cx.mid(t, x)
        op, word = cx.pick([(">", "greater than"), ("<", "less than"), (">", "above"), ("<", "below")])
        yield Candidate("count_num", cx.pick([f"How many {many} have {_a(xw)} {word} {_num(a)}?",
                                              f"Count the {many} whose {xw} is {word} {_num(a)}."]),
                        f"SELECT count(*) FROM {T} WHERE {X} {op} {cx.lit(a)}")
        yield Candidate("filter_num", f"What are the {ns} of the {many} with {_a(xw)} {word} {_num(a)}?",
                        f"SELECT {N} FROM {T} WHERE {X} {op} {cx.lit(a)}")
        yield Candidate("agg", cx.pick([f"What is the average {xw} of all {many}?",
                                        f"Find the average {xw} of the {many}."]), f"SELECT avg({X}) FROM {T}")
        yield Candidate("agg", f"What are the largest and smallest {xw} among the {many}?",
                        f"SELECT max({X}), min({X}) FROM {T}")
        if x.additive:
            yield Candidate("agg", f"What is the total {xw} of all {many}?", f"SELECT sum({X}) FROM {T}")
        if cx.distinct(t, x):
            yield Candidate("order", cx.pick([f"List the {ns} of all {many} ordered by {xw} from highest to lowest.",
                                              f"Show the {ns} of the {many} sorted by {xw} in descending order."]),
                            f"SELECT {N} FROM {T} ORDER BY {X} DESC")
            yield Candidate("order", f"Show the {n.words} and {xw} of every {one}, sorted by {xw} in ascending order.",
                            f"SELECT {N}, {X} FROM {T} ORDER BY {X} ASC")
        top = f"SELECT {X} FROM {T} ORDER BY {X}"
        yield Candidate("superlative", cx.pick([f"Which {one} has the highest {xw}? Give its {n.words}.",
                                                f"What is the {n.words} of the {one} with the largest {xw}?"]),
                        f"SELECT {N} FROM {T} ORDER BY {X} DESC LIMIT 1", f"{top} DESC LIMIT 2", 1)
        yield Candidate("superlative", f"What is the {n.words} of the {one} with the lowest {xw}?",
                        f"SELECT {N} FROM {T} ORDER BY {X} ASC LIMIT 1", f"{top} ASC LIMIT 2", 1)
        k = cx.pick([2, 3, 5])
        desc = cx.rng.random() < 0.6
        yield Candidate("top_k", cx.pick([f"What are the {ns} of the {k} {many} with the "
                                          f"{'largest' if desc else 'smallest'} {xw}?",
                                          f"List the {ns} of the top {k} {many} by {'highest' if desc else 'lowest'} "
                                          f"{xw}."]),
                        f"SELECT {N} FROM {T} ORDER BY {X} {'DESC' if desc else 'ASC'} LIMIT {k}",
                        f"{top} {'DESC' if desc else 'ASC'} LIMIT {k + 1}", k)
        yield Candidate("above_avg", cx.pick([f"Which {many} have {_a(xw)} above the average of all {many}? "
                                              f"List their {ns}.",
                                              f"Find the {ns} of the {many} whose {xw} is higher than average."]),
                        f"SELECT {N} FROM {T} WHERE {X} > (SELECT avg({X}) FROM {T})")
        pair = sorted({cx.mid(t, x), cx.mid(t, x)})
        if len(pair) == 2:
            lo, hi = pair
            yield Candidate("between", f"Which {many} have {_a(xw)} between {_num(lo)} and {_num(hi)}? "
                                       f"Give their {ns}.",
                            f"SELECT {N} FROM {T} WHERE {X} BETWEEN {cx.lit(lo)} AND {cx.lit(hi)}")


def _join(cx: _Ctx, c: TableSpec, fk: Fk) -> Iterator[Candidate]:
    """Questions across one foreign key: children `c` and their parent table."""
    p = cx.db.table(fk.ref)
    pn, cn = p.name_col, c.name_col
    if pn is None:
        return
    P, PK, PN, pns = p.name, p.pk[0], pn.name, f"{pn.words}s"
    on = f"FROM {c.name} AS T1 JOIN {P} AS T2 ON T1.{fk.column} = T2.{PK}"
    single = sum(f.ref == p.name for f in c.fks) == 1  # one link to this parent: "by" phrase can be left out
    rel = "" if single else f" {fk.by} it"
    parents = [r[0] for r in cx.q(f"SELECT DISTINCT T2.{PN} {on} ORDER BY T2.{PN}")]
    v = cx.pick(parents)
    if cn is not None:
        yield Candidate("join_list", f"Show the {cn.words} of each {c.one} and the {pn.words} of the {p.one} "
                                     f"it is {fk.by}.", f"SELECT T1.{cn.name}, T2.{PN} {on}")
        yield Candidate("join_filter", cx.pick([f"What are the {cn.words}s of the {c.many} {fk.by} the {p.one} "
                                                f"{cx.say(p, v)}?",
                                                f"List the {cn.words}s of all {c.many} {fk.by} {cx.say(p, v)}."]),
                        f"SELECT T1.{cn.name} {on} WHERE T2.{PN} = {cx.lit(v)}")
        for x in _cols(p, "num"):
            a = cx.mid(p, x)
            yield Candidate("nested_in", f"What are the {cn.words}s of the {c.many} {fk.by} {p.many} whose "
                                         f"{x.words} is greater than {_num(a)}?",
                            f"SELECT {cn.name} FROM {c.name} WHERE {fk.column} IN "
                            f"(SELECT {PK} FROM {P} WHERE {x.name} > {cx.lit(a)})")
    yield Candidate("join_count", f"How many {c.many} {fk.by} the {p.one} {cx.say(p, v)} are there?",
                    f"SELECT count(*) {on} WHERE T2.{PN} = {cx.lit(v)}")
    yield Candidate("join_group", cx.pick([f"Count the {c.many} {fk.by} each {p.one}. Show the {p.one}'s "
                                           f"{pn.words} and the count.",
                                           f"For each {p.one}, show its {pn.words} and the number of {c.many} "
                                           f"{fk.by} it."]),
                    f"SELECT T2.{PN}, count(*) {on} GROUP BY T2.{PK}")
    yield Candidate("join_top", f"Which {p.one} has the most {c.many}{rel}? Give its {pn.words}.",
                    f"SELECT T2.{PN} {on} GROUP BY T2.{PK} ORDER BY count(*) DESC LIMIT 1",
                    f"SELECT count(*) {on} GROUP BY T2.{PK} ORDER BY count(*) DESC LIMIT 2", 1)
    yield Candidate("join_none", f"Which {p.many} have no {c.many}{rel.replace(' it', ' them')}? List their {pns}.",
                    f"SELECT {PN} FROM {P} WHERE {PK} NOT IN (SELECT {fk.column} FROM {c.name})")
    counts = sorted({r[0] for r in cx.q(f"SELECT count(*) {on} GROUP BY T2.{PK}")})
    if len(counts) > 1:
        k = cx.pick(counts[1:])
        yield Candidate("join_having", f"List the {pns} of {p.many} with at least {k} {c.many}"
                                       f"{rel.replace(' it', ' them')}.",
                        f"SELECT T2.{PN} {on} GROUP BY T2.{PK} HAVING count(*) >= {k}")
    for x in _cols(c, "num"):
        a = cx.mid(c, x)
        yield Candidate("join_group_avg", f"What is the average {x.words} of the {c.many} {fk.by} each {p.one}? "
                                          f"Show the {p.one}'s {pn.words} too.",
                        f"SELECT T2.{PN}, avg(T1.{x.name}) {on} GROUP BY T2.{PK}")
        yield Candidate("join_child_num", f"Which {p.many} have at least one {c.one} {fk.by} them with {_a(x.words)} "
                                          f"above {_num(a)}? List their {pns}.",
                        f"SELECT DISTINCT T2.{PN} {on} WHERE T1.{x.name} > {cx.lit(a)}")
        if x.additive:
            yield Candidate("join_sum", f"What is the total {x.words} of the {c.many} {fk.by} the {p.one} "
                                        f"{cx.say(p, v)}?",
                            f"SELECT sum(T1.{x.name}) {on} WHERE T2.{PN} = {cx.lit(v)}")
    for col in _cols(p, "cat"):
        w = cx.pick(cx.values(p, col))
        yield Candidate("join_parent_cat", f"Count the {c.many} {fk.by} {p.many} whose {col.words} is {w}.",
                        f"SELECT count(*) {on} WHERE T2.{col.name} = {cx.lit(w)}")


def _two_hop(cx: _Ctx, c: TableSpec, fk1: Fk) -> Iterator[Candidate]:
    """Children of children: songs on albums released by an artist (three tables)."""
    p = cx.db.table(fk1.ref)
    for fk2 in p.fks:
        g = cx.db.table(fk2.ref)
        if g.name_col is None:
            continue
        GN = g.name_col.name
        on = (f"FROM {c.name} AS T1 JOIN {p.name} AS T2 ON T1.{fk1.column} = T2.{p.pk[0]} "
              f"JOIN {g.name} AS T3 ON T2.{fk2.column} = T3.{g.pk[0]}")
        v = cx.pick([r[0] for r in cx.q(f"SELECT DISTINCT T3.{GN} {on} ORDER BY T3.{GN}")])
        path = f"{c.many} {fk1.by} {p.many} {fk2.by} the {g.one} {cx.say(g, v)}"
        if c.name_col is not None:
            yield Candidate("two_hop", f"What are the {c.name_col.words}s of the {path}?",
                            f"SELECT T1.{c.name_col.name} {on} WHERE T3.{GN} = {cx.lit(v)}")
        yield Candidate("two_hop_count", f"How many {path} are there?",
                        f"SELECT count(*) {on} WHERE T3.{GN} = {cx.lit(v)}")


def _bridge(cx: _Ctx, link: TableSpec) -> Iterator[Candidate]:
    """A table linking two others (students enrolled in courses): questions across all three."""
    fa, fb = link.fks[0], link.fks[1]
    a, b = cx.db.table(fa.ref), cx.db.table(fb.ref)
    an, bn, L = a.name_col, b.name_col, link.name
    if an is None or bn is None:
        return
    on = (f"FROM {a.name} AS T1 JOIN {L} AS T2 ON T1.{a.pk[0]} = T2.{fa.column} "
          f"JOIN {b.name} AS T3 ON T2.{fb.column} = T3.{b.pk[0]}")
    vb = cx.pick([r[0] for r in cx.q(f"SELECT DISTINCT T3.{bn.name} {on} ORDER BY 1")])
    va = cx.pick([r[0] for r in cx.q(f"SELECT DISTINCT T1.{an.name} {on} ORDER BY 1")])
    yield Candidate("bridge_filter", f"What are the {an.words}s of the {a.many} that {link.verb} the {b.one} "
                                     f"{cx.say(b, vb)}?",
                    f"SELECT DISTINCT T1.{an.name} {on} WHERE T3.{bn.name} = {cx.lit(vb)}")
    yield Candidate("bridge_filter", f"List the {bn.words}s of the {b.many} that the {a.one} {cx.say(a, va)} "
                                     f"{link.verb}.",
                    f"SELECT DISTINCT T3.{bn.name} {on} WHERE T1.{an.name} = {cx.lit(va)}")
    yield Candidate("bridge_top", f"Which {a.one} {link.verb} the largest number of different {b.many}? "
                                  f"Give the {an.words}.",
                    f"SELECT T1.{an.name} {on} GROUP BY T1.{a.pk[0]} ORDER BY count(DISTINCT T3.{b.pk[0]}) DESC "
                    f"LIMIT 1",
                    f"SELECT count(DISTINCT T3.{b.pk[0]}) {on} GROUP BY T1.{a.pk[0]} ORDER BY 1 DESC LIMIT 2", 1)
    yield Candidate("bridge_none", f"Which {a.many} never {link.verb} any {b.one}? List their {an.words}s.",
                    f"SELECT {an.name} FROM {a.name} WHERE {a.pk[0]} NOT IN (SELECT {fa.column} FROM {L})")
    for col in _cols(b, "cat"):
        w = cx.pick(cx.values(b, col))
        yield Candidate("bridge_count", f"How many {a.many} {link.verb} at least one {b.one} whose {col.words} "
                                        f"is {w}?",
                        f"SELECT count(DISTINCT T1.{fa.column}) FROM {L} AS T1 JOIN {b.name} AS T2 "
                        f"ON T1.{fb.column} = T2.{b.pk[0]} WHERE T2.{col.name} = {cx.lit(w)}")


def _keep(cx: _Ctx, cand: Candidate) -> bool:
    """Keep a candidate whose gold query returns a real answer and whose LIMIT cut has no tie."""
    rows = cx.q(cand.query)
    if not rows or rows == [(0,)] or all(v is None for v in rows[0]):
        return False
    if cand.check:
        vals = [r[0] for r in cx.q(cand.check)]
        if len(vals) > cand.k and vals[cand.k - 1] == vals[cand.k]:
            return False
    return True


def candidates(db: DemoDb, con: sqlite3.Connection, *, seed: int = 0) -> list[Candidate]:
    """Every kept candidate question for `db` (deduplicated by SQL), in a stable order."""
    cx = _Ctx(db, con, random.Random(f"demo-questions:{seed}:{db.db_id}"))
    raw: list[Candidate] = []
    for t in db.tables:
        raw += _single(cx, t)
        for fk in t.fks:
            raw += _join(cx, t, fk)
            raw += _two_hop(cx, t, fk)
        if t.verb:
            raw += _bridge(cx, t)
    seen: set[str] = set()
    kept = []
    for cand in raw:
        if cand.query not in seen and _keep(cx, cand):
            seen.add(cand.query)
            kept.append(cand)
    return kept


def select(cands: list[Candidate], target: int, *, seed: int, db_id: str) -> list[Candidate]:
    """`target` candidates, taken round-robin over families so every kind of question is represented."""
    rng = random.Random(f"demo-select:{seed}:{db_id}")
    by_family: dict[str, list[Candidate]] = defaultdict(list)
    for cand in cands:
        by_family[cand.family].append(cand)
    families = sorted(by_family)
    rng.shuffle(families)
    for fam in families:
        rng.shuffle(by_family[fam])
    chosen: list[Candidate] = []
    while len(chosen) < target and any(by_family.values()):
        for fam in families:
            if by_family[fam] and len(chosen) < target:
                chosen.append(by_family[fam].pop())
    rng.shuffle(chosen)
    return chosen
