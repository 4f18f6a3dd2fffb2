"""Headline numbers of one evaluated label, computed from its per-example results (pure, no torch).

EX is over the scorable questions (`ex` not None: the database exists and the gold query ran), as
Spider reports it; unscorable questions are counted with their reason, never folded into EX.
MMLU tables come from the scoring core (`score.mmlu_score.mmlu_accuracy`). Intervals are 95%
Wilson intervals (analyze.stats).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from tradeoff_ray.analyze.stats import wilson_interval
from tradeoff_ray.records import MmluResult, SqlResult

HARDNESS_ORDER = ("easy", "medium", "hard", "extra", "unknown")


def _rate(correct: int, n: int) -> dict[str, Any]:
    ci = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy": ci.estimate if n else None,
            "ci95": [ci.low, ci.high] if n else None}


def sql_summary(results: Sequence[SqlResult]) -> dict[str, Any]:
    """EX overall and by hardness (with counts and CIs), error classes, unscorable counts and why."""
    scored = [r for r in results if r.ex is not None]
    by_hardness = {}
    for level in HARDNESS_ORDER:
        rows = [r for r in scored if r.hardness == level]
        if rows or level != "unknown":
            by_hardness[level] = _rate(sum(r.ex for r in rows), len(rows))
    return {
        "questions": len(results),
        "scored": len(scored),
        "ex": _rate(sum(r.ex for r in scored), len(scored)),
        "by_hardness": by_hardness,
        "errors": dict(Counter(r.error or "none" for r in scored).most_common()),
        "unscorable": dict(Counter(r.error or "unknown" for r in results if r.ex is None).most_common()),
        "wrong_result_kinds": dict(Counter(r.error_detail or "?" for r in scored
                                           if r.error == "wrong_result").most_common()),
        "generation_s": sum(r.latency_s for r in results),
        "exec_s": sum(r.exec_s for r in results),
    }


def mmlu_summary(results: Sequence[MmluResult]) -> dict[str, Any]:
    """Per shot count: the scoring core's accuracy tables (micro, macro, per category / subject, warnings)."""
    from tradeoff_ray.score.mmlu_score import mmlu_accuracy

    out: dict[str, Any] = {}
    for shots in sorted({r.shots for r in results}):
        rows = [r for r in results if r.shots == shots]
        out[str(shots)] = {**mmlu_accuracy(rows), "fewer_exemplars": sum(1 for r in rows if "exemplars" in r.extra)}
    return out
