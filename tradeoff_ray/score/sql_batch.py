"""Score many (db, gold, prediction) records in parallel processes; one bad record never stops the rest.

Used by `tradeoff-ray score-sql` and `benchmarks/score_sql.py`. Records are grouped by database
and sent in chunks to worker processes, each holding one SqlScorer (open connections, gold cache).
Every record is scored under its own try/except; if a worker process dies anyway (a crash inside
SQLite, the OOM killer), its unfinished records are retried one per task in a fresh pool and a
record that kills a worker again is reported as `other_exec_error` ("worker crashed").
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tradeoff_ray.data.types import database_file
from tradeoff_ray.score.sql_exec import OTHER_EXEC_ERROR, STATEMENT_KEYWORDS
from tradeoff_ray.score.sql_score import DEFAULT_OPTIONS, MISSING_DB, SqlScorer, hardness_or_none
from tradeoff_ray.score.sql_text import leading_keyword
from tradeoff_ray.score_options import SqlScoringOptions

GOLD_KEYS = ("gold", "query", "ground_truth_sql", "gold_sql")
PRED_KEYS = ("pred", "predicted_sql", "prediction", "pred_sql")
GENERATION_KEYS = ("raw_generation", "generation")
MISSING_FIELDS = "missing_fields"
_QUERY_WORDS = ("select", "with", "values", "pragma")


@dataclass(frozen=True)
class SqlTask:
    """One record to score. `extract` = the text is a raw generation (run extract_sql on it)."""

    index: int
    db_id: str
    db_path: str | None
    gold_sql: str
    pred_text: str | None
    extract: bool


def db_file(spider_dir: Path, db_id: str) -> Path | None:
    """The database of `db_id` inside `<spider_dir>/database`; None when db_id is not a plain name."""
    return database_file(spider_dir / "database", db_id)


def looks_like_generation(text: str) -> bool:
    """True when `text` is not plain SQL (fences, chat tokens, or it does not open with an SQL keyword)."""
    keyword = leading_keyword(text)
    return "```" in text or "<|" in text or not (keyword in _QUERY_WORDS or keyword in STATEMENT_KEYWORDS)


def _first(record: dict, keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in record:
            return key, record[key]
    return None, None


def make_task(index: int, record: dict, spider_dir: Path) -> SqlTask | dict:
    """The task of one input record, or the result dict of a record that cannot be scored."""
    db_id = record.get("db_id")
    gold_key, gold = _first(record, GOLD_KEYS)
    pred_key, pred = _first(record, PRED_KEYS)
    gen_key, generation = _first(record, GENERATION_KEYS)
    missing = [name for name, ok in (("db_id", isinstance(db_id, str) and db_id),
                                     ("gold (" + "/".join(GOLD_KEYS) + ")", isinstance(gold, str) and gold.strip()),
                                     ("prediction (" + "/".join(PRED_KEYS + GENERATION_KEYS) + ")",
                                      pred_key is not None or gen_key is not None)) if not ok]
    if missing:
        return {"ex": None, "error": MISSING_FIELDS, "error_detail": "missing " + ", ".join(missing),
                "hardness": hardness_or_none(gold if isinstance(gold, str) else None), "scored_sql": None,
                "extracted": False, "exec_s": 0.0}
    path = db_file(spider_dir, db_id)
    if path is None:
        return {"ex": None, "error": MISSING_DB, "hardness": hardness_or_none(gold), "scored_sql": None,
                "error_detail": f"db_id {db_id!r} is not a plain database name (a folder under "
                                f"{spider_dir / 'database'}); paths are not followed",
                "extracted": False, "exec_s": 0.0}
    if isinstance(pred, str):
        text, extract = pred, looks_like_generation(pred)
    elif isinstance(generation, str):
        text, extract = generation, True
    else:
        text, extract = None, False
    return SqlTask(index, db_id, str(path) if path.is_file() else None, gold, text, extract)


_SCORER: SqlScorer | None = None


def _init_worker(options: SqlScoringOptions) -> None:
    global _SCORER
    _SCORER = SqlScorer(options)


def _score_one(scorer: SqlScorer, task: SqlTask) -> dict:
    try:
        r = scorer.score(task.db_id, task.db_path, task.gold_sql, task.pred_text, extract=task.extract)
    except Exception as err:  # noqa: BLE001 - one record's failure must not stop the others
        r = {"pred_sql": None, "ex": 0, "error": OTHER_EXEC_ERROR, "error_detail": f"scorer error: {err!r}",
             "exec_s": 0.0, "hardness": hardness_or_none(task.gold_sql)}
    if r["error"] == MISSING_DB and task.db_path is None:
        r["error_detail"] = f"no database file for db_id {task.db_id!r}"
    return {"ex": r["ex"], "error": r["error"], "error_detail": r["error_detail"], "hardness": r["hardness"],
            "scored_sql": r["pred_sql"], "extracted": task.extract, "exec_s": r["exec_s"]}


def _score_chunk(chunk: list[SqlTask]) -> list[tuple[int, dict]]:
    assert _SCORER is not None, "worker not initialised"
    return [(t.index, _score_one(_SCORER, t)) for t in chunk]


def _crashed(task: SqlTask) -> dict:
    return {"ex": 0, "error": OTHER_EXEC_ERROR, "error_detail": "worker crashed while scoring this record",
            "hardness": hardness_or_none(task.gold_sql), "scored_sql": None, "extracted": task.extract,
            "exec_s": 0.0}


def _pool_context() -> Any:
    """forkserver on Linux (no fork of a threaded parent; workers start with this module imported)."""
    if not sys.platform.startswith("linux"):
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else (os.cpu_count() or 1)


def score_tasks(tasks: Sequence[SqlTask], *, options: SqlScoringOptions = DEFAULT_OPTIONS, workers: int = 0,
                on_progress: Callable[[int], None] | None = None,
                into: dict[int, dict] | None = None) -> dict[int, dict]:
    """Result dict per task index. workers: 0 = one per core, 1 = in this process, N = N processes.

    Results are added to `into` (when given) as they finish, so a caller that catches
    KeyboardInterrupt still holds every record finished before it.
    """
    workers = resolve_workers(workers)
    ordered = sorted(tasks, key=lambda t: (t.db_id, t.gold_sql))  # same db and gold together: cache hits
    results: dict[int, dict] = {} if into is None else into
    tick = on_progress or (lambda _n: None)
    if workers == 1 or len(ordered) <= 1:
        scorer = SqlScorer(options)
        try:
            for t in ordered:
                results[t.index] = _score_one(scorer, t)
                tick(1)
        finally:
            scorer.close()
        return results
    size = max(1, min(64, math.ceil(len(ordered) / (workers * 4))))
    chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    context = _pool_context()
    suspects: list[SqlTask] = []
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context,
                             initializer=_init_worker, initargs=(options,)) as pool:
        try:
            futures = {pool.submit(_score_chunk, chunk): chunk for chunk in chunks}
        except (BrokenProcessPool, OSError):  # the pool broke while tasks were being queued
            futures = {}
            suspects = [t for t in ordered]
        try:
            for future in as_completed(futures):
                try:
                    done = future.result()
                except (BrokenProcessPool, OSError):
                    suspects.extend(futures[future])
                    continue
                for index, result in done:
                    results[index] = result
                tick(len(done))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    suspects = [t for t in suspects if t.index not in results]
    if suspects and not _pool_works(context, options):
        warnings.warn("worker processes cannot start here (e.g. a script read from stdin); scoring in this "
                      "process instead", RuntimeWarning, stacklevel=2)
        score_tasks(suspects, options=options, workers=1, on_progress=on_progress, into=results)
        return results
    if suspects:  # a worker died: rerun its unfinished records one at a time to find the culprit
        _run_isolated(suspects, options, context, results, tick)
    return results


def _ping() -> bool:
    return True


def _pool_works(context: Any, options: SqlScoringOptions) -> bool:
    """Whether a fresh worker process can start and answer at all."""
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_init_worker,
                                 initargs=(options,)) as pool:
            return pool.submit(_ping).result(timeout=120)
    except Exception:  # noqa: BLE001 - any failure means: do not use processes
        return False


def _run_isolated(tasks: list[SqlTask], options: SqlScoringOptions, context: Any, results: dict[int, dict],
                  tick: Callable[[int], None]) -> None:
    pool = None
    try:
        for task in tasks:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_init_worker,
                                           initargs=(options,))
            try:
                [(index, result)] = pool.submit(_score_chunk, [task]).result()
                results[index] = result
            except (BrokenProcessPool, OSError):
                results[task.index] = _crashed(task)
                pool.shutdown(wait=True, cancel_futures=True)
                pool = None
            tick(1)
    finally:
        if pool is not None:
            pool.shutdown()
