"""The built-in tasks' rows: the shared prompt builders, every item accounted for, k-shot prompts, GSM8K."""
from __future__ import annotations

import pytest

from tradeoff_ray.data.gsm8k import Gsm8kData, MathProblem
from tradeoff_ray.data.schema import schema_text
from tradeoff_ray.errors import UserError
from tradeoff_ray.prompts import GSM8K_STOP, mmlu_prompt, prompt_hash, render_chat, sql_messages
from tradeoff_ray.tasks import CHOICE, GENERATE, TaskData, configured_tasks, get_task


def _rows(name, cfg, data, tok, items=None):
    task = get_task(name)
    td = TaskData(data, "fixture")
    return task.rows(cfg, td, task.select(cfg, td) if items is None else items, tok)


def test_sql_rows_use_the_training_prompt_and_keep_missing_dbs(tiny_cfg, tiny_spider_data, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows, missing = _rows("spider", tiny_cfg, tiny_spider_data, tok)
    assert len(rows) + len(missing) == len(tiny_spider_data.dev)
    assert [m.example_id for m in missing] == ["dev-0006"]
    assert missing[0].error == "missing_db" and missing[0].ex is None
    first = tiny_spider_data.dev[0]
    expected = render_chat(tok, sql_messages(schema_text(tiny_spider_data, "singer", tiny_cfg.prompt),
                                             first.question, tiny_cfg.prompt))
    assert rows[0]["prompt"] == expected and rows[0]["kind"] == GENERATE and rows[0]["task"] == "spider"
    assert rows[0]["prompt"].startswith("<|im_start|>system") and rows[0]["prompt"].endswith("assistant\n")
    assert rows[0]["prompt_hash"] == prompt_hash(expected)
    assert rows[0]["db_path"].endswith("singer.sqlite") and rows[0]["gold_sql"] == first.query
    assert rows[0]["max_new_tokens"] == tiny_cfg.eval.max_new_tokens and rows[0]["stop"] == [";"]


def test_dev_limit_samples_the_questions(tiny_cfg, tiny_spider_data):
    tiny_cfg.data.dev_limit = 3
    rows, missing = _rows("spider", tiny_cfg, tiny_spider_data, None)
    assert len(rows) + len(missing) == 3


def test_mmlu_rows_per_shot_count(tiny_cfg, tiny_mmlu_data):
    rows, _ = _rows("mmlu", tiny_cfg, tiny_mmlu_data, None)
    assert sorted({r["shots"] for r in rows}) == [0, 1]
    zero = [r for r in rows if r["shots"] == 0]
    one = [r for r in rows if r["shots"] == 1]
    assert len(zero) == len(one) == 4  # 2 per category x 2 categories
    assert all(r["kind"] == CHOICE and r["continuations"] == [" A", " B", " C", " D"] for r in rows)
    q = tiny_mmlu_data.splits["test"]["philosophy"][0]
    by_id = {r["example_id"]: r for r in one}
    if q.example_id in by_id:
        assert by_id[q.example_id]["prompt"] == mmlu_prompt(q, tiny_mmlu_data.dev_exemplars("philosophy", 1))
    for r in one:
        assert r["prompt"].count("Answer:") == 2 and r["prompt"].endswith("Answer:")
        assert r["exemplars"] == 1
    for r in zero:
        assert r["prompt"].count("Answer:") == 1


def test_mmlu_chat_template_and_generative_modes(tiny_cfg, tiny_mmlu_data, tiny_model_dir):
    from transformers import AutoTokenizer

    tiny_cfg.eval.mmlu_chat_template = True
    rows, _ = _rows("mmlu", tiny_cfg, tiny_mmlu_data, AutoTokenizer.from_pretrained(tiny_model_dir))
    assert all(r["prompt"].startswith("<|im_start|>user") and r["prompt"].endswith("Answer:") for r in rows)
    tiny_cfg.eval.mmlu_mode = "generative"
    rows, _ = _rows("mmlu", tiny_cfg, tiny_mmlu_data, None)
    assert all(r["kind"] == GENERATE and r["max_new_tokens"] == 16 for r in rows)


def _gsm8k() -> Gsm8kData:
    train = [MathProblem(f"train-{i:04d}", "train", f"Train question {i}?", f"Step {i}.", str(i)) for i in range(3)]
    test = [MathProblem(f"test-{i:04d}", "test", f"How many {i}?", f"Work {i}.", str(10 * i)) for i in range(5)]
    return Gsm8kData(splits={"train": train, "test": test}, source="fixture")


def test_gsm8k_rows_shots_stop_and_budget(tiny_cfg, tiny_model_dir):
    from transformers import AutoTokenizer

    tiny_cfg.eval.gsm8k_shots = 2
    tiny_cfg.data.gsm8k_limit = 3
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows, unserved = _rows("gsm8k", tiny_cfg, _gsm8k(), tok)
    assert len(rows) == 3 and not unserved
    r = rows[0]
    assert r["kind"] == GENERATE and r["stop"] == GSM8K_STOP and r["max_new_tokens"] == tiny_cfg.eval.gsm8k_max_new_tokens
    assert r["prompt"].startswith("<|im_start|>system") and "Train question 0?" in r["prompt"]
    assert "#### 1" in r["prompt"] and "Train question 2?" not in r["prompt"]  # exactly 2 exemplars
    assert get_task("gsm8k").gold_output(r).endswith(f"#### {r['target']}")


def test_configured_tasks_defaults_and_errors(tiny_cfg):
    assert [t.name for t in configured_tasks(tiny_cfg)] == ["spider", "mmlu"]
    tiny_cfg.data.gsm8k_dir = "/somewhere"
    assert [t.name for t in configured_tasks(tiny_cfg)] == ["spider", "mmlu", "gsm8k"]
    tiny_cfg.eval.tasks = ["gsm8k", "spider"]
    assert [t.name for t in configured_tasks(tiny_cfg)] == ["spider", "gsm8k"]  # the target task first
    tiny_cfg.eval.tasks = ["spider", "bird"]
    with pytest.raises(UserError, match="unknown task 'bird'.*registered tasks"):
        configured_tasks(tiny_cfg)
    tiny_cfg.data.gsm8k_dir = None
    with pytest.raises(UserError, match="data.gsm8k_dir is not set"):
        get_task("gsm8k").load(tiny_cfg)


def test_mmlu_summary_micro_macro_categories_letters_and_unread_answers():
    from tradeoff_ray.records import MmluResult
    from tradeoff_ray.tasks.base import task_summary

    def rec(category, subject, correct, pred="A", shots=0):
        return MmluResult(label="baseline", example_id=f"{subject}-{correct}-{pred}", subject=subject,
                          category=category, shots=shots, answer="A", pred=pred, correct=correct, prompt_hash="h")

    records = ([rec("STEM", "physics", 1)] * 3 + [rec("STEM", "math", 0, "B")]
               + [rec("humanities", "law", 1)] + [rec("humanities", "law", 0, pred=None)] * 3
               + [rec("STEM", "physics", 1, shots=5)])
    s = task_summary(get_task("mmlu"), records)
    assert list(s) == ["mmlu_0shot", "mmlu_5shot"] and s["mmlu_5shot"]["n"] == 1
    zero = s["mmlu_0shot"]
    assert (zero["n"], zero["correct"], zero["no_answer"], zero["n_subjects"]) == (8, 4, 3, 3)
    assert zero["accuracy_pct"] == pytest.approx(50.0) and zero["ci_low_pct"] < 50.0 < zero["ci_high_pct"]
    assert zero["by_group"]["STEM"]["accuracy_pct"] == pytest.approx(75.0)
    assert zero["by_group"]["humanities"]["accuracy_pct"] == pytest.approx(25.0)
    assert list(zero["by_group"]) == ["STEM", "humanities"]  # the categories' fixed order
    assert zero["macro_accuracy_pct"] == pytest.approx(50.0)
    assert zero["pred_letters"] == {"A": 4, "B": 1, "C": 0, "D": 0, "none": 3}


def test_gsm8k_summary_reports_both_readings():
    from tradeoff_ray.records import Gsm8kResult
    from tradeoff_ray.tasks.base import task_summary

    rows = [{"example_id": f"t{i}", "prompt_hash": "h", "question": "q", "target": "1200", "solution": "s",
             "raw_generation": text, "gen_s": 0.1, "n_new_tokens": 9}
            for i, text in enumerate(["so $1,200.00 in all\n#### 1,200", "The answer is 1200 dollars, not 12",
                                      "It costs 1200.", "no idea"])]
    task = get_task("gsm8k")
    records = [task.record(r, "b") for r in task.score_rows(None, rows)]
    assert all(isinstance(r, Gsm8kResult) for r in records)
    s = task_summary(task, records)
    assert (s["gsm8k_strict"]["correct"], s["gsm8k_strict"]["no_answer"]) == (2, 2)
    assert (s["gsm8k_flexible"]["correct"], s["gsm8k_flexible"]["no_answer"]) == (2, 1)  # '12' is last in row 2
