"""Scoring on the real Spider dev set (needs SPIDER_DIR): gold-vs-gold, hardness, extraction, the CLI."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from tradeoff_ray.cli import app
from tradeoff_ray.prompts import normalize_sql
from tradeoff_ray.records import read_jsonl
from tradeoff_ray.score.hardness import hardness
from tradeoff_ray.score.sql_batch import make_task, score_tasks
from tradeoff_ray.score.sql_extract import extract_sql
from tradeoff_ray.score_options import SqlScoringOptions

pytestmark = [pytest.mark.integration, pytest.mark.realdata]


@pytest.fixture(scope="module")
def dev(spider_dir) -> list[dict]:
    return json.loads((spider_dir / "dev.json").read_text())


@pytest.mark.parametrize("keep_distinct", [False, True])
def test_gold_vs_gold_is_100_percent_on_every_executable_question(spider_dir, dev, keep_distinct):
    tasks = [make_task(i, {"db_id": e["db_id"], "query": e["query"], "pred": e["query"]}, spider_dir)
             for i, e in enumerate(dev)]
    results = score_tasks(tasks, options=SqlScoringOptions(keep_distinct=keep_distinct), workers=2)
    outcomes = Counter(r["error"] for r in results.values())
    assert outcomes == {"ok": 972, "missing_db": 62}, outcomes
    assert all(results[i]["ex"] == 1 for i, e in enumerate(dev) if e["db_id"] != "wta_1")


# --- reference: the official hardness counts read from dev.json's parsed `sql` field ------------
def _n_agg(units) -> int:
    return sum(1 for u in units if u[0] != 0)  # as the official code: also true for NOT flags and 'and'/'or'


def _official_level(sql: dict) -> str:
    conds = sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]
    connectors = sql["from"]["conds"][1::2] + sql["where"][1::2] + sql["having"][1::2]
    c1 = sum(bool(sql[k]) for k in ("where", "groupBy", "orderBy")) + (sql["limit"] is not None)
    c1 += max(len(sql["from"]["table_units"]) - 1, 0) + connectors.count("or")
    c1 += sum(1 for c in conds if c[1] == 9)  # WHERE_OPS.index('like')
    c2 = sum(isinstance(c[3], dict) + isinstance(c[4], dict) for c in conds)
    c2 += sum(sql[k] is not None for k in ("intersect", "except", "union"))
    aggs = _n_agg(sql["select"][1]) + _n_agg(sql["where"][::2]) + _n_agg(sql["groupBy"]) + _n_agg(sql["having"])
    if sql["orderBy"]:
        aggs += _n_agg([u[1] for u in sql["orderBy"][1] if u[1]] + [u[2] for u in sql["orderBy"][1] if u[2]])
    others = (aggs > 1) + (len(sql["select"][1]) > 1) + (len(sql["where"]) > 1) + (len(sql["groupBy"]) > 1)
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if (others > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and others <= 2 and c2 == 0) or \
            (c1 <= 1 and others == 0 and c2 <= 1):
        return "hard"
    return "extra"


def test_hardness_distribution_matches_official(dev):
    levels = [hardness(e["query"]) for e in dev]
    assert Counter(levels) == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}
    disagreements = [(i, lvl, _official_level(e["sql"])) for i, (e, lvl) in enumerate(zip(dev, levels))
                     if lvl != _official_level(e["sql"])]
    assert disagreements == []


def test_extraction_returns_every_gold_query_unchanged(spider_dir, dev):
    queries = [e["query"] for e in dev]
    queries += [e["query"] for e in json.loads((spider_dir / "train_spider_min.json").read_text())]
    for q in queries:
        bare = q.strip().rstrip(";").strip()
        assert extract_sql(q) == bare
        assert extract_sql(normalize_sql(q)) == normalize_sql(q)
        assert extract_sql(f"```sql\n{q}\n```\nThis query answers the question.") == bare
        assert extract_sql(normalize_sql(q) + "<|im_end|>") == normalize_sql(q)


def test_score_sql_cli_end_to_end(tmp_path, spider_dir, dev):
    picks = [e for e in dev if e["db_id"] == "concert_singer"][:6] + [e for e in dev if e["db_id"] == "wta_1"][:1]
    records = [
        {"db_id": picks[0]["db_id"], "query": picks[0]["query"], "pred": picks[0]["query"]},
        {"db_id": picks[1]["db_id"], "query": picks[1]["query"],
         "prediction": f"Here is the query:\n```sql\n{picks[1]['query']}\n```\nIt answers the question."},
        {"db_id": picks[2]["db_id"], "query": picks[2]["query"], "pred": "SELECT * FROM stadium"},
        {"db_id": picks[3]["db_id"], "query": picks[3]["query"], "pred": "SELECT nosuchcol FROM singer"},
        {"db_id": picks[4]["db_id"], "query": picks[4]["query"], "pred": "I do not know."},
        {"db_id": picks[5]["db_id"], "query": picks[5]["query"], "pred": "DELETE FROM singer"},
        {"db_id": picks[6]["db_id"], "query": picks[6]["query"], "pred": picks[6]["query"]},
    ]
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(records))
    result = CliRunner().invoke(app, ["score-sql", "--spider-dir", str(spider_dir), "--predictions", str(preds),
                                      "--workers", "2"])
    assert result.exit_code == 0, result.output
    out = list(read_jsonl(tmp_path / "preds.scored.jsonl"))
    assert [(r["ex"], r["error"]) for r in out] == [
        (1, "ok"), (1, "ok"), (0, "wrong_result"), (0, "unknown_column"), (0, "extraction_failed"),
        (0, "other_exec_error"), (None, "missing_db")]
    assert [r["hardness"] for r in out] == [hardness(e["query"]) for e in picks]
    assert "1 of 7 records not scorable (missing_db: 1)" in result.output
