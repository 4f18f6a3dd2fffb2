"""The evaluation stages without Ray: output schema, verdicts from known generations, timeouts, gold mode."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest

from tradeoff_ray.errors import UserError
from tradeoff_ray.infer.engine import Generation
from tests.unit.infer.helpers import task_rows, tiny_data
from tradeoff_ray.infer.pipeline import evaluate, evaluate_rows_local
from tradeoff_ray.infer.stages import score_rows
from tradeoff_ray.records import MmluResult, SqlResult, read_jsonl
from tradeoff_ray.score_options import SqlScoringOptions
from tradeoff_ray.tasks import get_task

SPIDER, MMLU = get_task("spider"), get_task("mmlu")


def _local(cfg, engine, rows, task):
    return evaluate_rows_local(cfg, label="t", engine=engine, tasks=[task], rows=rows)[task.name]

ENDLESS = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


class ScriptedEngine:
    """An `Engine` whose answers are known: SQL by question text, letter log-probs favouring one letter."""

    def __init__(self, answers: dict[str, str], favour: dict[str, str] | None = None):
        self.answers, self.favour = answers, favour or {}

    def generate(self, prompts, *, max_new_tokens, stop):
        out = []
        for p in prompts:
            text = next((a for q, a in self.answers.items() if q in p), "I do not know.")
            out.append(Generation(text=f"```sql\n{text}\n```", n_new_tokens=5, seconds=0.01))
        return out

    def loglikelihood(self, requests):
        out = []
        for ctx, cont in requests:
            letter = next((v for k, v in self.favour.items() if k in ctx), "A")
            out.append(-0.1 if cont.strip() == letter else -2.0)
        return out

    def describe(self):
        return "scripted"


def test_verdicts_follow_the_generations(tiny_cfg, tiny_spider_data):
    rows = task_rows("spider", tiny_cfg, tiny_spider_data)
    answers = {tiny_spider_data.dev[0].question: tiny_spider_data.dev[0].query,  # right
               tiny_spider_data.dev[1].question: "SELECT name FROM singer",  # wrong rows
               tiny_spider_data.dev[2].question: "SELECT avg(agee) FROM singer"}  # unknown column
    sql = _local(tiny_cfg, ScriptedEngine(answers), rows, SPIDER)
    by_id = {r.example_id: r for r in sql}
    assert (by_id["dev-0000"].ex, by_id["dev-0000"].error) == (1, "ok")
    assert (by_id["dev-0001"].ex, by_id["dev-0001"].error) == (0, "wrong_result")
    assert (by_id["dev-0002"].ex, by_id["dev-0002"].error) == (0, "unknown_column")
    assert (by_id["dev-0003"].ex, by_id["dev-0003"].error) == (0, "extraction_failed")
    assert by_id["dev-0000"].pred_sql == tiny_spider_data.dev[0].query
    assert all(isinstance(r, SqlResult) and r.hardness in {"easy", "medium", "hard", "extra"} for r in sql)


def test_mmlu_letter_is_the_argmax(tiny_cfg, tiny_mmlu_data):
    rows = task_rows("mmlu", tiny_cfg, tiny_mmlu_data)
    favour = {q.question: q.answer for qs in tiny_mmlu_data.splits["test"].values() for q in qs}
    right = _local(tiny_cfg, ScriptedEngine({}, favour), rows, MMLU)
    assert len(right) == len(rows) and all(r.correct == 1 for r in right)
    always_a = _local(tiny_cfg, ScriptedEngine({}), rows, MMLU)
    assert all(r.pred == "A" for r in always_a)
    assert sum(r.correct for r in always_a) == sum(r.answer == "A" for r in always_a)
    assert all(isinstance(r, MmluResult) and len(r.logprobs) == 4 for r in always_a)


def test_a_hanging_query_costs_one_timeout(tiny_cfg, tiny_spider_data):
    from tradeoff_ray.score.sql_score import SqlScorer

    rows = task_rows("spider", tiny_cfg, tiny_spider_data)
    rows = [{**r, "raw_generation": r["gold_sql"]} for r in rows]
    rows[2]["raw_generation"] = ENDLESS
    t0 = time.perf_counter()
    scored = score_rows(SPIDER, SqlScorer(SqlScoringOptions(timeout_s=1.0)), rows)
    elapsed = time.perf_counter() - t0
    assert [r["error"] for r in scored] == ["ok", "ok", "timeout", "ok", "ok", "ok"]
    assert elapsed < 1.0 + 2.0


def test_evaluate_writes_the_run_dir_layout(tiny_cfg, tiny_spider_data, tiny_mmlu_data, tmp_path):
    summary = evaluate(tiny_cfg, label="baseline", out_dir=tmp_path, data=tiny_data(tiny_spider_data, tiny_mmlu_data),
                       use_ray=False)
    target = tmp_path / "evals" / "baseline"
    sql = list(read_jsonl(target / "spider.jsonl"))
    assert len(sql) == len(tiny_spider_data.dev)  # the missing-db question is there, not dropped
    assert set(sql[0]) == {f.name for f in dataclasses.fields(SqlResult)}
    assert sum(r["error"] == "missing_db" and r["ex"] is None and r["label"] == "baseline" for r in sql) == 1
    mm = list(read_jsonl(target / "mmlu.jsonl"))
    assert len(mm) == 8 and sorted({r["shots"] for r in mm}) == [0, 1]
    assert set(mm[0]) == {f.name for f in dataclasses.fields(MmluResult)}
    assert all(r["pred"] in "ABCD" and len(r["logprobs"]) == 4 for r in mm)
    assert sorted(p.name for p in target.iterdir()) == ["mmlu.jsonl", "spider.jsonl", "summary.json"]
    saved = json.loads((target / "summary.json").read_text())
    spider = saved["tasks"]["spider"]["measures"]["spider"]
    assert saved["engine"] == "hf" and spider["n"] == 6 and spider["unscorable"] == {"missing_db": 1}
    mmlu = saved["tasks"]["mmlu"]["measures"]
    assert mmlu["mmlu_0shot"]["n"] == 4 and set(mmlu["mmlu_1shot"]["by_group"]) == {"STEM", "humanities"}
    assert summary["tasks"]["spider"]["measures"]["spider"]["n"] == 6
    assert saved["config_hash"] == tiny_cfg.section_hash("model", "data", "prompt", "eval")


def test_gold_mode_serves_the_references_through_the_scoring_path(tiny_cfg, tiny_spider_data, tmp_path,
                                                                    lora_adapter_dir):
    summary = evaluate(tiny_cfg, label="gold", out_dir=tmp_path, data=tiny_data(tiny_spider_data), use_ray=False)
    spider = summary["tasks"]["spider"]["measures"]["spider"]
    assert spider["accuracy_pct"] == 100.0 and spider["n"] == 6
    assert list(summary["tasks"]) == ["spider"] and summary["engine"] == "preset"  # MMLU has no reference output
    records = list(read_jsonl(tmp_path / "evals" / "gold" / "spider.jsonl"))
    assert all(r["raw_generation"] == r["gold_sql"] for r in records if r["error"] != "missing_db")
    with pytest.raises(UserError, match="no adapter"):
        evaluate(tiny_cfg, label="gold", out_dir=tmp_path, adapter_dir=lora_adapter_dir, use_ray=False)


class AnswerC:
    """Generates a chatty answer naming option C."""

    def generate(self, prompts, *, max_new_tokens, stop):
        return [Generation(text=" The answer is C.", n_new_tokens=5, seconds=0.0) for _ in prompts]

    def loglikelihood(self, requests):
        raise AssertionError("generative mode must not score log-likelihoods")

    def describe(self):
        return "answers C"


def test_generative_mmlu_reads_the_letter(tiny_cfg, tiny_mmlu_data):
    tiny_cfg.eval.mmlu_mode = "generative"
    rows = task_rows("mmlu", tiny_cfg, tiny_mmlu_data)
    results = _local(tiny_cfg, AnswerC(), rows, MMLU)
    assert {r.pred for r in results} == {"C"} and all(r.raw_generation == " The answer is C." for r in results)
    assert sum(r.correct for r in results) == sum(r.answer == "C" for r in results)


class ClozeEngine:
    """Log-likelihood = -len(continuation) (every character costs the same), except that the right option
    of each question costs a little less per character than the others."""

    def __init__(self, right: dict[str, str]):
        self.right = right

    def loglikelihood(self, requests):
        out = []
        for ctx, cont in requests:
            per_char = 0.5 if any(q in ctx and cont.strip() == a for q, a in self.right.items()) else 1.0
            out.append(-per_char * len(cont))
        return out

    def describe(self):
        return "cloze"


def test_cloze_scores_the_option_texts_normalised_by_length(tiny_cfg, tiny_mmlu_data):
    import dataclasses as dc

    from tradeoff_ray.data.types import MmluData

    cfg = tiny_cfg.model_copy(update={"eval": tiny_cfg.eval.model_copy(update={"mmlu_mode": "cloze"})})
    # the right options are the longest, so a raw sum of log-probs would never pick them
    splits = {"test": {s: [dc.replace(q, choices=tuple(c + (" extra words" * 5 if "ABCD"[j] == q.answer else "")
                                                       for j, c in enumerate(q.choices)))
                           for q in qs] for s, qs in tiny_mmlu_data.splits["test"].items()},
              "dev": tiny_mmlu_data.splits["dev"]}
    data = MmluData(splits=splits, subject_category=tiny_mmlu_data.subject_category)
    rows = task_rows("mmlu", cfg, data)
    assert all("\nA. " not in r["prompt"] and r["prompt"].endswith("Answer:") for r in rows)
    q0 = data.splits["test"]["philosophy"][0]
    row = next(r for r in rows if r["example_id"] == q0.example_id and r["shots"] == 0)
    assert row["continuations"] == [f" {c}" for c in q0.choices]
    right = {q.question: q.choices[q.answer_index] for qs in splits["test"].values() for q in qs}
    scored = _local(cfg, ClozeEngine(right), rows, MMLU)
    assert scored and all(r.correct == 1 for r in scored)
    # one-shot cloze exemplars answer with the option's text, never a letter
    one = next(r for r in rows if r["shots"] == 1)
    shot = data.dev_exemplars(one["subject"], 1)[0]
    assert f"Answer: {shot.choices[shot.answer_index]}\n" in one["prompt"]
