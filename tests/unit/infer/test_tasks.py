"""Evaluation rows: the shared prompt builders, every dev question accounted for, k-shot MMLU prompts."""
from __future__ import annotations

from tradeoff_ray.data.schema import schema_text
from tradeoff_ray.infer.tasks import mmlu_rows, sql_rows
from tradeoff_ray.prompts import mmlu_prompt, prompt_hash, render_chat, sql_messages


def test_sql_rows_use_the_training_prompt_and_keep_missing_dbs(tiny_cfg, tiny_spider_data, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows, missing = sql_rows(tiny_cfg, tiny_spider_data, tok, label="baseline")
    assert len(rows) + len(missing) == len(tiny_spider_data.dev)
    assert [m.example_id for m in missing] == ["dev-0006"]
    assert missing[0].error == "missing_db" and missing[0].ex is None and missing[0].label == "baseline"
    first = tiny_spider_data.dev[0]
    expected = render_chat(tok, sql_messages(schema_text(tiny_spider_data, "singer", tiny_cfg.prompt),
                                             first.question, tiny_cfg.prompt))
    assert rows[0]["prompt"] == expected
    assert rows[0]["prompt"].startswith("<|im_start|>system") and rows[0]["prompt"].endswith("assistant\n")
    assert rows[0]["prompt_hash"] == prompt_hash(expected)
    assert rows[0]["db_path"].endswith("singer.sqlite") and rows[0]["gold_sql"] == first.query


def test_dev_limit_samples_the_questions(tiny_cfg, tiny_spider_data):
    tiny_cfg.data.dev_limit = 3
    rows, missing = sql_rows(tiny_cfg, tiny_spider_data, None, label="x")
    assert len(rows) + len(missing) == 3


def test_mmlu_rows_per_shot_count(tiny_cfg, tiny_mmlu_data):
    rows = mmlu_rows(tiny_cfg, tiny_mmlu_data, None)
    assert sorted({r["shots"] for r in rows}) == [0, 1]
    zero = [r for r in rows if r["shots"] == 0]
    one = [r for r in rows if r["shots"] == 1]
    assert len(zero) == len(one) == 4  # 2 per category x 2 categories
    q = tiny_mmlu_data.splits["test"]["philosophy"][0]
    by_id = {r["example_id"]: r for r in one}
    if q.example_id in by_id:
        assert by_id[q.example_id]["prompt"] == mmlu_prompt(q, tiny_mmlu_data.dev_exemplars("philosophy", 1))
    for r in one:
        assert r["prompt"].count("Answer:") == 2 and r["prompt"].endswith("Answer:")
        assert r["exemplars"] == 1
    for r in zero:
        assert r["prompt"].count("Answer:") == 1


def test_mmlu_chat_template_mode(tiny_cfg, tiny_mmlu_data, tiny_model_dir):
    from transformers import AutoTokenizer

    tiny_cfg.eval.mmlu_chat_template = True
    rows = mmlu_rows(tiny_cfg, tiny_mmlu_data, AutoTokenizer.from_pretrained(tiny_model_dir))
    assert all(r["prompt"].startswith("<|im_start|>user") and r["prompt"].endswith("Answer:") for r in rows)
