"""The trade-off numbers: accuracy per label, and each model against the baseline on the same examples.

Per label: Spider EX overall and by hardness over the *scorable* examples (`ex` not None), MMLU
accuracy overall (micro: every question counts once), macro over categories, and per category, for
every shot count, each with a 95% Wilson interval and its counts.

Per compared label vs the baseline: Δ in percentage points and relative %, where Δ is *exactly* the
difference of the two accuracies reported for the labels (so tables can be checked by subtraction);
the 95% paired-bootstrap interval of Δ and McNemar's exact p-value use only the examples scored on
both sides (`n_paired`; equal to both n's in a normal run, and `paired_delta_pp` is Δ on them).
All percentages are stored unrounded; rounding happens only when a table is displayed.
"""
from __future__ import annotations

import math
import zlib
from collections import Counter
from typing import Any, Iterable

from tradeoff_ray.analyze.load import RunDirError
from tradeoff_ray.analyze.stats import (holm_adjust, mcnemar_exact, min_detectable_effect, paired_bootstrap_delta,
                                        wilson_interval)
from tradeoff_ray.records import MmluResult, SqlResult

HARDNESS = ("easy", "medium", "hard", "extra")
UNSCORABLE_REASONS = ("missing_db", "gold_error")
N_BOOT = 2000


def pct(x: float | None) -> float | None:
    """A proportion as a percentage; None for undefined (NaN or None) so JSON stays valid."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * x


def rate_block(correct: int, n: int) -> dict[str, Any]:
    """Accuracy of `correct` out of `n` in percent with its 95% Wilson interval."""
    iv = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy_pct": pct(iv.estimate),
            "ci_low_pct": pct(iv.low), "ci_high_pct": pct(iv.high)}


def _ordered(keys: Iterable[str], preferred: tuple[str, ...]) -> list[str]:
    keys = set(keys)
    return [k for k in preferred if k in keys] + sorted(keys - set(preferred))


def unscorable_reason(r: SqlResult) -> str:
    """Why an example has no EX verdict: missing_db, gold_error, or 'other' (an inconsistent record)."""
    return r.error if r.error in UNSCORABLE_REASONS else "other"


def sql_summary(records: list[SqlResult]) -> dict[str, Any]:
    """EX overall and by hardness over scorable examples, plus the count of unscorable ones and why."""
    scored = [r for r in records if r.ex is not None]
    out = rate_block(sum(r.ex for r in scored), len(scored))
    out["n_total"] = len(records)
    out["n_unscorable"] = len(records) - len(scored)
    out["unscorable"] = dict(Counter(unscorable_reason(r) for r in records if r.ex is None))
    by: dict[str, list[int]] = {}
    for r in scored:
        by.setdefault(r.hardness or "unknown", []).append(r.ex)
    out["by_hardness"] = {h: rate_block(sum(by[h]), len(by[h])) for h in _ordered(by, HARDNESS)}
    return out


LETTERS = ("A", "B", "C", "D")


def letter_counts(letters: Iterable[str | None]) -> dict[str, int]:
    """{'A': n, 'B': n, 'C': n, 'D': n, 'none': n}: how often each answer letter occurs (none = no answer)."""
    counts = Counter(x if x in LETTERS else "none" for x in letters)
    return {k: counts.get(k, 0) for k in (*LETTERS, "none")}


def mmlu_summary(records: list[MmluResult]) -> dict[str, Any]:
    """MMLU accuracy: micro overall, macro over categories, per category; no-answer and letter counts."""
    out = rate_block(sum(r.correct for r in records), len(records))
    by: dict[str, list[int]] = {}
    for r in records:
        by.setdefault(r.category, []).append(r.correct)
    cats = {c: rate_block(sum(v), len(v)) for c, v in sorted(by.items())}
    accs = [c["accuracy_pct"] for c in cats.values() if c["accuracy_pct"] is not None]
    out["macro_accuracy_pct"] = sum(accs) / len(accs) if accs else None
    out["no_answer"] = sum(r.pred is None for r in records)
    out["pred_letters"] = letter_counts(r.pred for r in records)
    out["gold_letters"] = letter_counts(r.answer for r in records)
    out["n_subjects"] = len({r.subject for r in records})
    out["by_category"] = cats
    return out


def label_summary(sql: list[SqlResult] | None, mmlu: dict[int, list[MmluResult]] | None) -> dict[str, Any]:
    """{"sql": sql_summary or None, "mmlu": {"<shots>": mmlu_summary}} for one label."""
    return {"sql": sql_summary(sql) if sql is not None else None,
            "mmlu": {str(k): mmlu_summary(v) for k, v in sorted((mmlu or {}).items())}}


def outcomes(records: Iterable[SqlResult | MmluResult], *, where: str) -> dict[str, int]:
    """example_id -> 0/1 for the scorable records; a repeated example_id is an error (pairing needs ids)."""
    out: dict[str, int] = {}
    for r in records:
        value = r.ex if isinstance(r, SqlResult) else r.correct
        if value is None:
            continue
        if r.example_id in out:
            raise RunDirError(f"{where} holds example_id {r.example_id!r} twice; pairing needs unique ids — "
                              "re-run the evaluation of this label")
        out[r.example_id] = int(value)
    return out


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def comparison_block(
    base: dict[str, Any], other: dict[str, Any], base_out: dict[str, int], other_out: dict[str, int],
    *, n_boot: int = N_BOOT, seed: int = 0,
) -> dict[str, Any]:
    """Δ of two rate blocks (other - base) with the paired bootstrap CI and McNemar p on shared ids."""
    b_pct, o_pct = base["accuracy_pct"], other["accuracy_pct"]
    delta = None if b_pct is None or o_pct is None else o_pct - b_pct
    ids = sorted(base_out.keys() & other_out.keys())
    a = [base_out[i] for i in ids]
    o = [other_out[i] for i in ids]
    block: dict[str, Any] = {
        "baseline_pct": b_pct, "variant_pct": o_pct, "delta_pp": delta,
        "delta_rel_pct": None if delta is None or not b_pct else 100.0 * delta / b_pct,
        "n_baseline": base["n"], "n_variant": other["n"], "n_paired": len(ids),
        "paired_delta_pp": None, "ci_low_pp": None, "ci_high_pp": None,
        "p_value": None, "baseline_only_right": None, "variant_only_right": None,
        "discordance_pct": None, "mde_pp": None, "p_holm": None, "significant": None,
    }
    if ids:
        iv = paired_bootstrap_delta(a, o, n_boot=n_boot, seed=seed)
        test = mcnemar_exact(a, o)
        block.update(paired_delta_pp=pct(iv.estimate), ci_low_pp=pct(iv.low), ci_high_pp=pct(iv.high),
                     p_value=test["p_value"], baseline_only_right=test["b"], variant_only_right=test["c"])
        discordance = (test["b"] + test["c"]) / len(ids)
        block.update(discordance_pct=pct(discordance), mde_pp=pct(min_detectable_effect(len(ids), discordance)))
    return block


def _comparison_blocks(comparisons: dict[str, dict]) -> list[dict[str, Any]]:
    """Every delta block of a report: per label, Spider overall and by hardness, MMLU per shots and category."""
    blocks = []
    for comp in comparisons.values():
        if comp.get("sql"):
            blocks += [comp["sql"], *comp["sql"].get("by_hardness", {}).values()]
        for m in (comp.get("mmlu") or {}).values():
            blocks += [m, *m.get("by_category", {}).values()]
    return blocks


def adjust_for_multiple_comparisons(comparisons: dict[str, dict], *, alpha: float = 0.05) -> dict[str, Any]:
    """Holm-adjust the exact McNemar p of every comparison in the report, in place; 'significant' uses it.

    The family is everything one report tests (labels x benchmarks x hardness/categories), so a
    subgroup that crosses p < 0.05 by chance among dozens of tests is not called significant.
    """
    blocks = _comparison_blocks(comparisons)
    adjusted = holm_adjust([b["p_value"] for b in blocks])
    for block, p in zip(blocks, adjusted):
        block["p_holm"] = p
        block["significant"] = None if p is None else p < alpha
    return {"method": "holm", "alpha": alpha, "family_size": sum(p is not None for p in adjusted),
            "test": "exact McNemar (two-sided binomial on discordant pairs)"}


def _by_group(records: list, group: str) -> dict[str, list]:
    by: dict[str, list] = {}
    for r in records:
        by.setdefault(getattr(r, group) or "unknown", []).append(r)
    return by


def compare_sql(base: list[SqlResult], other: list[SqlResult], base_sum: dict, other_sum: dict,
                *, label: str, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Overall and per-hardness comparison of `other` against `base` (summaries from `sql_summary`)."""
    bo = outcomes(base, where="evals/baseline/sql.jsonl")
    oo = outcomes(other, where=f"evals/{label}/sql.jsonl")
    out = comparison_block(base_sum, other_sum, bo, oo, n_boot=n_boot, seed=_seed(label, "sql"))
    bb, ob = _by_group(base, "hardness"), _by_group(other, "hardness")
    out["by_hardness"] = {}
    for h in base_sum["by_hardness"]:
        if h in other_sum["by_hardness"]:
            b_ids, o_ids = {r.example_id for r in bb[h]}, {r.example_id for r in ob[h]}
            out["by_hardness"][h] = comparison_block(
                base_sum["by_hardness"][h], other_sum["by_hardness"][h],
                {i: v for i, v in bo.items() if i in b_ids}, {i: v for i, v in oo.items() if i in o_ids},
                n_boot=n_boot, seed=_seed(label, "sql", h))
    return out


def compare_mmlu(base: list[MmluResult], other: list[MmluResult], base_sum: dict, other_sum: dict,
                 *, label: str, shots: str, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Overall (micro) and per-category comparison at one shot count."""
    bo = outcomes(base, where=f"evals/baseline/mmlu_{shots}shot.jsonl")
    oo = outcomes(other, where=f"evals/{label}/mmlu_{shots}shot.jsonl")
    out = comparison_block(base_sum, other_sum, bo, oo, n_boot=n_boot, seed=_seed(label, "mmlu", shots))
    bb, ob = _by_group(base, "category"), _by_group(other, "category")
    out["by_category"] = {
        c: comparison_block(base_sum["by_category"][c], other_sum["by_category"][c],
                            {r.example_id: r.correct for r in bb[c]}, {r.example_id: r.correct for r in ob[c]},
                            n_boot=n_boot, seed=_seed(label, "mmlu", shots, c))
        for c in base_sum["by_category"] if c in other_sum["by_category"]
    }
    return out


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Labels not dominated on (x, y), both to maximise: no other point is >= on both and > on one."""
    front = []
    for name, (x, y) in points.items():
        dominated = any(ox >= x and oy >= y and (ox > x or oy > y)
                        for other, (ox, oy) in points.items() if other != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: (points[n][0], points[n][1]))


def tradeoff_points(comparisons: dict[str, dict], labels: list[str], *, shots: str | None,
                    baseline: str) -> dict[str, Any]:
    """Scatter points (Δ MMLU pp, Δ EX pp) of `labels` plus the baseline at (0, 0), and the Pareto front.

    A label enters the front computation only when both of its deltas exist; the baseline is a point
    so that variants worse on both axes are shown as dominated by not fine-tuning at all.
    """
    points: dict[str, tuple[float, float]] = {baseline: (0.0, 0.0)}
    rows = []
    for label in labels:
        comp = comparisons.get(label, {})
        sql = comp.get("sql")
        mmlu = (comp.get("mmlu") or {}).get(shots) if shots is not None else None
        dx = mmlu["delta_pp"] if mmlu else None
        dy = sql["delta_pp"] if sql else None
        rows.append({"label": label, "delta_mmlu_pp": dx, "delta_ex_pp": dy,
                     "mmlu_ci_pp": [mmlu["ci_low_pp"], mmlu["ci_high_pp"]] if mmlu else None,
                     "ex_ci_pp": [sql["ci_low_pp"], sql["ci_high_pp"]] if sql else None})
        if dx is not None and dy is not None:
            points[label] = (dx, dy)
    front = pareto_front(points) if len(points) > 1 else []
    for row in rows:
        row["on_front"] = row["label"] in front
    return {"shots": shots, "x": "delta_mmlu_pp", "y": "delta_ex_pp", "points": rows, "front": front,
            "baseline_on_front": baseline in front}
