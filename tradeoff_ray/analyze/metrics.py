"""metrics.json: every number of a run's report, computed from its saved records in one pass.

Schema (version 1). Percentages are unrounded floats in 0..100; None (null) means undefined (n = 0).
MMLU shot counts are string keys ("0", "5"). A "rate" is {n, correct, accuracy_pct, ci_low_pct,
ci_high_pct} with a 95% Wilson interval.

    {"schema_version": 1,
     "run": {name, run_dir, model, primary_shots, shots, baseline, variants, checkpoints, gold, diverged,
             status: "ok" | "checks_failed", warnings, data: {spider: {...}, mmlu: {...}}, config: {...}},
     "labels": {label: {"sql": rate + {n_total, n_unscorable, unscorable: {reason: n},
                                      by_hardness: {easy|medium|hard|extra: rate}} | null,
                        "mmlu": {shots: rate + {macro_accuracy_pct, no_answer, n_subjects,
                                               by_category: {category: rate}}}}},
     "comparisons": {label: {"baseline": "baseline",
                             "sql": delta + {by_hardness: {h: delta}} | null,
                             "mmlu": {shots: delta + {by_category: {c: delta}}}}},
     "multiple_comparisons": {method, alpha, family_size, test},
     "seeds": {group: {seeds, labels, "sql": seed_block | null, "mmlu": {shots: seed_block}}},
     "pareto": {shots, x, y, points: [{label, delta_mmlu_pp, delta_ex_pp, mmlu_ci_pp, ex_ci_pp, on_front}],
                front, baseline_on_front},
     "checks": {status: "passed" | "failed", failed, not_run, items: [{name, label, status, passed, detail}]},
     "curves": {variant: {final_step, points: [{step, label, sql_pct, sql_ci_low_pct, sql_ci_high_pct,
                                                sql_n, mmlu: {shots: {pct, ci_low_pct, ci_high_pct, n}}}]}},
     "errors": {taxonomy: {label: {n, classes: {class: n}, wrong_result_kinds: {kind: n}}},
                examples: [{label, shown, kind, example_id, db_id, hardness, question, pred_sql,
                            raw_generation, gold_sql, class, detail}]},
     "training": {variant: {scalar fields of train/<variant>/result.json (status: "trained" | "diverged",
                            message), final_train_loss?, curve?: [{step, loss, grad_norm}],
                            divergence?: {variant, step, loss, grad_norm, last_finite_step, last_finite_loss,
                                          learning_rate, checkpoint}}},
     "stages": {stage: {wall_s, cached?, input_hash?}}}

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
from tradeoff_ray.analyze.tradeoff import (N_BOOT, adjust_for_multiple_comparisons, compare_mmlu, compare_sql,
                                           label_summary, tradeoff_points)
from tradeoff_ray.records import BASELINE, write_json

SCHEMA_VERSION = 1
_WALL_KEYS = ("wall_s", "wall_time_s", "elapsed_s", "duration_s", "seconds")


def _source(value: Any) -> tuple[str, bool]:
    if value in (None, ""):
        return "built-in demo data", True
    return ("Hugging Face hub" if value == "hub" else str(value)), False


def spider_data(run: RunData) -> dict[str, Any]:
    """Where the Spider questions came from and how many were scored, excluded, and why."""
    data = run.config.get("data") or {}
    source, demo = _source(data.get("spider_dir"))
    ref = BASELINE if BASELINE in run.sql else next((lb for lb in run.labels if lb in run.sql
                                                     and label_kind(lb) != "gold"), None)
    out: dict[str, Any] = {"source": source, "is_demo": demo, "dev_limit": data.get("dev_limit"), "label": ref}
    if ref is None:
        return out
    records = run.sql[ref]
    missing: dict[str, int] = {}
    for r in records:
        if r.error == "missing_db":
            missing[r.db_id] = missing.get(r.db_id, 0) + 1
    n_total = len(records)
    manifest = run.manifests.get("spider_dev")
    if isinstance(manifest, dict):  # eval may drop examples without a database before writing records
        for db, v in (manifest.get("missing_dbs") or {}).items():
            missing[db] = max(missing.get(db, 0), len(v) if isinstance(v, list) else int(v))
        if isinstance(manifest.get("n_total"), int):
            n_total = max(n_total, manifest["n_total"])
    n_scored = sum(r.ex is not None for r in records)
    out.update(n_total=n_total, n_scored=n_scored, n_excluded=n_total - n_scored,
               missing_dbs=dict(sorted(missing.items())),
               gold_errors=sum(r.error == "gold_error" for r in records))
    return out


def mmlu_data(run: RunData, labels: dict[str, dict]) -> dict[str, Any]:
    data = run.config.get("data") or {}
    source, demo = _source(data.get("mmlu_dir"))
    ref = BASELINE if BASELINE in run.mmlu else next(iter(run.mmlu), None)
    per_shot = {k: {"n": b["n"], "by_category": {c: cb["n"] for c, cb in b["by_category"].items()}}
                for k, b in (labels[ref]["mmlu"].items() if ref else [])}
    return {"source": source, "is_demo": demo, "split": data.get("mmlu_split"),
            "per_category": data.get("mmlu_per_category"), "label": ref, "shots": per_shot}


def config_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a reader needs to interpret the numbers (the full config is config.yaml)."""
    model, prompt, ev = config.get("model") or {}, config.get("prompt") or {}, config.get("eval") or {}
    variants = []
    for v in (config.get("training") or {}).get("variants") or []:
        if isinstance(v, dict):
            variants.append({k: v.get(k) for k in ("name", "method", "r", "alpha", "dropout", "learning_rate", "max_steps",
                                                   "num_epochs", "quantization", "per_device_batch_size",
                                                   "gradient_accumulation_steps", "save_steps", "target_modules")})
    tune = config.get("tune") or {}
    return {
        "model": {k: model.get(k) for k in ("name", "revision", "dtype")},
        "prompt": {k: prompt.get(k) for k in ("foreign_keys", "sample_rows", "schema_source", "use_chat_template")},
        "eval": {k: ev.get(k) for k in ("engine", "mmlu_mode", "mmlu_shots", "max_new_tokens", "keep_distinct",
                                        "sql_timeout_s", "mmlu_chat_template")},
        "variants": variants,
        "tune": {"enabled": bool(tune.get("enabled")), "search": tune.get("search"),
                 "num_samples": tune.get("num_samples")},
    }


def training_curve(result: dict[str, Any]) -> list[dict[str, Any]]:
    """[{step, loss, grad_norm}] of every logged training step (NaN/inf kept as they were logged)."""
    points = result.get("train_loss")
    if not isinstance(points, list):
        points = result.get("losses")
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
        wall = next((marker[k] for k in _WALL_KEYS if isinstance(marker.get(k), (int, float))), None)
        out[stage] = {"wall_s": wall, **{k: marker[k] for k in ("cached", "input_hash") if k in marker}}
    return out


def primary_shots(run: RunData) -> str | None:
    """The shot count shown in headline tables: the first of eval.mmlu_shots that was scored."""
    scored = run.shots
    for k in (run.config.get("eval") or {}).get("mmlu_shots") or []:
        if k in scored:
            return str(k)
    return str(scored[0]) if scored else None


def compute_metrics(run: RunData, *, n_boot: int = N_BOOT) -> dict[str, Any]:
    """All report numbers of a loaded run (see the module docstring for the schema)."""
    labels = {lb: label_summary(run.sql.get(lb), run.mmlu.get(lb)) for lb in run.labels}
    compared = [lb for lb in run.labels if label_kind(lb) in ("variant", "checkpoint")]
    comparisons: dict[str, Any] = {}
    if BASELINE in labels:
        for lb in compared:
            comp: dict[str, Any] = {"baseline": BASELINE, "sql": None, "mmlu": {}}
            if lb in run.sql and BASELINE in run.sql:
                comp["sql"] = compare_sql(run.sql[BASELINE], run.sql[lb], labels[BASELINE]["sql"],
                                          labels[lb]["sql"], label=lb, n_boot=n_boot)
            for k, recs in sorted(run.mmlu.get(lb, {}).items()):
                if k in run.mmlu.get(BASELINE, {}):
                    comp["mmlu"][str(k)] = compare_mmlu(run.mmlu[BASELINE][k], recs, labels[BASELINE]["mmlu"][str(k)],
                                                        labels[lb]["mmlu"][str(k)], label=lb, shots=str(k),
                                                        n_boot=n_boot)
            comparisons[lb] = comp
    multiple = adjust_for_multiple_comparisons(comparisons)
    shots = primary_shots(run)
    variants = run.labels_of("variant")
    checks = run_checks(run, labels)
    training = training_summary(run)
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "name": run.config.get("name") or run.run_dir.name, "run_dir": str(run.run_dir),
            "model": (run.config.get("model") or {}).get("name"), "primary_shots": shots,
            "shots": [str(k) for k in run.shots], "baseline": BASELINE if BASELINE in labels else None,
            "variants": variants, "checkpoints": run.labels_of("checkpoint"), "gold": bool(run.labels_of("gold")),
            "diverged": [v for v, t in training.items() if t.get("status") == "diverged"],
            "status": "checks_failed" if checks["status"] == "failed" else "ok", "warnings": list(run.warnings),
            "data": {"spider": spider_data(run), "mmlu": mmlu_data(run, labels)},
            "config": config_summary(run.config),
        },
        "labels": labels,
        "comparisons": comparisons,
        "multiple_comparisons": multiple,
        "seeds": seed_summary(run, labels, comparisons, n_boot=n_boot),
        "pareto": tradeoff_points(comparisons, variants, shots=shots, baseline=BASELINE),
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
