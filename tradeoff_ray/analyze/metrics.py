"""metrics.json: every number of a run's report, computed from its saved records in one pass.

Schema (version 2). Percentages are unrounded floats in 0..100; None (null) means undefined (n = 0).
A "measure" is one accuracy of one task (tradeoff_ray/tasks/): 'spider' (EX), 'mmlu_<k>shot',
'gsm8k_strict', 'gsm8k_flexible', or a registered task's. A "rate" is {n, correct, accuracy_pct,
ci_low_pct, ci_high_pct} with a 95% Wilson interval (`tasks.base.rate_block`, the one rate type).

    {"schema_version": 2,
     "run": {name, run_dir, model, measures: [{key, task, title, role: "target" | "general", group_by}],
             target (measure key | null), general ([measure keys]), baseline, variants, checkpoints, gold,
             diverged, status: "ok" | "checks_failed", warnings, data: {task: {...}}, config: {...}},
     "labels": {label: {measure: rate + {n_total, n_unscorable, by_group?: {group: rate}, ...task extras}}},
     "comparisons": {label: {"baseline": "baseline", measure: delta + {by_group?: {group: delta}}}},
     "multiple_comparisons": {method, alpha, family_size, test},
     "seeds": {group: {seeds, labels, measures: {measure: seed_block}}},
     "pareto": {x (a general measure), y (the target measure), points: [{label, dx_pp, dy_pp, x_ci_pp, y_ci_pp,
                on_front}], front, baseline_on_front},
     "checks": {status: "passed" | "failed", failed, not_run, items: [{name, label, status, passed, detail}]},
     "curves": {variant: {final_step, points: [{step, label, measures: {measure: {pct, ci_low_pct,
                                                                                ci_high_pct, n}}}]}},
     "errors": {taxonomy: {label: {n, classes: {class: n}, wrong_result_kinds: {kind: n}}},
                examples: [{label, shown, kind, example_id, db_id, hardness, question, pred_sql,
                            raw_generation, gold_sql, class, detail}]}   (Spider runs only; else empty)
     "training": {variant: {scalar fields of train/<variant>/result.json (status: "trained" | "diverged",
                            message), final_train_loss?, curve?: [{step, loss, grad_norm}],
                            divergence?: {variant, step, loss, grad_norm, last_finite_step, last_finite_loss,
                                          learning_rate, checkpoint}}},
     "stages": {stage: {wall_s, cached?, key?}}}

where a "delta" is {baseline_pct, variant_pct, delta_pp (= variant_pct - baseline_pct exactly),
delta_rel_pct (= 100 * delta_pp / baseline_pct), n_baseline, n_variant, n_paired, paired_delta_pp,
ci_low_pp, ci_high_pp (95% paired bootstrap on the n_paired shared examples), p_value (exact McNemar),
baseline_only_right, variant_only_right, discordance_pct (share of paired examples the two disagree on),
mde_pp (smallest |Δ| detectable with 80% power at that n and discordance), p_holm (p_value Holm-adjusted
over every delta of the report: "multiple_comparisons" says the family size), significant (p_holm < 0.05)}.
Comparisons cover every variant and checkpoint label. A "seed_block" (variants trained with `seeds`) is
{n_seeds, n_paired, accuracy_mean_pct, accuracy_sd_pp, delta_mean_pp, delta_sd_pp, delta_min_pp,
delta_max_pp, paired_delta_pp, ci_low_pp, ci_high_pp}: the mean over seeds with the seed-to-seed sd and
the 95% paired-bootstrap CI of the per-example mean outcome over seeds minus the baseline's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeoff_ray.analyze.checks import run_checks
from tradeoff_ray.analyze.curves import build_curves
from tradeoff_ray.analyze.failures import error_summary
from tradeoff_ray.analyze.load import RunData, label_kind, load_run
from tradeoff_ray.analyze.seeds import seed_summary
from tradeoff_ray.analyze.tradeoff import N_BOOT, adjust_for_multiple_comparisons, compare, label_summary, tradeoff_points
from tradeoff_ray.config import result_settings
from tradeoff_ray.records import BASELINE, GOLD, write_json
from tradeoff_ray.tasks import TARGET

SCHEMA_VERSION = 2


_LEGACY_MANIFESTS = {"spider": "spider_dev", "mmlu": "mmlu_subset"}


def task_data(run: RunData, labels: dict[str, dict]) -> dict[str, Any]:
    """Per task: where its items came from, whether it is demo data, and how many were scored and excluded
    (from its manifest and the reference label's records: the baseline, else the first model label)."""
    out: dict[str, Any] = {}
    config_data = run.config.get("data") or {}
    for task in run.tasks:
        manifest = run.manifests.get(task.name) or run.manifests.get(_LEGACY_MANIFESTS.get(task.name, "")) or {}
        per_label = run.results[task.name]
        ref = BASELINE if BASELINE in per_label else next((lb for lb in run.labels if lb in per_label
                                                           and label_kind(lb) != "gold"), None)
        info: dict[str, Any] = {"task": task.name, "title": task.title, "label": ref,
                                "source": manifest.get("source"), "is_demo": manifest.get("is_demo")}
        if info["source"] is None:  # manifests of older runs lack it: read it from the config
            key = {"spider": "spider_dir", "mmlu": "mmlu_dir", "gsm8k": "gsm8k_dir"}.get(task.name)
            value = config_data.get(key) if key else None
            info["source"] = "built-in demo data" if value in (None, "") and key else str(value)
            info["is_demo"] = value in (None, "") and key in ("spider_dir", "mmlu_dir")
        for k in ("dev_limit", "split", "per_category", "limit", "shots", "mode"):
            if k in manifest:
                info[k] = manifest[k]
        if ref is not None:
            records = per_label[ref]
            info["n_records"] = len(records)
            info["measures"] = {key: {"n": b["n"], "n_total": b["n_total"], "n_unscorable": b["n_unscorable"],
                                      **({"by_group": {g: gb["n"] for g, gb in b["by_group"].items()}}
                                         if "by_group" in b else {})}
                                for key, b in labels[ref].items() if key in {m.key for t, m in run.measures()
                                                                             if t.name == task.name}}
        if task.name == "spider":
            info.update(_spider_exclusions(run, ref, manifest))
        out[task.name] = info
    return out


def _spider_exclusions(run: RunData, ref: str | None, manifest: dict) -> dict[str, Any]:
    """Spider questions excluded from EX and why: databases missing, gold queries that fail to execute."""
    if ref is None:
        return {}
    records = run.sql[ref]
    missing: dict[str, int] = {}
    for r in records:
        if r.error == "missing_db":
            missing[r.db_id] = missing.get(r.db_id, 0) + 1
    for db, v in (manifest.get("missing_dbs") or {}).items():
        missing[db] = max(missing.get(db, 0), len(v) if isinstance(v, list) else int(v))
    n_total = max(len(records), manifest.get("n_total") or 0)
    n_scored = sum(r.ex is not None for r in records)
    return {"n_total": n_total, "n_scored": n_scored, "n_excluded": n_total - n_scored,
            "missing_dbs": dict(sorted(missing.items())), "gold_errors": sum(r.error == "gold_error" for r in records)}


def config_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide the numbers: the run's config.yaml without its RUNTIME_ONLY fields (where and
    how fast it ran), with the variants as their own list."""
    kept = result_settings(config)
    training = dict(kept.get("training") or {})
    variants = [v for v in training.pop("variants", None) or [] if isinstance(v, dict)]
    tune = kept.get("tune") or {}
    return {
        "model": kept.get("model") or {},
        "data": kept.get("data") or {},
        "prompt": kept.get("prompt") or {},
        "eval": kept.get("eval") or {},
        "training": training,
        "variants": variants,
        "tune": {**tune, "enabled": bool(tune.get("enabled"))},
    }


def training_curve(result: dict[str, Any]) -> list[dict[str, Any]]:
    """[{step, loss, grad_norm}] of every logged training step (NaN/inf kept as they were logged)."""
    points = result.get("train_loss")
    curve = []
    for p in points if isinstance(points, list) else []:
        if isinstance(p, dict) and isinstance(p.get("step"), int):
            loss = p.get("loss", p.get("train_loss"))
            curve.append({"step": p["step"], "loss": loss if isinstance(loss, (int, float)) else None,
                          "grad_norm": p.get("grad_norm") if isinstance(p.get("grad_norm"), (int, float)) else None})
    return curve


def training_summary(run: RunData) -> dict[str, Any]:
    """Per variant: the scalar fields of its result.json, its per-step loss/grad-norm curve, and its
    divergence record when its training stopped at a non-finite value (`status: "diverged"`)."""
    out = {}
    for variant, result in run.training.items():
        row = {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool)) or v is None}
        curve = training_curve(result)
        if curve:
            row["curve"] = curve
            if isinstance(curve[-1]["loss"], (int, float)):
                row["final_train_loss"] = curve[-1]["loss"]
        if isinstance(result.get("divergence"), dict):
            row["divergence"] = result["divergence"]
        out[variant] = row
    return out


def stage_summary(run: RunData) -> dict[str, Any]:
    out = {}
    for stage, marker in run.stages.items():
        if not isinstance(marker, dict):
            continue
        wall = marker.get("wall_s") if isinstance(marker.get("wall_s"), (int, float)) else None
        out[stage] = {"wall_s": wall, **{k: marker[k] for k in ("cached", "key") if k in marker}}
    return out


def compute_metrics(run: RunData, *, n_boot: int = N_BOOT) -> dict[str, Any]:
    """All report numbers of a loaded run (see the module docstring for the schema)."""
    labels = {lb: label_summary(run, lb) for lb in run.labels}
    measures = run.measures()
    compared = [lb for lb in run.labels if label_kind(lb) in ("variant", "checkpoint")]
    comparisons: dict[str, Any] = {}
    if BASELINE in labels:
        for lb in compared:
            comp: dict[str, Any] = {"baseline": BASELINE}
            for task, m in measures:
                base, other = run.records(task.name, BASELINE), run.records(task.name, lb)
                if base is not None and other is not None and m.key in labels[BASELINE] and m.key in labels[lb]:
                    comp[m.key] = compare(task, m, base, other, labels[BASELINE][m.key], labels[lb][m.key],
                                          label=lb, n_boot=n_boot)
            comparisons[lb] = comp
    multiple = adjust_for_multiple_comparisons(comparisons)
    variants = run.labels_of("variant")
    checks = run_checks(run, labels)
    training = training_summary(run)
    target = next((m.key for _, m in measures if m.role == TARGET), None)
    general = [m.key for _, m in measures if m.role != TARGET]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "name": run.config.get("name") or run.run_dir.name, "run_dir": str(run.run_dir),
            "model": (run.config.get("model") or {}).get("name"),
            "measures": [{"key": m.key, "task": t.name, "title": m.title, "role": m.role, "group_by": m.group_by}
                         for t, m in measures],
            "target": target, "general": general,
            "baseline": BASELINE if BASELINE in labels else None,
            "variants": variants, "checkpoints": run.labels_of("checkpoint"), "gold": GOLD in labels,
            "diverged": [v for v, t in training.items() if t.get("status") == "diverged"],
            "status": "checks_failed" if checks["status"] == "failed" else "ok", "warnings": list(run.warnings),
            "data": task_data(run, labels),
            "config": config_summary(run.config),
        },
        "labels": labels,
        "comparisons": comparisons,
        "multiple_comparisons": multiple,
        "seeds": seed_summary(run, labels, comparisons, n_boot=n_boot),
        "pareto": tradeoff_points(comparisons, variants, x=general[0] if general else None, y=target,
                                  baseline=BASELINE),
        "checks": checks,
        "curves": build_curves(run, labels),
        "errors": error_summary(run),
        "training": training,
        "stages": stage_summary(run),
    }


def write_metrics(run_dir: str | Path, *, n_boot: int = N_BOOT) -> tuple[Path, dict[str, Any]]:
    """Load a run dir, compute its metrics and write <run_dir>/metrics.json; returns (path, metrics)."""
    run = load_run(run_dir)
    metrics = compute_metrics(run, n_boot=n_boot)
    path = Path(run_dir) / "metrics.json"
    write_json(path, metrics)
    return path, metrics
