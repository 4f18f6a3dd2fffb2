"""GSM8K answers: strict ('#### N' / 'The answer is N') and flexible (last number) readings."""
from __future__ import annotations

import time

import pytest

from tradeoff_ray.score.gsm8k_score import extract_flexible, extract_strict, normalize_number, score_generation


@pytest.mark.parametrize("generation,target,strict,flexible", [
    ("She pays 3 * 400 = 1200 dollars.\n#### 1200", "1200", 1, 1),
    ("The total is $1,200.00.\n#### $1,200.00", "1200", 1, 1),          # '$', commas, trailing zeros
    ("It drops by 3 degrees.\nThe answer is -3.", "-3", 1, 1),           # negative, trailing period
    ("The final answer is 3/4", "3", 0, 0),                              # a fraction is not its numerator
    ("Half of 1.5 is 0.75, i.e. 3/4.\n#### 3/4", "0.75", 1, 1),          # ... and equals its decimal
    ("#### 42\nI used 3 steps to get there.", "42", 1, 0),               # a number after the answer
    ("So the cost is 18 dollars.", "18", 0, 1),                          # right, without the marker
    ("I am not sure.", "7", 0, 0),
    ("", "7", 0, 0),
])
def test_strict_and_flexible_readings(generation, target, strict, flexible):
    s = score_generation(generation, target)
    assert (s["correct_strict"], s["correct_flexible"]) == (strict, flexible), s


def test_extraction_reads_the_number_not_its_dressing():
    assert normalize_number("$1,234.") == "1234" and normalize_number("abc") is None
    assert extract_strict("blah\n#### 1,000,000") == "1000000"
    assert extract_strict("no marker 12") is None and extract_flexible("no marker 12") == "12"
    assert extract_flexible("a 5 b 6.5 c") == "6.5"


def test_long_generations_are_scanned_in_linear_time():
    text = "1 " * 200_000 + "#### 5"
    t = time.perf_counter()
    score_generation(text, "5")
    assert time.perf_counter() - t < 2.0
