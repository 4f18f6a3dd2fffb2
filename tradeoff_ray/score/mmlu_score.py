"""MMLU scoring core: the predicted letter, from log-likelihoods or from generated text.

Log-likelihood mode (default, as lm-evaluation-harness): the prediction is the option whose
continuation (" A" .. " D") has the highest log-probability. Generative mode reads the letter
from text and returns None (`no_answer`) rather than defaulting to a letter; a source study's
regex read "Answer: C" as "A" (the capital A of "Answer") and put its baseline below chance.

Accuracy tables come from the task's summary (`tasks.mmlu`, `tasks.base.measure_summary`), like every
other benchmark's.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

from tradeoff_ray.data.types import LETTERS

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

