"""`tradeoff-ray score-sql` on a tiny Spider-layout directory made in code."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures import make_singer_db
from tradeoff_ray.cli import app
from tradeoff_ray.records import read_jsonl

GOLD = "SELECT name FROM singer WHERE age = 25"
LOOP = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"


@pytest.fixture()
def spider(tmp_path) -> Path:
    make_singer_db(tmp_path / "spider" / "database" / "singer" / "singer.sqlite")
    return tmp_path / "spider"


def _records():
    return [
        {"db_id": "singer", "query": GOLD, "pred": GOLD},
        {"db_id": "singer", "gold": GOLD, "prediction": f"Sure!\n```sql\n{GOLD};\n```\nThis lists them."},
        {"db_id": "singer", "ground_truth_sql": GOLD, "predicted_sql": "SELECT name FROM singer"},
        {"db_id": "singer", "gold_sql": GOLD, "pred": LOOP},
        {"db_id": "singer", "query": GOLD, "pred": "DROP TABLE singer"},
        {"db_id": "singer", "query": GOLD, "raw_generation": "I cannot answer that."},
        {"db_id": "nowhere", "query": GOLD, "pred": GOLD},
        {"db_id": "singer", "pred": GOLD},
        {"db_id": "singer", "query": "SELECT nope FROM singer", "pred": GOLD},
    ]


def _invoke(*args):
    return CliRunner().invoke(app, ["score-sql", *map(str, args)])


@pytest.mark.parametrize("workers", [1, 2])
def test_scores_every_record_and_survives_hostile_ones(tmp_path, spider, workers):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in _records()) + "\n")
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--timeout", 0.5, "--workers", workers)
    assert result.exit_code == 0, result.output
    out = list(read_jsonl(tmp_path / "preds.scored.jsonl"))
    assert [(r["ex"], r["error"]) for r in out] == [
        (1, "ok"), (1, "ok"), (0, "wrong_result"), (0, "timeout"), (0, "other_exec_error"),
        (0, "extraction_failed"), (None, "missing_db"), (None, "missing_fields"), (None, "gold_error")]
    assert out[1]["extracted"] and out[1]["scored_sql"] == GOLD and out[1]["prediction"].startswith("Sure!")
    assert not out[0]["extracted"]
    assert all(r["hardness"] == "easy" for r in out[:7]) and out[7]["hardness"] is None
    assert "3 of 9 records not scorable" in result.output
    assert "missing_db: 1" in result.output and "gold_error: 1" in result.output
    assert "easy" in result.output and "0.333" in result.output  # 2 of 6 scored correct


def test_json_list_input_and_out_path(tmp_path, spider):
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(_records()[:3]))
    out = tmp_path / "sub" / "scored.jsonl"
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--out", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert [r["ex"] for r in read_jsonl(out)] == [1, 1, 0]


def test_keep_distinct_flag(tmp_path, spider):
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"db_id": "singer", "query": "SELECT DISTINCT age FROM singer",
                                 "pred": "SELECT age FROM singer"}))
    assert _invoke("--spider-dir", spider, "--predictions", preds, "--workers", 1).exit_code == 0
    assert next(read_jsonl(tmp_path / "p.scored.jsonl"))["ex"] == 1
    assert _invoke("--spider-dir", spider, "--predictions", preds, "--workers", 1, "--keep-distinct",
                   "--force").exit_code == 0
    assert next(read_jsonl(tmp_path / "p.scored.jsonl"))["ex"] == 0


def test_bad_input_gives_one_clear_error(tmp_path, spider):
    preds = tmp_path / "bad.jsonl"
    preds.write_text(json.dumps(_records()[0]) + "\n{not json\n")
    result = _invoke("--spider-dir", spider, "--predictions", preds)
    assert result.exit_code == 2 and "line 2" in result.output
    result = _invoke("--spider-dir", spider, "--predictions", tmp_path / "missing.jsonl")
    assert result.exit_code == 2 and "not found" in result.output
    preds.write_text("[1, 2]")
    result = _invoke("--spider-dir", spider, "--predictions", preds)
    assert result.exit_code == 2 and "item 0" in result.output
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_records()[0]))
    result = _invoke("--spider-dir", tmp_path / "nospider", "--predictions", good)
    assert result.exit_code == 2 and "database/" in result.output
    assert not (tmp_path / "bad.scored.jsonl").exists()


def test_max_rows_flag_limits_the_rows_compared(tmp_path, spider):
    preds = tmp_path / "p.jsonl"
    everyone = "SELECT name FROM singer"
    preds.write_text(json.dumps({"db_id": "singer", "query": everyone, "pred": everyone}))
    assert _invoke("--spider-dir", spider, "--predictions", preds, "--workers", 1).exit_code == 0
    assert next(read_jsonl(tmp_path / "p.scored.jsonl"))["ex"] == 1
    assert _invoke("--spider-dir", spider, "--predictions", preds, "--workers", 1, "--max-rows", 2,
                   "--force").exit_code == 0
    assert next(read_jsonl(tmp_path / "p.scored.jsonl"))["error"] == "gold_error"  # 4 gold rows > 2
    result = _invoke("--spider-dir", spider, "--predictions", preds, "--max-rows", 0, "--force")
    assert result.exit_code == 2 and "--max-rows" in result.output


def test_flag_defaults_are_the_scoring_options_defaults():
    """The command line and the config score with the same defaults, both read from SqlScoringOptions."""
    import typer.main

    from tradeoff_ray.config import EvalConfig
    from tradeoff_ray.score_options import SqlScoringOptions

    command = typer.main.get_command(app).commands["score-sql"]
    defaults = {p.name: p.default for p in command.params}
    options = SqlScoringOptions()
    assert (defaults["timeout"], defaults["max_rows"], defaults["keep_distinct"]) == \
        (options.timeout_s, options.max_rows, options.keep_distinct)
    assert EvalConfig().sql_scoring == options
