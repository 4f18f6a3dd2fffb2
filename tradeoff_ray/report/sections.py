"""The report's content: blocks built from the metrics dict, section by section, top to bottom.

Every number shown comes from metrics.json (the same dict), rounded only here. The header comes
first and says, before any number, whether a sanity check failed.
"""
from __future__ import annotations

import math
from typing import Any

from tradeoff_ray.analyze.failures import FAILURES, UNSCORABLE
from tradeoff_ray.report.blocks import (
    NA, Alert, Block, Heading, Image, Para, Table, acc_cell, clip, delta_cell, num, p_cell, signed,
)

STATUS_MARK = {"passed": "PASS", "failed": "**FAIL**", "not_run": "not run"}


def _models(m: dict) -> list[str]:
    run = m["run"]
    return ([run["baseline"]] if run["baseline"] else []) + run["variants"]


def _measures(m: dict) -> list[dict]:
    return list(m["run"]["measures"])


def task_sentence(d: dict) -> str:
    """'972 of 1034 dev questions scored; 62 excluded (62 no database: wta_1)' for Spider; for any other task
    its measures' counts and the selection settings."""
    if d["task"] == "spider" and d.get("n_total") is not None:
        text = f"{d['n_scored']} of {d['n_total']} dev questions scored"
        reasons = []
        if d["missing_dbs"]:
            reasons.append(f"{sum(d['missing_dbs'].values())} no database: {', '.join(d['missing_dbs'])}")
        if d["gold_errors"]:
            reasons.append(f"{d['gold_errors']} gold query fails to execute")
        other = d["n_excluded"] - sum(d["missing_dbs"].values()) - d["gold_errors"]
        if other > 0:
            reasons.append(f"{other} for no recorded reason")
        if d["n_excluded"]:
            text += f"; {d['n_excluded']} excluded ({'; '.join(reasons)})"
        if d.get("dev_limit"):
            text += f" — a seeded sample (data.dev_limit={d['dev_limit']}), not the full dev set"
        return text
    parts = []
    for key, b in (d.get("measures") or {}).items():
        groups = ", ".join(f"{g} {n}" for g, n in (b.get("by_group") or {}).items())
        parts.append(f"{key}: {b['n']} scored" + (f" of {b['n_total']}" if b["n_total"] != b["n"] else "")
                     + (f" ({groups})" if groups else ""))
    settings = [f"{k} {d[k]}" for k in ("split", "per_category", "limit", "shots", "mode") if d.get(k) is not None]
    return "; ".join(parts + settings) or "no records"


def header(m: dict) -> list[Block]:
    run, checks = m["run"], m["checks"]
    blocks: list[Block] = [Heading(f"Trade-off report: {run['name']}", 1)]
    if checks["status"] == "failed":
        blocks.append(Alert("**SANITY CHECKS FAILED** — the numbers below may be wrong; see Sanity checks.",
                            "error", checks["failed"]))
    else:
        extra = f" ({len(checks['not_run'])} not run: {', '.join(checks['not_run'])})" if checks["not_run"] else ""
        blocks.append(Alert(f"All sanity checks passed{extra}.", "ok"))
    for name in run.get("diverged") or []:
        blocks.append(Alert(f"**Training of {name} DIVERGED** — it was stopped and not evaluated, so it is not in "
                            "the tables below; see Training.", "error"))
    for w in run["warnings"]:
        blocks.append(Alert(w, "warning"))
    demo = [d["title"] for d in run["data"].values() if d.get("is_demo")]
    if demo:
        blocks.append(Alert(f"{' and '.join(demo)}: built-in demo data, not the real benchmark — set "
                            "data.spider_dir / data.mmlu_dir for publishable numbers.", "warning"))
    rows = [["Run", f"`{run['run_dir']}`"], ["Model", f"`{run['model']}`"],
            ["Models compared", ", ".join(_models(m)) or NA]]
    rows += [[d["title"].split(" ")[0], f"{d['source']}: {task_sentence(d)}"] for d in run["data"].values()]
    blocks.append(Table(["", ""], rows))
    return blocks


def config_section(m: dict) -> list[Block]:
    cfg = m["run"]["config"]
    ev, pr = cfg["eval"], cfg["prompt"]
    tasks = ", ".join(d["task"] for d in m["run"]["data"].values())
    blocks: list[Block] = [Heading("Configuration"), Para(
        f"Tasks {tasks}; engine `{ev['engine']}`; MMLU scored by `{ev['mmlu_mode']}` at shots {ev['mmlu_shots']}; "
        f"SQL up to {ev['max_new_tokens']} new tokens, {ev['sql_timeout_s']} s timeout, "
        f"keep_distinct={ev['keep_distinct']}; schema from `{pr['schema_source']}`, foreign keys "
        f"{pr['foreign_keys']}, {pr['sample_rows']} sample rows"
        + (f"; GSM8K {ev['gsm8k_shots']}-shot, up to {ev['gsm8k_max_new_tokens']} new tokens"
           if "gsm8k" in m["run"]["data"] and ev.get("gsm8k_shots") is not None else "")
        + ". Full settings: config.yaml.")]
    if cfg["variants"]:
        keys = ["name", "method", "r", "alpha", "dropout", "learning_rate", "max_steps", "num_epochs", "quantization",
                "per_device_batch_size", "gradient_accumulation_steps", "save_steps"]
        blocks.append(Table(keys, [[NA if v.get(k) is None else str(v.get(k)) for k in keys] for v in cfg["variants"]]))
    if cfg["tune"]["enabled"]:
        blocks.append(Para(f"Ray Tune sweep: search `{cfg['tune']['search']}`, {cfg['tune']['num_samples']} samples. "
                           "Trials were scored on validation sets only (held-out Spider train databases, MMLU val, a "
                           "GSM8K train slice; tune/trials.csv); the chosen trial (tune/chosen.json) is the label "
                           "`tuned`, scored once on the test sets."))
    return blocks


def checks_section(m: dict) -> list[Block]:
    rows = [[c["name"], (c["label"] or "") + (f" {c['shots']}-shot" if c.get("shots") is not None else "")
             + (f" {c['measure']}" if c.get("measure") else ""), STATUS_MARK[c["status"]], c["detail"]]
            for c in m["checks"]["items"]]
    return [Heading("Sanity checks"), Table(["check", "on", "status", "detail"], rows)]


def _title(m: dict, key: str | None) -> str:
    return next((x["title"] for x in _measures(m) if x["key"] == key), key or NA)


def tradeoff_section(m: dict, plots: dict[str, str]) -> list[Block]:
    run = m["run"]
    measures = _measures(m)
    headers = ["model"]
    for x in measures:
        headers += [f"{x['title']} %", f"Δ {x['title']} pp [95% CI] p, Holm, MDE"]
    rows = []
    for lb in _models(m):
        lab, comp = m["labels"][lb], m["comparisons"].get(lb, {})
        row = [f"**{lb}**" if lb == run["baseline"] else lb]
        for x in measures:
            row += [acc_cell(lab.get(x["key"])), _delta_p(comp.get(x["key"])) if comp.get(x["key"]) else NA]
        rows.append(row)
    for group, g in (m.get("seeds") or {}).items():
        row = [f"{group} (mean of {len(g['seeds'])} seeds)"]
        for x in measures:
            b = g["measures"].get(x["key"]) or {}
            row += [_seed_acc(b), _seed_delta(b)]
        rows.append(row)
    note = _pairing_note(m)
    if m.get("seeds"):
        note += (" Seed means: accuracy ± its sd over seeds; Δ mean [95% paired bootstrap CI of the per-example "
                 "mean over seeds] ± the sd of Δ over seeds (training noise), range in the Seeds section.")
    blocks: list[Block] = [Heading("Trade-off vs baseline"), Table(headers, rows, note=note,
                                                                   numeric=[False] + [True] * (len(headers) - 1))]
    pareto = m["pareto"]
    if "tradeoff" in plots:
        front = ", ".join(pareto["front"])
        blocks += [Para(f"Pareto front on (Δ {_title(m, pareto['x'])}, Δ {_title(m, pareto['y'])}), both higher is "
                        f"better: {front}."),
                   Image(plots["tradeoff"], f"Trade-off scatter: Δ {_title(m, pareto['x'])} vs "
                                            f"Δ {_title(m, pareto['y'])} with 95% CIs")]
    elif not run["variants"]:
        blocks.append(Para("Only the baseline was evaluated: there is nothing to compare yet."))
    else:
        blocks.append(Para("No trade-off scatter: it needs a target measure (Spider) and a general one (MMLU, "
                           "GSM8K) for the baseline and a variant."))
    return blocks


def _sd(x: float | None) -> str:
    return "" if x is None else f" ± {x:.1f}"


def _seed_acc(b: dict) -> str:
    return NA if not b else f"{num(b['accuracy_mean_pct'])}{_sd(b['accuracy_sd_pp'])}"


def _seed_delta(b: dict) -> str:
    if not b or b.get("delta_mean_pp") is None:
        return NA
    ci = NA if b["ci_low_pp"] is None else f"[{signed(b['ci_low_pp'])}, {signed(b['ci_high_pp'])}]"
    return f"{signed(b['delta_mean_pp'])} {ci}{_sd(b['delta_sd_pp'])}"


def seeds_section(m: dict) -> list[Block]:
    """Each seed group: Δ per measure for every seed, their mean, sd and range."""
    groups = m.get("seeds") or {}
    if not groups:
        return []
    blocks: list[Block] = [Heading("Seeds"), Para(
        "The same variant trained with different seeds: the spread of Δ across seeds is training noise, "
        "to be set beside the item-sampling CI. A difference between variants smaller than both is not shown.")]
    measures = _measures(m)
    heads = ["variant", "seeds"] + [f"{x['title']} Δ mean [95% CI] ± sd" for x in measures] + \
        [f"{x['title']} Δ range" for x in measures]
    rows = []
    for group, g in groups.items():
        bs = [g["measures"].get(x["key"]) or {} for x in measures]
        rng = [NA if not b else f"{signed(b['delta_min_pp'])} … {signed(b['delta_max_pp'])}" for b in bs]
        rows.append([group, ", ".join(map(str, g["seeds"]))] + [_seed_delta(b) for b in bs] + rng)
    blocks.append(Table(heads, rows))
    return blocks


def _holm_cell(block: dict | None) -> str:
    """Holm-adjusted p with '*' when significant at 0.05 after adjustment."""
    if not block or block.get("p_holm") is None:
        return NA
    return p_cell(block["p_holm"]) + (" *" if block.get("significant") else "")


def _pairing_note(m: dict) -> str:
    family = (m.get("multiple_comparisons") or {}).get("family_size")
    notes = ["Accuracies: 95% Wilson CI. Δ = variant − baseline as reported; its CI is a 95% paired bootstrap "
             "(resampling examples jointly) and p an exact McNemar test (a binomial test on the discordant "
             "pairs, exact for small cells too), both on the examples scored for both. "
             f"p Holm: p adjusted over all {family or 0} comparisons of this report (models x benchmarks x "
             "hardness/categories); * = significant at 0.05 after adjustment — the decision uses it, not the raw p "
             "nor the bootstrap CI. MDE: the smallest |Δ| this comparison detects with 80% power at α = 0.05, "
             "given its n and the observed share of discordant examples (Connor 1987); a |Δ| below it is "
             "not evidence of no effect."]
    for lb, comp in m["comparisons"].items():
        for name, c in [(_title(m, k), v) for k, v in comp.items() if isinstance(v, dict)]:
            if c["n_paired"] != max(c["n_baseline"], c["n_variant"]):
                notes.append(f"{lb} {name}: {c['n_paired']} paired of {c['n_baseline']} (baseline) / "
                             f"{c['n_variant']} ({lb}); paired Δ {signed(c['paired_delta_pp'])} pp.")
    return " ".join(notes)


def _delta_p(block: dict | None) -> str:
    """'+33.3 [+10.8, +66.7] p=0.250 Holm 1.000 MDE 12.1': raw and Holm-adjusted p, '*' when significant."""
    if not block:
        return NA
    p = p_cell(block.get("p_value"))
    text = f"{delta_cell(block)} p{p if p.startswith('<') else '=' + p}"
    if block.get("p_holm") is not None:
        text += f" Holm {_holm_cell(block)}"
    if block.get("mde_pp") is not None:
        text += f" MDE {num(block['mde_pp'])}"
    return text


def measure_section(m: dict, plots: dict[str, str], measure: dict) -> list[Block]:
    """One measure across models: accuracy by group (hardness, category) and overall, the deltas with their
    tests, the group plot, and the task's extras (`Task.report_sections`)."""
    key = measure["key"]
    models = [lb for lb in _models(m) if m["labels"][lb].get(key)]
    if not models:
        return []
    ref = m["labels"][models[0]][key]
    groups = list(ref.get("by_group") or {})
    heads = ["model"] + [f"{g} (n={ref['by_group'][g]['n']})" for g in groups] + [f"overall (n={ref['n']})"]
    macro = ref.get("macro_accuracy_pct") is not None
    if macro:
        heads.append("macro")
    rows = []
    for lb in models:
        b = m["labels"][lb][key]
        rows.append([lb] + [acc_cell((b.get("by_group") or {}).get(g)) for g in groups] + [acc_cell(b)]
                    + ([num(b.get("macro_accuracy_pct"))] if macro else []))
    numeric = [False] + [True] * (len(heads) - 1)
    title = measure["title"] + (f" by {measure['group_by']}" if measure.get("group_by") else "")
    blocks: list[Block] = [Heading(title), Table(heads, rows, numeric=numeric)]
    delta_rows = []
    base = m["run"]["baseline"]
    for lb in models:
        c = m["comparisons"].get(lb, {}).get(key)
        if c:
            row = [lb] + [_delta_p((c.get("by_group") or {}).get(g)) for g in groups] + [_delta_p(c)]
            if macro:
                mb, mv = m["labels"][base][key].get("macro_accuracy_pct"), m["labels"][lb][key].get("macro_accuracy_pct")
                row.append(signed(None if mb is None or mv is None else mv - mb))
            delta_rows.append(row)
    if delta_rows:
        blocks.append(Table(["Δ pp vs baseline"] + heads[1:], delta_rows, numeric=numeric,
                            note="Δ macro is the difference of the macro averages (no CI)." if macro else ""))
    if f"by_group_{key}" in plots:
        blocks.append(Image(plots[f"by_group_{key}"], title))
    for extra in TASK_SECTIONS_PER_MEASURE.get(measure["task"], ()):
        blocks += extra(m, models, key)
    no_answer = {lb: m["labels"][lb][key].get("no_answer", 0) for lb in models}
    if any(no_answer.values()):
        blocks.append(Para("Examples with no answer read (scored wrong): "
                           + ", ".join(f"{lb} {n}" for lb, n in no_answer.items()) + "."))
    return blocks


def mmlu_letters(m: dict, models: list[str], key: str) -> list[Block]:
    """Predicted answer letters per model next to the answer key's (the letter-bias check reads them)."""
    per = {lb: m["labels"][lb][key] for lb in models if m["labels"][lb][key].get("pred_letters")}
    if not per:
        return []
    keys = ("A", "B", "C", "D", "none")
    gold = next(iter(per.values()))["gold_letters"]
    rows = [["gold answers"] + [str(gold[x]) for x in keys]]
    rows += [[lb] + [f"{b['pred_letters'][x]} ({100 * b['pred_letters'][x] / b['n']:.0f}%)" for x in keys]
             for lb, b in per.items()]
    return [Table(["predicted letter"] + list(keys), rows, numeric=[False] + [True] * 5,
                  note="A model that picks one letter for most questions scores the answer key's share of that "
                       "letter; the mmlu_letter_bias check fails above 50%.")]


TASK_SECTIONS_PER_MEASURE = {"mmlu": (mmlu_letters,)}  # extras named by `Task.report_sections`


def _sql(text: str | None) -> str:
    """SQL (or a raw generation) as one clipped code span; backticks become quotes so the span holds."""
    return f"`{clip(text, 140).replace('`', chr(39))}`" if text else "(nothing)"


def errors_section(m: dict, plots: dict[str, str]) -> list[Block]:
    tax = (m.get("errors") or {}).get("taxonomy") or {}
    labels = [lb for lb in m["labels"] if lb in tax]
    if not labels:
        return []
    classes = ["ok", *FAILURES, *UNSCORABLE]
    classes += sorted({c for lb in labels for c in tax[lb]["classes"]} - set(classes))
    rows = [[lb] + [str(tax[lb]["classes"].get(c, 0)) for c in classes] + [str(tax[lb]["n"])] for lb in labels]
    blocks: list[Block] = [Heading("SQL error taxonomy"),
                           Table(["model"] + classes + ["total"], rows, numeric=[False] + [True] * (len(classes) + 1))]
    kinds = sorted({k for lb in labels for k in tax[lb]["wrong_result_kinds"]})
    if kinds:
        blocks.append(Table(["wrong_result kind"] + labels,
                            [[k] + [str(tax[lb]["wrong_result_kinds"].get(k, 0)) for lb in labels] for k in kinds],
                            numeric=[False] + [True] * len(labels)))
    if "errors" in plots:
        blocks.append(Image(plots["errors"], "Error taxonomy"))
    examples = m["errors"]["examples"]
    if examples:
        rows = [[e["label"], e["kind"] + (" (baseline shown)" if e["shown"] != e["label"] else ""), e["hardness"],
                 clip(e["question"], 100), _sql(e["pred_sql"] or e["raw_generation"]), _sql(e["gold_sql"]),
                 e["class"] + (f": {clip(e['detail'], 40)}" if e["detail"] else "")] for e in examples]
        blocks += [Heading("Example failures", 3),
                   Para("Chosen by rule (a few per class; regressions first: baseline right, fine-tuned wrong; "
                        "then examples the fine-tuning fixed, showing the baseline's failure)."),
                   Table(["model", "kind", "hardness", "question", "predicted SQL", "gold SQL", "class"], rows)]
    return blocks


def curves_section(m: dict, plots: dict[str, str]) -> list[Block]:
    blocks: list[Block] = [Heading("Learning and forgetting over checkpoints")]
    if not m["curves"]:
        blocks.append(Para("No checkpoint was evaluated (set a variant's save_steps and "
                           "eval.evaluate_checkpoints: true)."))
        return blocks
    measures = _measures(m)
    heads = ["variant", "step", "label"] + [f"{x['title']} %" for x in measures]
    rows = []
    for v, curve in m["curves"].items():
        for p in curve["points"]:
            cells = [p["measures"].get(x["key"]) for x in measures]
            rows.append([v, NA if p["step"] is None else str(p["step"]), p["label"]]
                        + [acc_cell({"accuracy_pct": c["pct"], "ci_low_pct": c["ci_low_pct"],
                                     "ci_high_pct": c["ci_high_pct"]}) if c else NA for c in cells])
    blocks.append(Table(heads, rows, numeric=[False, True, False] + [True] * (len(heads) - 3)))
    if "curves" in plots:
        blocks.append(Image(plots["curves"], "Every measure over training steps"))
    return blocks


def _fmt(v: Any) -> str:
    return NA if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _loss(v: Any, digits: int = 4) -> str:
    """A logged loss or norm; NaN and inf print as nan and inf (Python's float format), absent as n/a."""
    return NA if v is None else f"{float(v):.{digits}f}"


def training_section(m: dict, plots: dict[str, str]) -> list[Block]:
    """Per variant: status, loss and gradient norm at start and end; for a diverged one, its message and the
    steps before it stopped; the per-step curves."""
    training = m["training"]
    if not training:
        return []
    heads = ["variant", "status", "steps", "first loss", "last loss", "last grad norm", "max grad norm",
             "eval loss (start → end)", "steps/s", "train time (s)"]
    rows = []
    for v, t in training.items():
        curve = t.get("curve") or []
        norms = [p["grad_norm"] for p in curve if p.get("grad_norm") is not None and math.isfinite(p["grad_norm"])]
        status = t.get("status") or NA
        if status == "diverged":
            status = f"**DIVERGED at step {(t.get('divergence') or {}).get('step', '?')}**"
        steps = t.get("steps", t.get("global_step"))
        rows.append([v, status, NA if steps is None else f"{steps}/{t.get('max_steps', NA)}",
                     _loss(t.get("first_train_loss", curve[0]["loss"] if curve else None)),
                     _loss(t.get("last_train_loss", t.get("final_train_loss"))), _loss(t.get("last_grad_norm"), 3),
                     _loss(max(norms) if norms else None, 3),
                     f"{_loss(t.get('initial_eval_loss'))} → {_loss(t.get('final_eval_loss'))}",
                     _loss(t.get("steps_per_s"), 3), _fmt(t.get("train_seconds"))])
    blocks: list[Block] = [Heading("Training"), Table(
        heads, rows, numeric=[False, False] + [True] * (len(heads) - 2),
        note="Training loss and gradient norm (before clipping) as logged at each optimizer step. "
             "All fields: train/<variant>/result.json.")]
    for v in m["run"].get("diverged") or []:
        t = training[v]
        d = t.get("divergence") or {}
        blocks.append(Alert(t.get("message") or f"training of {v} diverged", "error"))
        last = [p for p in t.get("curve") or [] if d.get("step") is None or p["step"] > d["step"] - 6]
        if last:
            blocks.append(Table(["step", "loss", "grad norm"],
                                [[str(p["step"]), _loss(p["loss"]), _loss(p["grad_norm"], 3)] for p in last],
                                numeric=[True, True, True], note=f"{v}: the last steps before training stopped."))
    if "training" in plots:
        blocks.append(Image(plots["training"], "Training loss and gradient norm per step"))
    return blocks


def runtime_section(m: dict) -> list[Block]:
    blocks: list[Block] = []
    if m["stages"]:
        rows = [[s, NA if d["wall_s"] is None else f"{d['wall_s']:.1f}", _fmt(d.get("cached", ""))]
                for s, d in m["stages"].items()]
        total = sum(d["wall_s"] or 0 for d in m["stages"].values())
        blocks += [Heading("Wall time per stage"), Table(["stage", "wall time (s)", "cached"], rows,
                                                         note=f"Total {total:.1f} s ({total / 60:.1f} min).",
                                                         numeric=[False, True, False])]
    return blocks


def build_blocks(m: dict, plots: dict[str, str]) -> list[Block]:
    """The whole report: header (check status first), then the trade-off and its breakdowns per measure."""
    per_measure = [b for x in _measures(m) for b in measure_section(m, plots, x)]
    return (header(m) + tradeoff_section(m, plots) + seeds_section(m) + checks_section(m) + per_measure
            + errors_section(m, plots) + curves_section(m, plots)
            + training_section(m, plots) + runtime_section(m) + config_section(m)
            + [Para("Generated by `tradeoff-ray report` from the run's saved results; every number is in "
                    "metrics.json (unrounded).")])


def headline_table(m: dict) -> Table:
    """The trade-off in brief (what `tradeoff-ray report` prints): per model, each measure's accuracy and its
    Δ vs the baseline with the 95% CI, '*' where significant after Holm adjustment."""
    measures = _measures(m)
    heads = ["model"] + [h for x in measures for h in (f"{x['title']} %", f"Δ {x['title']}")]
    rows = []
    for lb in _models(m):
        row = [lb]
        for x in measures:
            c = m["comparisons"].get(lb, {}).get(x["key"])
            row += [num((m["labels"][lb].get(x["key"]) or {}).get("accuracy_pct")),
                    (delta_cell(c) + (" *" if c.get("significant") else "")) if c else NA]
        rows.append(row)
    return Table(heads, rows, numeric=[False] + [True] * (len(heads) - 1),
                 note="Δ: percentage points [95% paired bootstrap CI]; * = significant after Holm adjustment.")
