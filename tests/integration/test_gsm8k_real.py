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
