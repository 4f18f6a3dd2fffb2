"""Prompt text is part of the measurement: its exact format is pinned here."""
from tradeoff_ray.config import PromptConfig
from tradeoff_ray.data.types import McQuestion
from tradeoff_ray.prompts import (MMLU_CONTINUATIONS, mmlu_prompt, normalize_sql, render_chat, sql_messages,
                                  sql_training_record)


def _q(i: int, answer: str = "B") -> McQuestion:
    return McQuestion(example_id=f"astronomy/test/{i}", subject="astronomy", category="STEM", split="test",
                      index=i, question=f" Question {i}? ", choices=("w", "x", "y", "z"), answer=answer)


def test_mmlu_prompt_is_harness_format() -> None:
    text = mmlu_prompt(_q(9), [_q(1, "A"), _q(2, "D")])
    assert text == (
        "The following are multiple choice questions (with answers) about astronomy.\n\n"
        "Question 1?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\n"
        "Question 2?\nA. w\nB. x\nC. y\nD. z\nAnswer: D\n\n"
        "Question 9?\nA. w\nB. x\nC. y\nD. z\nAnswer:"
    )
    assert MMLU_CONTINUATIONS == (" A", " B", " C", " D")


def test_zero_shot_has_no_exemplar() -> None:
    assert mmlu_prompt(_q(3), []).count("Answer:") == 1


def test_normalize_sql_keeps_literals() -> None:
    assert normalize_sql("SELECT  name FROM t WHERE x = 'a  b'  ;\n") == "SELECT name FROM t WHERE x = 'a  b'"


def test_training_record_prompt_equals_eval_messages(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    cfg = PromptConfig()
    rec = sql_training_record("CREATE TABLE t (a INT);", "How many?", "SELECT count(*) FROM t", cfg)
    msgs = sql_messages("CREATE TABLE t (a INT);", "How many?", cfg)
    assert rec["prompt"] == msgs
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = render_chat(tok, msgs)
    assert text.endswith("<|im_start|>assistant\n") and "How many?" in text
    assert rec["completion"] == [{"role": "assistant", "content": "SELECT count(*) FROM t"}]
