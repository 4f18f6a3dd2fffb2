"""MMLU scoring core: the predicted letter (log-likelihood or generated text) and accuracy tables.

Log-likelihood mode (default, as lm-evaluation-harness): the prediction is the option whose
continuation (" A" .. " D") has the highest log-probability. Generative mode reads the letter
from text and returns None (`no_answer`) rather than defaulting to a letter; a source study's
regex read "Answer: C" as "A" (the capital A of "Answer") and put its baseline below chance.

Accuracy is reported per subject, per category, macro (mean of the category accuracies, the
project's balanced view) and micro (over all questions), with 95% Wilson intervals. A category
whose whole interval lies below chance (upper bound < 25%) is flagged: a four-option model that
does worse than guessing usually means the answers were read wrongly, not that it knows less.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import is_dataclass
from typing import Any, Iterable, Sequence

from tradeoff_ray.analyze.stats import wilson_interval
from tradeoff_ray.data.types import LETTERS

CHANCE = 0.25
NO_ANSWER_WARN_FRACTION = 0.2  # warn when more than this share of answers could not be read

_END = re.compile(r"<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|</s>|<end_of_turn>|<\|im_start\|>")
_SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>")
_NEXT_QUESTION = re.compile(r"\n\s*(?:Question\s*\d*\s*:|Q\s*:|The following are multiple choice)", re.IGNORECASE)
_PUNCT = re.compile(r"[\s.,;:!?'\"*()\[\]`]+")


def choose_letter(logprobs: Sequence[float]) -> str | None:
    """Letter of the highest log-probability; ties go to the first; NaN never wins.

    None only when no score is a number (all NaN): there is then no prediction to make.
    """
    if not 1 <= len(logprobs) <= len(LETTERS):
        raise ValueError(f"expected 1..{len(LETTERS)} log-probabilities, got {len(logprobs)}")
    best, best_i = -math.inf, None
    for i, value in enumerate(logprobs):
        v = float(value)
        if math.isnan(v):
            continue
        if best_i is None or v > best:
            best, best_i = v, i
    return None if best_i is None else LETTERS[best_i]


def choose_option(logprobs: Sequence[float], continuations: Sequence[str], *, normalize: bool) -> str | None:
    """The predicted letter: argmax of the log-probs, or (cloze, `normalize`) of log-prob per character of
    each continuation, as lm-evaluation-harness's acc_norm does, so long options are not penalised."""
    if not normalize:
        return choose_letter(logprobs)
    return choose_letter([float(lp) / max(1, len(c)) for lp, c in zip(logprobs, continuations)])


def extract_letter(text: str | None, choices: Sequence[str]) -> str | None:
    """The option a generated answer names, or None.

    Accepted, in this order: an explicit statement ("The answer is C", "Answer: (D)",
    "correct option is B"), a reply that opens with the letter ("A", "(B)", "B.", "**D**",
    "C) text"), "option C" / "choice C" naming exactly one letter, and the text of exactly one
    option. Only upper-case letters count (the "A" of "Answer" is never read as a letter);
    the reply is cut at an end-of-turn marker or where the model starts a new question.
    """
    if not text:
        return None
    letters = LETTERS[:len(choices)] if choices else LETTERS
    span = "".join(letters)
    text = _SPECIAL.sub("", _END.split(text)[0])
    cut = _NEXT_QUESTION.search(text)
    if cut and cut.start() > 0:
        text = text[:cut.start()]
    text = text.strip()
    if not text:
        return None

    for explicit in re.finditer(
            rf"\b(?:answer|option|choice)\s*(?:is|would be|will be|should be|:)[\s:(\[*]*"
            rf"(?:(?:option|choice)\s*)?[\s(\[*]*([{span}])(?![A-Za-z])", text, re.IGNORECASE):
        if explicit.group(1).isupper():
            return explicit.group(1)

    opening = re.match(rf"[(\[*\s]*([{span}])(?:[)\].:,*]|\s*$|\s*\n|\s+(?=\S))", text)
    if opening:
        rest = text[opening.end():].lstrip(" *")
        letter = opening.group(1)
        own_text = _norm(str(choices[letters.index(letter)])) if choices else ""
        # "A good ..." opens with a word, not an option: a bare letter counts only when it is marked
        # (punctuation), alone, followed by "is/would/should", or followed by that option's own text.
        if (opening.group(0).rstrip().endswith((")", "]", ".", ":", ",", "*")) or not rest
                or "\n" in opening.group(0) or re.match(r"(?:is|would|should)\b", rest)
                or (own_text and _norm(rest).startswith(own_text))):
            return letter

    named = set(re.findall(rf"\b(?i:option|choice)\s+\(?([{span}])\b", text))
    if len(named) == 1:
        return named.pop()

    if choices:
        tail = re.split(r"(?i)\banswer\s*(?:is|:)", text)[-1]
        for candidate in (text, tail):
            c = _norm(candidate)
            matches = [letters[i] for i, ch in enumerate(choices) if _norm(str(ch)) and c == _norm(str(ch))]
            if len(matches) == 1:
                return matches[0]
    return None


def _norm(text: str) -> str:
    return _PUNCT.sub(" ", text.lower()).strip()


_FIELDS = ("label", "shots", "category", "subject", "correct", "pred")


def _record_dict(record: Any) -> dict:
    if is_dataclass(record):
        return {k: getattr(record, k, None) for k in _FIELDS}
    return record


def _cell(correct: int, n: int) -> dict[str, float | int]:
    ci = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy": ci.estimate, "low": ci.low, "high": ci.high}


def mmlu_accuracy(records: Iterable[Any]) -> dict[str, Any]:
    """Accuracy tables of MmluResult records (dataclasses or dicts) of one label and shot count.

    Returns {n, correct, micro: {...}, macro, per_category: {cat: {...}}, per_subject: {...},
    no_answer, warnings}; each {...} cell holds n, correct, accuracy and the Wilson 95% low/high.
    """
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_subject: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    shots, labels = set(), set()
    no_answer = 0
    for raw in records:
        r = _record_dict(raw)
        shots.add(r.get("shots"))
        labels.add(r.get("label"))
        ok = int(bool(r["correct"]))
        for table, key in ((by_cat, r["category"]), (by_subject, r["subject"])):
            table[key][0] += ok
            table[key][1] += 1
        no_answer += r.get("pred") is None
    if len(shots) > 1 or len(labels) > 1:
        raise ValueError(f"records mix labels {sorted(map(str, labels))} / shots {sorted(map(str, shots))}: "
                         "aggregate each (label, shots) separately")
    correct = sum(c for c, _ in by_cat.values())
    n = sum(m for _, m in by_cat.values())
    per_category = {cat: _cell(c, m) for cat, (c, m) in sorted(by_cat.items())}
    per_subject = {s: _cell(c, m) for s, (c, m) in sorted(by_subject.items())}
    macro = (sum(cell["accuracy"] for cell in per_category.values()) / len(per_category)
             if per_category else float("nan"))
    warnings = []
    for cat, cell in per_category.items():
        if cell["high"] < CHANCE:
            warnings.append(
                f"category {cat!r}: accuracy {cell['accuracy']:.1%} (95% CI {cell['low']:.1%}-{cell['high']:.1%}, "
                f"n={cell['n']}) is below chance ({CHANCE:.0%}); check answer extraction and prompt format")
    if n and no_answer / n > NO_ANSWER_WARN_FRACTION:
        warnings.append(f"{no_answer} of {n} answers ({no_answer / n:.0%}) had no readable letter (no_answer)")
    return {"n": n, "correct": correct, "micro": _cell(correct, n), "macro": macro, "per_category": per_category,
            "per_subject": per_subject, "no_answer": no_answer, "warnings": warnings}
