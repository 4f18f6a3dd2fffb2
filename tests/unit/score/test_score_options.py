"""SqlScoringOptions: one set of SQL scoring limits, shared by the config, the CLI and the scorer."""
from __future__ import annotations

import pickle

import pytest

from tests.fixtures import make_singer_db
from tradeoff_ray.config import load_config
from tradeoff_ray.score.sql_score import SqlScorer
from tradeoff_ray.score_options import SqlScoringOptions


def test_config_builds_the_options_from_its_eval_fields():
    cfg = load_config(None, ["eval.sql_timeout_s=2.5", "eval.max_rows=7", "eval.keep_distinct=true"])
    assert cfg.eval.sql_scoring == SqlScoringOptions(timeout_s=2.5, max_rows=7, keep_distinct=True)


@pytest.mark.parametrize("bad", [{"timeout_s": 0}, {"timeout_s": float("nan")}, {"max_rows": 0}, {"max_rows": 1.5}])
def test_out_of_range_options_name_the_field(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SqlScoringOptions(**bad)


def test_scorer_uses_the_options_it_is_given(tmp_path):
    db = make_singer_db(tmp_path / "singer.sqlite")
    gold, pred = "SELECT DISTINCT age FROM singer", "SELECT age FROM singer"
    assert SqlScorer().verdict(db, gold, pred).ex == 1  # DISTINCT dropped by default
    assert SqlScorer(SqlScoringOptions(keep_distinct=True)).verdict(db, gold, pred).ex == 0
    assert SqlScorer(SqlScoringOptions(max_rows=2)).verdict(db, gold, pred).error == "gold_error"


def test_options_pickle_for_worker_processes():
    options = SqlScoringOptions(timeout_s=1.0, max_rows=3)
    assert pickle.loads(pickle.dumps(options)) == options
