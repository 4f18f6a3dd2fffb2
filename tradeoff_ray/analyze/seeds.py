"""Variants trained with several seeds: their mean, the seed-to-seed spread, and the item-sampling CI.

Two uncertainties answer different questions. The paired-bootstrap CI says how much Δ would move
with other test questions (item sampling); the spread across seeds says how much it moves when the
same recipe is trained again (training noise). A forgetting effect smaller than either is not shown.
The mean's item CI resamples examples of the per-example mean outcome over seeds (values 0, 1/k,
..., 1) minus the baseline's outcome, so it is paired like every other comparison here.
"""
from __future__ import annotations

import statistics
from typing import Any

from tradeoff_ray.analyze.load import RunData
from tradeoff_ray.stats import bootstrap_mean_interval
from tradeoff_ray.analyze.tradeoff import N_BOOT, measure_outcomes, pct
from tradeoff_ray.records import BASELINE


def seed_groups(config: dict[str, Any]) -> dict[str, list[tuple[int, str]]]:
    """{group name: [(seed, variant name), ...]} from a run's config (variants expanded from `seeds`)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for v in (config.get("training") or {}).get("variants") or []:
        if isinstance(v, dict) and v.get("seed_group"):
            groups.setdefault(v["seed_group"], []).append((int(v.get("seed", 0)), v["name"]))
    return groups


def _spread(values: list[float]) -> dict[str, float | None]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values)}


def _block(base: dict[str, int], members: list[dict[str, int]], accs: list[float], deltas: list[float],
           *, n_boot: int, seed: int) -> dict[str, Any]:
    ids = sorted(set(base).intersection(*members))
    diffs = [sum(m[i] for m in members) / len(members) - base[i] for i in ids]
    iv = bootstrap_mean_interval(diffs, n_boot=n_boot, seed=seed)
    acc, delta = _spread(accs), _spread(deltas)
    return {"n_seeds": len(members), "n_paired": len(ids),
            "accuracy_mean_pct": acc["mean"], "accuracy_sd_pp": acc["sd"],
            "delta_mean_pp": delta["mean"], "delta_sd_pp": delta["sd"], "delta_min_pp": delta["min"],
            "delta_max_pp": delta["max"], "paired_delta_pp": pct(iv.estimate) if ids else None,
            "ci_low_pp": pct(iv.low) if ids else None, "ci_high_pp": pct(iv.high) if ids else None}


def seed_summary(run: RunData, labels: dict[str, dict], comparisons: dict[str, dict],
                 *, n_boot: int = N_BOOT) -> dict[str, Any]:
    """Per seed group: seeds, labels, and for every measure the mean with both spreads."""
    out: dict[str, Any] = {}
    for group, members in seed_groups(run.config).items():
        names = [name for _, name in sorted(members) if name in labels and name in comparisons]
        if not names:
            continue
        entry: dict[str, Any] = {"seeds": [s for s, n in sorted(members) if n in names], "labels": names,
                                 "measures": {}}
        for i, (task, m) in enumerate(run.measures()):
            base = run.records(task.name, BASELINE)
            if base is None or not all(m.key in comparisons[n] for n in names):
                continue
            entry["measures"][m.key] = _block(
                measure_outcomes(task, base, m, label=BASELINE),
                [measure_outcomes(task, run.records(task.name, n), m, label=n) for n in names],
                [labels[n][m.key]["accuracy_pct"] for n in names],
                [comparisons[n][m.key]["delta_pp"] for n in names], n_boot=n_boot, seed=i)
        out[group] = entry
    return out
