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


def spider_sentence(spider: dict) -> str:
    """'972 of 1034 dev questions scored; 62 excluded (62 no database: wta_1)'."""
    if spider.get("n_total") is None:
        return "no Spider evaluation in this run"
    text = f"{spider['n_scored']} of {spider['n_total']} dev questions scored"
    reasons = []
    if spider["missing_dbs"]:
        reasons.append(f"{sum(spider['missing_dbs'].values())} no database: {', '.join(spider['missing_dbs'])}")
    if spider["gold_errors"]:
        reasons.append(f"{spider['gold_errors']} gold query fails to execute")
    other = spider["n_excluded"] - sum(spider["missing_dbs"].values()) - spider["gold_errors"]
    if other > 0:
        reasons.append(f"{other} for no recorded reason")
    if spider["n_excluded"]:
        text += f"; {spider['n_excluded']} excluded ({'; '.join(reasons)})"
    if spider.get("dev_limit"):
        text += f" — a seeded sample (data.dev_limit={spider['dev_limit']}), not the full dev set"
    return text


def mmlu_sentence(mmlu: dict) -> str:
    if not mmlu.get("shots"):
        return "no MMLU evaluation in this run"
    parts = []
    for k, s in mmlu["shots"].items():
        cats = ", ".join(f"{c} {n}" for c, n in s["by_category"].items())
        parts.append(f"{s['n']} questions at {k}-shot ({cats})")
    return f"{mmlu.get('split') or '?'} split; " + "; ".join(parts)


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
    spider, mmlu = run["data"]["spider"], run["data"]["mmlu"]
    demo = [name for name, d in (("Spider", spider), ("MMLU", mmlu)) if d["is_demo"]]
    if demo:
        blocks.append(Alert(f"{' and '.join(demo)}: built-in demo data, not the real benchmark — set "
                            "data.spider_dir / data.mmlu_dir for publishable numbers.", "warning"))
    blocks.append(Table(["", ""], [
        ["Run", f"`{run['run_dir']}`"],
        ["Model", f"`{run['model']}`"],
        ["Models compared", ", ".join(_models(m)) or NA],
        ["Spider", f"{spider['source']}: {spider_sentence(spider)}"],
        ["MMLU", f"{mmlu['source']}: {mmlu_sentence(mmlu)}"],
    ]))
    return blocks


def config_section(m: dict) -> list[Block]:
    cfg = m["run"]["config"]
    ev, pr = cfg["eval"], cfg["prompt"]
    blocks: list[Block] = [Heading("Configuration"), Para(
        f"Engine `{ev['engine']}`; MMLU scored by `{ev['mmlu_mode']}` at shots {ev['mmlu_shots']}; SQL up to "
        f"{ev['max_new_tokens']} new tokens, {ev['sql_timeout_s']} s timeout, keep_distinct={ev['keep_distinct']}; "
        f"schema from `{pr['schema_source']}`, foreign keys {pr['foreign_keys']}, {pr['sample_rows']} sample rows. "
        "Full settings: config.yaml.")]
    if cfg["variants"]:
        keys = ["name", "method", "r", "alpha", "dropout", "learning_rate", "max_steps", "num_epochs", "quantization",
                "per_device_batch_size", "gradient_accumulation_steps", "save_steps"]
        blocks.append(Table(keys, [[NA if v.get(k) is None else str(v.get(k)) for k in keys] for v in cfg["variants"]]))
    if cfg["tune"]["enabled"]:
        blocks.append(Para(f"Ray Tune sweep: search `{cfg['tune']['search']}`, {cfg['tune']['num_samples']} samples."))
    return blocks


def checks_section(m: dict) -> list[Block]:
    rows = [[c["name"], (c["label"] or "") + (f" {c['shots']}-shot" if c.get("shots") is not None else ""),
             STATUS_MARK[c["status"]], c["detail"]] for c in m["checks"]["items"]]
    return [Heading("Sanity checks"), Table(["check", "on", "status", "detail"], rows)]


def tradeoff_section(m: dict, plots: dict[str, str]) -> list[Block]:
    run = m["run"]
    k = run["primary_shots"]
    headers = ["model", "Spider EX %", "Δ EX pp [95% CI]", "Δ EX rel %", "p (EX)", "p Holm (EX)", "MDE EX pp",
               f"MMLU {k}-shot %" if k is not None else "MMLU %", "Δ MMLU pp [95% CI]", "Δ MMLU rel %", "p (MMLU)",
               "p Holm (MMLU)", "MDE MMLU pp"]
    rows = []
    for lb in _models(m):
        lab, comp = m["labels"][lb], m["comparisons"].get(lb, {})
        sql, mm = comp.get("sql") or {}, (comp.get("mmlu") or {}).get(k) or {}
        rows.append([f"**{lb}**" if lb == run["baseline"] else lb, acc_cell(lab["sql"]), delta_cell(sql),
                     signed(sql.get("delta_rel_pct")), p_cell(sql.get("p_value")), _holm_cell(sql),
                     num(sql.get("mde_pp")), acc_cell(lab["mmlu"].get(k)), delta_cell(mm),
                     signed(mm.get("delta_rel_pct")), p_cell(mm.get("p_value")), _holm_cell(mm), num(mm.get("mde_pp"))])
    for group, g in (m.get("seeds") or {}).items():
        sql, mm = g.get("sql") or {}, (g.get("mmlu") or {}).get(k) or {}
        rows.append([f"{group} (mean of {len(g['seeds'])} seeds)", _seed_acc(sql), _seed_delta(sql), NA, NA, NA, NA,
                     _seed_acc(mm), _seed_delta(mm), NA, NA, NA, NA])
    note = _pairing_note(m)
    if m.get("seeds"):
        note += (" Seed means: accuracy ± its sd over seeds; Δ mean [95% paired bootstrap CI of the per-example "
                 "mean over seeds] ± the sd of Δ over seeds (training noise), range in the Seeds section.")
    blocks: list[Block] = [Heading("Trade-off vs baseline"), Table(headers, rows, note=note,
                                                                   numeric=[False] + [True] * 12)]
    if "tradeoff" in plots:
        front = ", ".join(m["pareto"]["front"])
        blocks += [Para(f"Pareto front on (Δ MMLU {k}-shot, Δ EX), both higher is better: {front}."),
                   Image(plots["tradeoff"], "Trade-off scatter: Δ MMLU vs Δ Spider EX with 95% CIs")]
    elif not run["variants"]:
        blocks.append(Para("Only the baseline was evaluated: there is nothing to compare yet."))
    else:
        blocks.append(Para("No trade-off scatter: it needs both Spider and MMLU results for the baseline and a "
                           "variant."))
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
    """Each seed group: Δ per benchmark for every seed, their mean, sd and range."""
    groups = m.get("seeds") or {}
    if not groups:
        return []
    blocks: list[Block] = [Heading("Seeds"), Para(
        "The same variant trained with different seeds: the spread of Δ across seeds is training noise, "
        "to be set beside the item-sampling CI. A difference between variants smaller than both is not shown.")]
    shots = m["run"]["shots"]
    heads = ["variant", "seeds", "Spider Δ mean [95% CI] ± sd", "Spider Δ range"]
    heads += [f"MMLU {k}-shot Δ mean [95% CI] ± sd" for k in shots] + [f"MMLU {k}-shot Δ range" for k in shots]
    rows = []
    for group, g in groups.items():
        mm = [(g["mmlu"] or {}).get(k) or {} for k in shots]
        rng = [NA if not b else f"{signed(b['delta_min_pp'])} … {signed(b['delta_max_pp'])}" for b in [g["sql"] or {}] + mm]
        rows.append([group, ", ".join(map(str, g["seeds"])), _seed_delta(g["sql"] or {}), rng[0]]
                    + [_seed_delta(b) for b in mm] + rng[1:])
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
        for name, c in [("Spider", comp.get("sql"))] + [(f"MMLU {k}-shot", v) for k, v in comp["mmlu"].items()]:
            if c and c["n_paired"] != max(c["n_baseline"], c["n_variant"]):
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


def hardness_section(m: dict, plots: dict[str, str]) -> list[Block]:
    models = [lb for lb in _models(m) if m["labels"][lb]["sql"]]
    if not models:
        return []
    levels = list(m["labels"][models[0]]["sql"]["by_hardness"])
    ref = m["labels"][models[0]]["sql"]
    heads = ["model"] + [f"{h} (n={ref['by_hardness'][h]['n']})" for h in levels] + [f"overall (n={ref['n']})"]
    acc_rows = [[lb] + [acc_cell(m["labels"][lb]["sql"]["by_hardness"].get(h)) for h in levels]
                + [acc_cell(m["labels"][lb]["sql"])] for lb in models]
    numeric = [False] + [True] * (len(heads) - 1)
    blocks: list[Block] = [Heading("Spider EX by hardness"), Table(heads, acc_rows, numeric=numeric)]
    delta_rows = []
    for lb in models:
        c = m["comparisons"].get(lb, {}).get("sql")
        if c:
            delta_rows.append([lb] + [_delta_p(c["by_hardness"].get(h)) for h in levels] + [_delta_p(c)])
    if delta_rows:
        blocks.append(Table(["Δ pp vs baseline"] + heads[1:], delta_rows, numeric=numeric))
    if "ex_by_hardness" in plots:
        blocks.append(Image(plots["ex_by_hardness"], "Spider EX by hardness"))
    return blocks


def mmlu_section(m: dict, plots: dict[str, str]) -> list[Block]:
    models = [lb for lb in _models(m) if m["labels"][lb]["mmlu"]]
    if not models:
        return []
    blocks: list[Block] = [Heading("MMLU by category")]
    base = m["run"]["baseline"]
    for k in m["run"]["shots"]:
        per = {lb: m["labels"][lb]["mmlu"].get(k) or {} for lb in models}
        ref = per[models[0]]
        if not ref:
            continue
        cats = list(ref["by_category"])
        heads = (["model"] + [f"{c} (n={ref['by_category'][c]['n']})" for c in cats]
                 + [f"micro (n={ref['n']})", "macro"])
        numeric = [False] + [True] * (len(heads) - 1)
        rows = [[lb] + [acc_cell(per[lb].get("by_category", {}).get(c)) for c in cats]
                + [acc_cell(per[lb] or None), num(per[lb].get("macro_accuracy_pct"))] for lb in models]
        blocks += [Heading(f"{k}-shot", 3), Table(heads, rows, numeric=numeric)]
        delta_rows = []
        for lb in models:
            c = (m["comparisons"].get(lb, {}).get("mmlu") or {}).get(k)
            if c:
                macro_b, macro_v = per[base].get("macro_accuracy_pct"), per[lb].get("macro_accuracy_pct")
                macro = None if macro_b is None or macro_v is None else macro_v - macro_b
                delta_rows.append([lb] + [_delta_p(c["by_category"].get(cat)) for cat in cats]
                                  + [_delta_p(c), signed(macro)])
        if delta_rows:
            blocks.append(Table(["Δ pp vs baseline"] + heads[1:], delta_rows, numeric=numeric,
                                note="Δ macro is the difference of the macro averages (no CI)."))
        letters = [lb for lb in models if per[lb].get("pred_letters")]
        if letters:
            keys = ("A", "B", "C", "D", "none")
            gold = per[letters[0]]["gold_letters"]
            rows = [["gold answers"] + [str(gold[x]) for x in keys]]
            rows += [[lb] + [f"{per[lb]['pred_letters'][x]} ({100 * per[lb]['pred_letters'][x] / per[lb]['n']:.0f}%)"
                             for x in keys] for lb in letters]
            blocks.append(Table(["predicted letter"] + list(keys), rows, numeric=[False] + [True] * 5,
                                note="A model that picks one letter for most questions scores the answer key's "
                                     "share of that letter; the mmlu_letter_bias check fails above 50%."))
        no_answer = {lb: per[lb].get("no_answer", 0) for lb in models}
        if any(no_answer.values()):
            blocks.append(Para("Questions with no answer found (scored wrong): "
                               + ", ".join(f"{lb} {n}" for lb, n in no_answer.items()) + "."))
    if "mmlu_by_category" in plots:
        blocks.append(Image(plots["mmlu_by_category"], "MMLU accuracy by category"))
    return blocks


def _sql(text: str | None) -> str:
    """SQL (or a raw generation) as one clipped code span; backticks become quotes so the span holds."""
    return f"`{clip(text, 140).replace('`', chr(39))}`" if text else "(nothing)"


def errors_section(m: dict, plots: dict[str, str]) -> list[Block]:
    tax = m["errors"]["taxonomy"]
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
    shots = m["run"]["shots"]
    heads = ["variant", "step", "label", "Spider EX %"] + [f"MMLU {k}-shot %" for k in shots]
    rows = []
    for v, curve in m["curves"].items():
        for p in curve["points"]:
            sql = {"accuracy_pct": p["sql_pct"], "ci_low_pct": p["sql_ci_low_pct"], "ci_high_pct": p["sql_ci_high_pct"]}
            mmlu = [{"accuracy_pct": p["mmlu"][k]["pct"], "ci_low_pct": p["mmlu"][k]["ci_low_pct"],
                     "ci_high_pct": p["mmlu"][k]["ci_high_pct"]} if k in p["mmlu"] else None for k in shots]
            rows.append([v, NA if p["step"] is None else str(p["step"]), p["label"], acc_cell(sql)]
                        + [acc_cell(b) for b in mmlu])
    blocks.append(Table(heads, rows, numeric=[False, True, False] + [True] * (len(heads) - 3)))
    if "curves" in plots:
        blocks.append(Image(plots["curves"], "Spider EX and MMLU accuracy over training steps"))
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
    """The whole report: header (check status first), then the trade-off and its breakdowns."""
    return (header(m) + tradeoff_section(m, plots) + seeds_section(m) + checks_section(m) + hardness_section(m, plots)
            + mmlu_section(m, plots) + errors_section(m, plots) + curves_section(m, plots)
            + training_section(m, plots) + runtime_section(m) + config_section(m)
            + [Para("Generated by `tradeoff-ray report` from the run's saved results; every number is in "
                    "metrics.json (unrounded).")])


def headline_table(m: dict) -> Table:
    """The trade-off table alone, without the relative-change columns (what `tradeoff-ray report` prints)."""
    t = next(b for b in tradeoff_section(m, {}) if isinstance(b, Table))
    keep = [i for i, h in enumerate(t.headers) if "rel %" not in h]
    return Table([t.headers[i] for i in keep], [[r[i] for i in keep] for r in t.rows], note=t.note,
                 numeric=[t.numeric[i] for i in keep] if t.numeric else None)
