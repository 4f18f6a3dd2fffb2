"""Parallel scoring: results in input order, and a record that kills its worker does not stop the rest."""
from __future__ import annotations

import os

from tests.fixtures import make_singer_db
from tradeoff_ray.score.sql_batch import SqlTask, looks_like_generation, make_task, score_tasks

GOLD = "SELECT name FROM singer WHERE age = 25"


class _KillsWorker(str):
    """A prediction whose unpickling ends the worker process at once (stands in for a crash in SQLite)."""

    def __reduce__(self):
        return (os._exit, (3,))


def _task(i, path, pred):
    return SqlTask(i, "singer", str(path), GOLD, pred, False)


def test_worker_crash_is_isolated_to_its_record(tmp_path):
    path = make_singer_db(tmp_path / "singer.sqlite")
    tasks = [_task(i, path, GOLD if i % 2 else "SELECT name FROM singer") for i in range(12)]
    tasks[5] = _task(5, path, _KillsWorker(GOLD))
    results = score_tasks(tasks, workers=2)
    assert sorted(results) == list(range(12))
    assert results[5]["error"] == "other_exec_error" and "crashed" in results[5]["error_detail"]
    assert all(results[i]["ex"] == (1 if i % 2 else 0) for i in range(12) if i != 5)


def test_progress_counts_every_record(tmp_path):
    path = make_singer_db(tmp_path / "singer.sqlite")
    ticks = []
    score_tasks([_task(i, path, GOLD) for i in range(7)], workers=1, on_progress=ticks.append)
    assert sum(ticks) == 7


def test_make_task_fields_and_generation_detection(tmp_path):
    make_singer_db(tmp_path / "database" / "singer" / "singer.sqlite")
    task = make_task(0, {"db_id": "singer", "query": GOLD, "pred": "```sql\nSELECT 1\n```"}, tmp_path)
    assert isinstance(task, SqlTask) and task.extract and task.db_path.endswith("singer.sqlite")
    task = make_task(1, {"db_id": "other", "gold_sql": GOLD, "pred_sql": None, "raw_generation": "SQL: SELECT 1"},
                     tmp_path)
    assert task.db_path is None and task.extract and task.pred_text == "SQL: SELECT 1"
    bad = make_task(2, {"db_id": "singer", "pred": GOLD}, tmp_path)
    assert bad["error"] == "missing_fields" and "gold" in bad["error_detail"]
    assert not looks_like_generation("  select 1") and not looks_like_generation("DROP TABLE t")
    assert looks_like_generation("The query is SELECT 1") and looks_like_generation("SELECT 1<|im_end|>")
