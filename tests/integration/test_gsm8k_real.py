"""The real GSM8K copy (GSM8K_DIR): counts, and every gold solution scores right under both readings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradeoff_ray.data.gsm8k import load_gsm8k_dir
from tradeoff_ray.prompts import gsm8k_solution_text
from tradeoff_ray.score.gsm8k_score import score_generation

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def gsm8k():
    value = os.environ.get("GSM8K_DIR")
    if not value:
        pytest.skip("GSM8K_DIR not set (real GSM8K copy)")
    return load_gsm8k_dir(Path(value))


def test_counts_match_the_release(gsm8k):
    assert len(gsm8k.splits["test"]) == 1319 and len(gsm8k.splits["train"]) == 7473
    assert len({p.example_id for p in gsm8k.splits["test"]}) == 1319


def test_gold_solutions_score_right(gsm8k):
    for p in gsm8k.splits["test"] + gsm8k.splits["train"]:
        s = score_generation(gsm8k_solution_text(p.solution, p.target), p.target)
        assert s["correct_strict"] == 1 and s["correct_flexible"] == 1, (p.example_id, p.target, s)


def test_gold_check_through_the_evaluation_path(tmp_path):
    """`tradeoff-ray eval` with GSM8K as a task: the gold label serves the references through the preset
    engine and the task's scorer, in this process: 100 % under both readings on all 1,319 test problems."""
    value = os.environ.get("GSM8K_DIR")
    if not value:
        pytest.skip("GSM8K_DIR not set (real GSM8K copy)")
    from tradeoff_ray.config import load_config
    from tradeoff_ray.infer.pipeline import evaluate
    from tradeoff_ray.records import read_jsonl

    cfg = load_config(None, [f"data.gsm8k_dir={value}", "eval.tasks=[gsm8k]"])
    summary = evaluate(cfg, label="gold", out_dir=tmp_path, use_ray=False)
    measures = summary["tasks"]["gsm8k"]["measures"]
    assert {k: (m["n"], m["accuracy_pct"]) for k, m in measures.items()} == {
        "gsm8k_flexible": (1319, 100.0), "gsm8k_strict": (1319, 100.0)}
    assert len(list(read_jsonl(tmp_path / "evals" / "gold" / "gsm8k.jsonl"))) == 1319
