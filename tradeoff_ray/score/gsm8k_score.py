"""GSM8K answer extraction and scoring, with lm-evaluation-harness's two readings of a generation.

strict: the number after the first '#### ' (the format the exemplars teach; harness `gsm8k`), or,
        with no '####', after the last 'The (final) answer is' (harness `gsm8k_cot`) — a solution may
        say "the final answer is 15 gallons * 8 ..." before it ends.
flexible: the last number anywhere in the generation (harness `flexible-extract`), for models
        that answer correctly without the marker.
Both are reported; neither is tuned to a model. As in the harness, commas, '$' and a trailing '.'
are ignored. One deliberate difference: answers are compared as exact rational numbers, so '1200.00'
equals the gold '1200' (the harness compares strings and would count it wrong), and a fraction '3/4'
is read whole (never as the 3 or the 4 in it). Pure Python, no torch.
"""
from __future__ import annotations

import re
from fractions import Fraction

MAX_SCAN_CHARS = 20_000  # a generation is at most a few hundred tokens; longer text is cut, linearly

_NUMBER = r"-?\$?\s?(?:\d[\d,]*(?:\.\d+)?(?:/[1-9]\d*)?|\.\d+)"
_HASHES = re.compile(r"####[:\s]*(" + _NUMBER + r")")
_ANSWER_IS = re.compile(r"the (?:final )?answer is[:\s]*(" + _NUMBER + r")", re.IGNORECASE)
_ANY = re.compile(_NUMBER)


def normalize_number(text: str | None) -> str | None:
    """'$1,200.00' -> '1200.00'; '-3.' -> '-3'; '3/4' stays; None when nothing numeric is left."""
    if text is None:
        return None
    out = text.replace(",", "").replace("$", "").replace(" ", "").strip().rstrip(".")
    return out if re.fullmatch(r"-?(?:\d+(?:\.\d+)?(?:/[1-9]\d*)?|\.\d+)", out) else None


def extract_strict(generation: str | None) -> str | None:
    text = (generation or "")[:MAX_SCAN_CHARS]
    m = _HASHES.search(text)
    if m:
        return normalize_number(m.group(1))
    found = _ANSWER_IS.findall(text)
    return normalize_number(found[-1]) if found else None


def extract_flexible(generation: str | None) -> str | None:
    found = _ANY.findall((generation or "")[:MAX_SCAN_CHARS])
    for raw in reversed(found):
        value = normalize_number(raw)
        if value is not None:
            return value
    return None


def same_number(pred: str | None, gold: str) -> bool:
    """Exact numeric equality ('1200.00' == '1200', '3/4' == '0.75'); False when either is missing."""
    gold = normalize_number(gold)
    if pred is None or gold is None:
        return False
    return Fraction(pred) == Fraction(gold)


def score_generation(generation: str | None, target: str) -> dict[str, object]:
    """{'pred_strict', 'correct_strict', 'pred_flexible', 'correct_flexible'} for one generation."""
    strict, flexible = extract_strict(generation), extract_flexible(generation)
    return {"pred_strict": strict, "correct_strict": int(same_number(strict, target)),
            "pred_flexible": flexible, "correct_flexible": int(same_number(flexible, target))}
