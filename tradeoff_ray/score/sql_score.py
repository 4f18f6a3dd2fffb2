"""Execution accuracy of one prediction, with its error class: the core the scorer actors wrap.

A verdict's `error` is one of the taxonomy classes (records.SqlResult.error):
  ok                EX = 1 (detail 'column_order_only' when only a column permutation matched)
  extraction_failed no SQL found in the generation (EX = 0)
  syntax_error / unknown_table / unknown_column / timeout / other_exec_error
                    the prediction failed to run (EX = 0; detail = SQLite's message)
  wrong_result      it ran, results differ (EX = 0; detail = row_order, distinct_only,
                    empty_vs_nonempty, different_columns or different_rows)
  gold_error        the gold query failed, timed out or exceeded max_rows: a data problem,
                    reported with EX = None and never scored
  missing_db        the database file does not exist (EX = None)

Both queries get the same preparation as in the official evaluator: first statement only,
'> =' style operators repaired, DISTINCT removed unless `keep_distinct` (sql_text.strip_distinct).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from tradeoff_ray.score.hardness import UnparseableSQL, hardness
from tradeoff_ray.score.sql_compare import DIFFERENT_ROWS, match_detail
from tradeoff_ray.score.sql_exec import (OTHER_EXEC_ERROR, ConnectionCache, ExecResult, MissingDatabase,
                                         ReadOnlyDatabase)
from tradeoff_ray.score.sql_extract import extract_sql
from tradeoff_ray.score.sql_text import (TextTooLong, first_statement, fix_spaced_operators, has_order_by,
                                         strip_distinct)
from tradeoff_ray.score_options import SqlScoringOptions

OK = "ok"
EXTRACTION_FAILED = "extraction_failed"
WRONG_RESULT = "wrong_result"
GOLD_ERROR = "gold_error"
MISSING_DB = "missing_db"
DEFAULT_OPTIONS = SqlScoringOptions()


@dataclass(frozen=True)
class SqlVerdict:
    """EX of one prediction (None = not scorable), its taxonomy class and detail."""

    ex: int | None
    error: str | None
    detail: str | None
    pred_exec_s: float


@dataclass(frozen=True)
class GoldResult:
    """The gold query's result and whether row order matters when comparing with it."""

    result: ExecResult
    order_matters: bool


def prepare_query(sql: str, *, keep_distinct: bool = False) -> str:
    """The text actually executed for a gold or predicted query (see module docstring)."""
    sql = fix_spaced_operators(first_statement(sql))
    return sql if keep_distinct else strip_distinct(sql)


def run_gold(db: ReadOnlyDatabase, gold_sql: str, *, options: SqlScoringOptions = DEFAULT_OPTIONS) -> GoldResult:
    try:
        prepared = prepare_query(gold_sql, keep_distinct=options.keep_distinct)
    except TextTooLong as err:
        return GoldResult(ExecResult(None, OTHER_EXEC_ERROR, str(err), False, 0.0), False)
    result = db.execute(prepared, timeout_s=options.timeout_s, max_rows=options.max_rows)
    return GoldResult(result, has_order_by(gold_sql))


def judge(db: ReadOnlyDatabase, gold: GoldResult, pred_sql: str | None, *,
          options: SqlScoringOptions = DEFAULT_OPTIONS) -> SqlVerdict:
    """Verdict of `pred_sql` against an already executed gold result."""
    g = gold.result
    if g.error is not None:
        return SqlVerdict(None, GOLD_ERROR, f"{g.error}: {g.message}", 0.0)
    if g.truncated:
        return SqlVerdict(None, GOLD_ERROR, f"gold result has more than max_rows={options.max_rows} rows; raise max_rows",
                          0.0)
    if pred_sql is None or not pred_sql.strip():
        return SqlVerdict(0, EXTRACTION_FAILED, None, 0.0)
    try:
        prepared = prepare_query(pred_sql, keep_distinct=options.keep_distinct)
    except TextTooLong as err:
        return SqlVerdict(0, OTHER_EXEC_ERROR, str(err), 0.0)
    p = db.execute(prepared, timeout_s=options.timeout_s, max_rows=options.max_rows)
    if p.error is not None:
        return SqlVerdict(0, p.error, p.message, p.elapsed_s)
    if p.truncated:  # more rows than max_rows >= the gold's row count
        return SqlVerdict(0, WRONG_RESULT, DIFFERENT_ROWS, p.elapsed_s)
    match, detail = match_detail(g.rows, p.rows, order_matters=gold.order_matters)
    return SqlVerdict(int(match), OK if match else WRONG_RESULT, detail, p.elapsed_s)


def score_prediction(db: ReadOnlyDatabase | str | Path, gold_sql: str, pred_sql: str | None, *,
                     options: SqlScoringOptions = DEFAULT_OPTIONS) -> SqlVerdict:
    """Execution accuracy of `pred_sql` (None = extraction failed) against `gold_sql` on `db`."""
    if isinstance(db, ReadOnlyDatabase):
        return _score_open(db, gold_sql, pred_sql, options)
    try:
        opened = ReadOnlyDatabase(db)
    except MissingDatabase as err:
        return SqlVerdict(None, MISSING_DB, str(err), 0.0)
    with opened:
        return _score_open(opened, gold_sql, pred_sql, options)


def _score_open(db: ReadOnlyDatabase, gold_sql: str, pred_sql: str | None, options: SqlScoringOptions) -> SqlVerdict:
    gold = run_gold(db, gold_sql, options=options)
    return judge(db, gold, pred_sql, options=options)


def hardness_or_none(sql: str | None) -> str | None:
    """Hardness of a gold query, None when it is missing, unparseable or nested too deeply."""
    if not sql:
        return None
    try:
        return hardness(sql)
    except UnparseableSQL:
        return None


class SqlScorer:
    """Scores many predictions: keeps databases open and gold results cached (gold repeats per label).

    Not thread-safe; one per process or Ray actor (the actor is a thin wrapper over `score`).
    """

    def __init__(self, options: SqlScoringOptions = DEFAULT_OPTIONS, *, max_open_dbs: int = 32,
                 max_gold_cached: int = 8192) -> None:
        self.options = options
        self._connections = ConnectionCache(max_open_dbs)
        self._gold: OrderedDict[tuple[str, str], GoldResult] = OrderedDict()
        self._max_gold = max_gold_cached

    def gold(self, db: ReadOnlyDatabase, gold_sql: str) -> GoldResult:
        key = (str(db.path), gold_sql)
        cached = self._gold.get(key)
        if cached is not None:
            self._gold.move_to_end(key)
            return cached
        result = run_gold(db, gold_sql, options=self.options)
        self._gold[key] = result
        if len(self._gold) > self._max_gold:
            self._gold.popitem(last=False)
        return result

    def verdict(self, db_path: str | Path | None, gold_sql: str, pred_sql: str | None) -> SqlVerdict:
        if db_path is None:
            return SqlVerdict(None, MISSING_DB, "no database file for this db_id", 0.0)
        try:
            db = self._connections.get(db_path)
        except MissingDatabase as err:
            return SqlVerdict(None, MISSING_DB, str(err), 0.0)
        return judge(db, self.gold(db, gold_sql), pred_sql, options=self.options)

    def score(self, db_id: str, db_path: str | Path | None, gold_sql: str, generation_or_pred: str | None, *,
              extract: bool) -> dict:
        """One scored record: db_id, pred_sql, ex, error, error_detail, exec_s, hardness.

        `extract=True` treats the text as a raw generation (extract_sql); False as the SQL itself.
        """
        too_long = None
        try:
            pred_sql = extract_sql(generation_or_pred) if extract else generation_or_pred
        except TextTooLong as err:
            pred_sql, too_long = None, str(err)
        v = self.verdict(db_path, gold_sql, pred_sql)
        if too_long and v.error == EXTRACTION_FAILED:
            v = SqlVerdict(v.ex, v.error, too_long, v.pred_exec_s)
        return {"db_id": db_id, "pred_sql": pred_sql, "ex": v.ex, "error": v.error, "error_detail": v.detail,
                "exec_s": round(v.pred_exec_s, 6), "hardness": hardness_or_none(gold_sql)}

    def close(self) -> None:
        self._connections.close()
        self._gold.clear()
