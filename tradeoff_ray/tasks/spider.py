"""Spider Text-to-SQL, scored by execution accuracy (EX): the target task fine-tuning aims at.

Items are dev questions (all, or the seeded `data.dev_limit` sample). A row's prompt is exactly what
training renders (`data.schema.schema_text` + `prompts.sql_messages` + `prompts.render_chat`); the
engine generates greedily to the end of the first statement. Scoring runs in CPU actors: it executes
predicted and gold SQL on read-only SQLite with the per-query timeout of `eval.sql_timeout_s`.

Questions whose database file is missing are never dropped: they become records with
`error='missing_db'` and `ex=None`, counted as unscorable with their reason.
"""
from __future__ import annotations

from typing import Any, Sequence

from tradeoff_ray.config import cache_root
from tradeoff_ray.records import SqlResult
from tradeoff_ray.tasks.base import GENERATE, TARGET, Measure, Row, Task, TaskData

# Generation stops at the end of the first statement; the end of the assistant turn (EOS / the
# template's end-of-turn token) stops it too, through the model's generation config.
SQL_STOP = [";"]
HARDNESS = ("easy", "medium", "hard", "extra")


def question_hardness(sql: str) -> str:
    """Official Spider hardness of a gold query; 'unknown' when it cannot be parsed (reported, not hidden)."""
    from tradeoff_ray.score.sql_score import hardness_or_none

    return hardness_or_none(sql) or "unknown"


class SpiderTask(Task):
    name = "spider"
    title = "Spider EX"
    record_type = SqlResult
    role = TARGET
    heavy_scoring = True
    checks = ("unscorable_examples",)
    report_sections = ("sql_errors",)

    def load(self, cfg: Any) -> TaskData:
        from tradeoff_ray.data.spider import load_spider, spider_files

        spider = load_spider(cfg.data, cache=cache_root(cfg.model))
        return TaskData(spider, spider.source, spider.is_demo, tuple(spider_files(spider)))

    def select(self, cfg: Any, data: TaskData) -> list[Any]:
        from tradeoff_ray.data.spider import sample_examples

        return sample_examples(data.data.dev, cfg.data.dev_limit, cfg.data.seed)

    def validation_items(self, cfg: Any, data: TaskData) -> list[Any]:
        from tradeoff_ray.data.validation import spider_validation

        return spider_validation(data.data, cfg.data, limit=cfg.tune.validation_limit)

    def manifest(self, cfg: Any, data: TaskData, items: Sequence[Any]) -> dict[str, Any]:
        from tradeoff_ray.data.spider import missing_databases

        return {**super().manifest(cfg, data, items), "dev_limit": cfg.data.dev_limit,
                "missing_dbs": missing_databases(data.data, "dev", examples=list(items))}

    def rows(self, cfg: Any, data: TaskData, items: Sequence[Any], tokenizer: Any) -> tuple[list[Row], list[Any]]:
        from tradeoff_ray.data.schema import schema_text
        from tradeoff_ray.prompts import prompt_hash, render_chat, sql_messages

        spider = data.data
        rows: list[Row] = []
        missing: list[SqlResult] = []
        for ex in items:
            if ex.db_id not in spider.db_paths:
                missing.append(SqlResult(
                    label="", example_id=ex.example_id, db_id=ex.db_id, question=ex.question, gold_sql=ex.query,
                    hardness=question_hardness(ex.query), prompt_hash="", raw_generation="", pred_sql=None, ex=None,
                    error="missing_db", error_detail=f"no database file for {ex.db_id} in {spider.source}"))
                continue
            messages = sql_messages(schema_text(spider, ex.db_id, cfg.prompt), ex.question, cfg.prompt)
            prompt = render_chat(tokenizer, messages, use_chat_template=cfg.prompt.use_chat_template)
            rows.append({"task": self.name, "kind": GENERATE, "example_id": ex.example_id, "prompt": prompt,
                         "prompt_hash": prompt_hash(prompt), "max_new_tokens": cfg.eval.max_new_tokens,
                         "stop": list(SQL_STOP), "db_id": ex.db_id, "db_path": str(spider.db_paths[ex.db_id]),
                         "question": ex.question, "gold_sql": ex.query})
        return rows, missing

    def gold_output(self, row: Row) -> str | None:
        return row["gold_sql"]

    def open_scorer(self, cfg: Any) -> Any:
        from tradeoff_ray.score.sql_score import SqlScorer

        return SqlScorer(cfg.eval.sql_scoring)

    def score_rows(self, scorer: Any, rows: list[Row]) -> list[Row]:
        """Rows plus pred_sql, ex (0/1, None = unscorable), error, error_detail, exec_s, hardness."""
        out = []
        for r in rows:
            if r.get("engine_error"):  # the engine could not run this prompt: wrong, with the reason kept
                out.append({**r, "pred_sql": None, "ex": 0, "error": "engine_error", "error_detail": r["engine_error"],
                            "exec_s": 0.0, "hardness": question_hardness(r["gold_sql"])})
                continue
            v = scorer.score(r["db_id"], r["db_path"], r["gold_sql"], r["raw_generation"], extract=True)
            out.append({**r, "pred_sql": v["pred_sql"], "ex": v["ex"], "error": v["error"],
                        "error_detail": v["error_detail"], "exec_s": float(v["exec_s"] or 0.0),
                        "hardness": v["hardness"] or "unknown"})
        return out

    def record(self, row: Row, label: str) -> SqlResult:
        return SqlResult(
            label=label, example_id=row["example_id"], db_id=row["db_id"], question=row["question"],
            gold_sql=row["gold_sql"], hardness=row["hardness"], prompt_hash=row["prompt_hash"],
            raw_generation=row.get("raw_generation") or "", pred_sql=row.get("pred_sql"), ex=row.get("ex"),
            error=row.get("error"), error_detail=row.get("error_detail"),
            latency_s=float(row.get("gen_s") or 0.0), exec_s=float(row.get("exec_s") or 0.0))

    def measures(self, records: Sequence[Any]) -> list[Measure]:
        return [Measure(self.name, self.name, self.title, self.role, group_by="hardness", groups=HARDNESS)]

    def outcome(self, record: Any, measure: Measure) -> int | None:
        return None if record.ex is None else int(record.ex)

    def group(self, record: Any, measure: Measure) -> str | None:
        return record.hardness or "unknown"

    def extra(self, records: Sequence[Any], measure: Measure) -> dict[str, Any]:
        from collections import Counter

        from tradeoff_ray.score.sql_score import GOLD_ERROR, MISSING_DB

        reasons = Counter((r.error if r.error in (MISSING_DB, GOLD_ERROR) else "other") for r in records if r.ex is None)
        errors = Counter(r.error or "none" for r in records if r.ex is not None)
        return {"unscorable": dict(reasons), "errors": dict(errors.most_common())}
