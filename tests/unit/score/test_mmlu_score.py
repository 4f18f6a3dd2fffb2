"""MMLU: letter from log-probs, letter from generated text (never a default), accuracy tables."""
from __future__ import annotations

import math

import pytest

from tradeoff_ray.records import MmluResult
from tradeoff_ray.score.mmlu_score import choose_letter, extract_letter, mmlu_accuracy

CHOICES = ["Paris", "London", "Rome", "Berlin"]


def test_choose_letter_argmax_ties_and_nan():
    assert choose_letter([-3.0, -1.0, -2.0, -5.0]) == "B"
    assert choose_letter([-1.0, -1.0, -2.0, -1.0]) == "A"  # ties go to the first
    assert choose_letter([math.nan, -4.0, math.nan, -2.0]) == "D"  # NaN never wins
    assert choose_letter([math.nan, -1e9, -math.inf, -1e10]) == "B"
    assert choose_letter([math.nan] * 4) is None
    with pytest.raises(ValueError):
        choose_letter([])


@pytest.mark.parametrize("text, letter", [
    ("A", "A"), ("(B)", "B"), ("B.", "B"), ("**D**", "D"), ("C) Rome", "C"), (" D\nBecause ...", "D"),
    ("The answer is C", "C"), ("Answer: D", "D"), ("Answer: C", "C"), ("**Answer:** B", "B"),
    ("The correct answer is: (A) Paris", "A"), ("I think the answer is B.", "B"), ("Option C is correct", "C"),
    ("B is correct", "B"), ("A good question. The answer is D.", "D"), ("Rome", "C"), ("The answer is Berlin.", "D"),
    ("Answer: B\n\nQuestion: What is 2+2?\nAnswer: A", "B"), ("C<|im_end|>", "C"),
])
def test_extract_letter(text, letter):
    assert extract_letter(text, CHOICES) == letter


@pytest.mark.parametrize("text", [
    "", None, "A good question.", "Answer:", "I am not sure.", "All of them", "answer: a bit of everything",
    "<|im_end|>", "Madrid",
])
def test_extract_letter_never_guesses(text):
    assert extract_letter(text, CHOICES) is None


def _rec(category, subject, correct, pred="A"):
    return MmluResult(label="baseline", example_id=f"{subject}-x", subject=subject, category=category, shots=0,
                      answer="A", pred=pred, correct=correct, prompt_hash="h")


def test_mmlu_accuracy_tables():
    records = ([_rec("STEM", "physics", 1)] * 3 + [_rec("STEM", "math", 0)] +
               [_rec("humanities", "law", 1)] + [_rec("humanities", "law", 0, pred=None)] * 3)
    acc = mmlu_accuracy(records)
    assert (acc["n"], acc["correct"], acc["no_answer"]) == (8, 4, 3)
    assert acc["micro"]["accuracy"] == pytest.approx(0.5)
    assert acc["per_category"]["STEM"]["accuracy"] == pytest.approx(0.75)
    assert acc["per_category"]["humanities"]["accuracy"] == pytest.approx(0.25)
    assert acc["macro"] == pytest.approx(0.5)
    assert acc["per_subject"]["math"]["n"] == 1
    low, high = acc["micro"]["low"], acc["micro"]["high"]
    assert 0 < low < 0.5 < high < 1
    assert any("no readable letter" in w for w in acc["warnings"])
    assert mmlu_accuracy([r.__dict__ for r in records])["micro"] == acc["micro"]  # dicts work too


def test_below_chance_category_warns():
    records = [_rec("STEM", "physics", int(i < 10)) for i in range(100)]  # 10% with n=100: CI high < 25%
    records += [_rec("other", "nutrition", int(i < 20)) for i in range(100)]  # 20%: CI includes 25%
    warnings = mmlu_accuracy(records)["warnings"]
    assert len(warnings) == 1 and "'STEM'" in warnings[0] and "below chance" in warnings[0]


def test_mixed_shots_are_refused():
    a = _rec("STEM", "physics", 1)
    b = MmluResult(**{**a.__dict__, "shots": 5})
    with pytest.raises(ValueError, match="shots"):
        mmlu_accuracy([a, b])


def test_cloze_choice_is_normalised_by_continuation_length():
    from tradeoff_ray.score.mmlu_score import choose_option

    conts = [" a cat", " the largest mammal of the ocean"]
    lps = [-6.0, -16.0]  # 1.0 per char vs 0.5 per char
    assert choose_option(lps, conts, normalize=False) == "A"
    assert choose_option(lps, conts, normalize=True) == "B"
