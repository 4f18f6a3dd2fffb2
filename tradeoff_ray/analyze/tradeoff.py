"""The trade-off numbers: accuracy per label, and each model against the baseline on the same examples.

Per label and measure (a task's accuracy: Spider EX, MMLU at k shots, GSM8K strict/flexible, ...):
the rate over the *scorable* examples with a 95% Wilson interval, its breakdown (hardness, category)
and the task's extras — `tasks.base.measure_summary`, the one summary every reader uses.

Per compared label vs the baseline: Δ in percentage points and relative %, where Δ is *exactly* the
difference of the two accuracies reported for the labels (so tables can be checked by subtraction);
the 95% paired-bootstrap interval of Δ and McNemar's exact p-value use only the examples scored on
both sides (`n_paired`; equal to both n's in a normal run, and `paired_delta_pp` is Δ on them).
All percentages are stored unrounded; rounding happens only when a table is displayed.
"""
from __future__ import annotations

import math
import zlib
from typing import Any, Iterable

from tradeoff_ray.analyze.load import RunData, RunDirError
from tradeoff_ray.stats import holm_adjust, mcnemar_exact, min_detectable_effect, paired_bootstrap_delta
from tradeoff_ray.errors import UserError
from tradeoff_ray.records import BASELINE
from tradeoff_ray.tasks import Measure, Task
from tradeoff_ray.tasks.base import measure_summary, outcomes

N_BOOT = 2000


def pct(x: float | None) -> float | None:
    """A proportion as a percentage; None for undefined (NaN or None) so JSON stays valid."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * x


def label_summary(run: RunData, label: str) -> dict[str, Any]:
    """{measure key: measure_summary} of one label, over every measure it has records for."""
    out: dict[str, Any] = {}
    for task, measure in run.measures():
        records = run.records(task.name, label)
        if records is not None:
            out[measure.key] = measure_summary(task, records, measure)
    return out


def measure_outcomes(task: Task, records: Iterable[Any], measure: Measure, *, label: str) -> dict[str, int]:
    """example_id -> 0/1 over a measure's scorable records (a repeated id is a RunDirError)."""
    try:
        return outcomes(task, records, measure, where=f"evals/{label}/{task.name}.jsonl")
    except UserError as err:
        raise RunDirError(str(err)) from None


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
    """Every delta block of a report: per label and measure, overall and per group (hardness, category)."""
    blocks = []
    for comp in comparisons.values():
        for key, block in comp.items():
            if isinstance(block, dict):
                blocks += [block, *block.get("by_group", {}).values()]
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


def compare(task: Task, measure: Measure, base: list, other: list, base_sum: dict, other_sum: dict,
            *, label: str, n_boot: int = N_BOOT) -> dict[str, Any]:
    """`other` against `base` on one measure, overall and per group (summaries from `label_summary`)."""
    bo = measure_outcomes(task, base, measure, label=BASELINE)
    oo = measure_outcomes(task, other, measure, label=label)
    out = comparison_block(base_sum, other_sum, bo, oo, n_boot=n_boot, seed=_seed(label, measure.key))
    if "by_group" in base_sum:
        group_of = {r.example_id: task.group(r, measure) or "unknown" for r in [*base, *other]}
        out["by_group"] = {}
        for g, block in base_sum["by_group"].items():
            if g in other_sum.get("by_group", {}):
                out["by_group"][g] = comparison_block(
                    block, other_sum["by_group"][g], {i: v for i, v in bo.items() if group_of.get(i) == g},
                    {i: v for i, v in oo.items() if group_of.get(i) == g}, n_boot=n_boot,
                    seed=_seed(label, measure.key, g))
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


def tradeoff_points(comparisons: dict[str, dict], labels: list[str], *, x: str | None, y: str | None,
                    baseline: str) -> dict[str, Any]:
    """Scatter points (Δ x, Δ y in pp: x a general measure, y the target) of `labels` plus the baseline at
    (0, 0), and the Pareto front.

    A label enters the front computation only when both of its deltas exist; the baseline is a point
    so that variants worse on both axes are shown as dominated by not fine-tuning at all.
    """
    points: dict[str, tuple[float, float]] = {baseline: (0.0, 0.0)}
    rows = []
    for label in labels:
        comp = comparisons.get(label, {})
        bx, by = comp.get(x) if x else None, comp.get(y) if y else None
        dx = bx["delta_pp"] if bx else None
        dy = by["delta_pp"] if by else None
        rows.append({"label": label, "dx_pp": dx, "dy_pp": dy,
                     "x_ci_pp": [bx["ci_low_pp"], bx["ci_high_pp"]] if bx else None,
                     "y_ci_pp": [by["ci_low_pp"], by["ci_high_pp"]] if by else None})
        if dx is not None and dy is not None:
            points[label] = (dx, dy)
    front = pareto_front(points) if len(points) > 1 else []
    for row in rows:
        row["on_front"] = row["label"] in front
    return {"x": x, "y": y, "points": rows, "front": front, "baseline_on_front": baseline in front}
