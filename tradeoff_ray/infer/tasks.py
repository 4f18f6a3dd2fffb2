"""Evaluation work items ("rows"): one dict per Spider dev question or MMLU question x shot count.

Pure functions over the data layer's records and the shared prompt builders — the prompt a row
carries is exactly the text training used (`data.schema.schema_text` + `prompts.sql_messages` +
`prompts.render_chat`), so nothing here formats a prompt of its own. Rows are plain dicts of
str/int/list values so they travel through Ray Data (Arrow) unchanged.

Spider questions whose database file is missing are not dropped: they come back as `SqlResult`s
with `error='missing_db'` and `ex=None`, so every dev question is accounted for in the output.
"""
from __future__ import annotations

from typing import Any, Sequence

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.data.types import McQuestion, MmluData, SpiderData, SqlExample
from tradeoff_ray.prompts import (
    MMLU_CONTINUATIONS,
    mmlu_cloze_continuations,
    mmlu_cloze_prompt,
    mmlu_chat_prompt,
    mmlu_prompt,
    prompt_hash,
    render_chat,
    sql_messages,
)
from tradeoff_ray.records import SqlResult

# Generation stops at the end of the first statement; the end of the assistant turn (EOS / the
# template's end-of-turn token) stops it too, through the model's generation config.
SQL_STOP = [";"]
# Generative MMLU needs only a letter (or a short phrase naming the option).
MMLU_GENERATIVE_MAX_NEW_TOKENS = 16

Row = dict[str, Any]


def question_hardness(sql: str) -> str:
    """Official Spider hardness of a gold query; 'unknown' when it cannot be parsed (reported, not hidden)."""
    from tradeoff_ray.score.sql_score import hardness_or_none

    return hardness_or_none(sql) or "unknown"


def select_dev(cfg: ExperimentConfig, spider: SpiderData) -> list[SqlExample]:
    """The dev questions a run scores: all of them, or the seeded `data.dev_limit` sample."""
    from tradeoff_ray.data.spider import sample_examples

    return sample_examples(spider.dev, cfg.data.dev_limit, cfg.data.seed)


def sql_rows(cfg: ExperimentConfig, spider: SpiderData, tokenizer: Any, *, label: str,
             examples: Sequence[SqlExample] | None = None) -> tuple[list[Row], list[SqlResult]]:
    """(rows to generate and score, results of questions that cannot be scored: missing databases).

    `tokenizer` renders the chat template; None renders the plain fallback (gold mode needs no model).
    """
    from tradeoff_ray.data.schema import schema_text

    examples = select_dev(cfg, spider) if examples is None else list(examples)
    rows: list[Row] = []
    missing: list[SqlResult] = []
    for ex in examples:
        if ex.db_id not in spider.db_paths:
            missing.append(SqlResult(
                label=label, example_id=ex.example_id, db_id=ex.db_id, question=ex.question, gold_sql=ex.query,
                hardness=question_hardness(ex.query), prompt_hash="", raw_generation="", pred_sql=None, ex=None,
                error="missing_db", error_detail=f"no database file for {ex.db_id} in {spider.source}"))
            continue
        messages = sql_messages(schema_text(spider, ex.db_id, cfg.prompt), ex.question, cfg.prompt)
        prompt = render_chat(tokenizer, messages, use_chat_template=cfg.prompt.use_chat_template)
        rows.append({
            "example_id": ex.example_id, "db_id": ex.db_id, "db_path": str(spider.db_paths[ex.db_id]),
            "question": ex.question, "gold_sql": ex.query, "prompt": prompt, "prompt_hash": prompt_hash(prompt),
        })
    return rows, missing


def mmlu_rows(cfg: ExperimentConfig, mmlu: MmluData, tokenizer: Any,
              questions: Sequence[McQuestion] | None = None) -> list[Row]:
    """One row per (question, shot count in `eval.mmlu_shots`), harness-format prompt (or chat-wrapped)."""
    from tradeoff_ray.data.mmlu import select_mmlu

    questions = select_mmlu(cfg.data, mmlu) if questions is None else list(questions)
    rows: list[Row] = []
    for shots in cfg.eval.mmlu_shots:
        for q in questions:
            exemplars = [e for e in mmlu.dev_exemplars(q.subject, shots) if e.example_id != q.example_id]
            continuations = MMLU_CONTINUATIONS
            if cfg.eval.mmlu_mode == "cloze":
                prompt, continuations = mmlu_cloze_prompt(q, exemplars), mmlu_cloze_continuations(q)
            elif cfg.eval.mmlu_chat_template:
                prompt = mmlu_chat_prompt(tokenizer, q, exemplars)
            else:
                prompt = mmlu_prompt(q, exemplars)
            rows.append({
                "example_id": q.example_id, "subject": q.subject, "category": q.category, "shots": int(shots),
                "exemplars": len(exemplars), "answer": q.answer, "choices": list(q.choices), "prompt": prompt,
                "prompt_hash": prompt_hash(prompt), "continuations": list(continuations),
                "normalize": cfg.eval.mmlu_mode == "cloze",
            })
    return rows


def row_continuations(row: Row) -> list[str]:
    """The continuations an MMLU row scores: ' A'..' D', or the options' texts in cloze mode."""
    return list(row.get("continuations") or MMLU_CONTINUATIONS)


def loglikelihood_requests(row: Row) -> list[tuple[str, str]]:
    """The four (context, continuation) pairs of an MMLU row: its prompt and each continuation."""
    return [(row["prompt"], c) for c in row_continuations(row)]


def by_prompt(rows: list[Row]) -> list[Row]:
    """Rows in prompt-text order, so each generation batch holds prompts that share a long prefix (same
    database schema, same MMLU subject and shots) — which the HF engine runs once per batch."""
    return sorted(rows, key=lambda r: r["prompt"])
