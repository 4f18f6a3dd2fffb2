"""Learning/forgetting curves: every measure (Spider EX, MMLU, GSM8K, ...) at each evaluated checkpoint of a variant.

Points come from labels `<variant>@step<N>`; step 0 is the baseline (the base model is the adapter
at initialisation, LoRA's B = 0), and the final adapter (label `<variant>`) sits at the step count its
training reported in train/<variant>/result.json, else at the config's max_steps. When a checkpoint
and the final adapter share a step, the final label is kept (it is the same weights).
"""
from __future__ import annotations

from typing import Any

from tradeoff_ray.analyze.load import RunData, label_kind, parse_label
from tradeoff_ray.records import BASELINE

_STEP_KEYS = ("global_step", "steps", "max_steps", "step", "num_steps")


def final_step(run: RunData, variant: str) -> int | None:
    """The optimizer steps of a variant's final adapter, from its training result or config."""
    result = run.training.get(variant) or {}
    for key in _STEP_KEYS:
        value = result.get(key)
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            return max(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    for v in (run.config.get("training") or {}).get("variants") or []:
        if isinstance(v, dict) and v.get("name") == variant and isinstance(v.get("max_steps"), int):
            return v["max_steps"]
    return None


def _point(label: str, step: int | None, summary: dict[str, Any]) -> dict[str, Any]:
    return {"step": step, "label": label,
            "measures": {k: {"pct": b["accuracy_pct"], "ci_low_pct": b["ci_low_pct"], "ci_high_pct": b["ci_high_pct"],
                             "n": b["n"]} for k, b in summary.items()}}


def build_curves(run: RunData, labels: dict[str, dict]) -> dict[str, Any]:
    """{variant: {"final_step", "points": [...by step]}} for every variant with at least one checkpoint."""
    by_variant: dict[str, dict[int, str]] = {}
    for label in run.labels:
        if label_kind(label) == "checkpoint":
            variant, step = parse_label(label)
            by_variant.setdefault(variant, {})[step] = label
    curves = {}
    for variant, steps in sorted(by_variant.items()):
        last = final_step(run, variant) if variant in labels else None
        if variant in labels and last is not None:
            steps[last] = variant
        points = [_point(lbl, st, labels[lbl]) for st, lbl in sorted(steps.items())]
        if BASELINE in labels and 0 not in steps:
            points.insert(0, _point(BASELINE, 0, labels[BASELINE]))
        if variant in labels and last is None:
            points.append(_point(variant, None, labels[variant]))  # final adapter, step unknown
        curves[variant] = {"final_step": last, "points": points}
    return curves
