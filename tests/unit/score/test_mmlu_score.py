"""MMLU: letter from log-probs, letter from generated text (never a default), accuracy tables."""
from __future__ import annotations

import math

import pytest

from tradeoff_ray.score.mmlu_score import choose_letter, extract_letter

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


def test_cloze_choice_is_normalised_by_continuation_length():
    from tradeoff_ray.score.mmlu_score import choose_option

    conts = [" a cat", " the largest mammal of the ocean"]
    lps = [-6.0, -16.0]  # 1.0 per char vs 0.5 per char
    assert choose_option(lps, conts, normalize=False) == "A"
    assert choose_option(lps, conts, normalize=True) == "B"
