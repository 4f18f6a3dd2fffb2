"""Sanity checks that catch a broken measurement before anyone reads its numbers.

Each check is {"name", "label", "status": "passed" | "failed" | "not_run", "passed": bool | None,
"detail"}; `passed` is None exactly when the check could not run (never counted as passed). The
source studies this project comes from published an MMLU baseline below chance (a broken answer
parser) and scored a few-shot demo instead of the answer; a Ray/vLLM bug once served the base model
in place of the adapter. These checks look for those failure shapes in the saved records.
"""
from __future__ import annotations

from typing import Any

from tradeoff_ray.analyze.load import RunData, label_kind
from tradeoff_ray.analyze.tradeoff import rate_block, unscorable_reason
from tradeoff_ray.records import BASELINE, GOLD

CHANCE_PCT = 25.0  # four options


def _check(name: str, label: str | None, passed: bool | None, detail: str, **extra: Any) -> dict[str, Any]:
    status = "not_run" if passed is None else "passed" if passed else "failed"
    return {"name": name, "label": label, "status": status, "passed": passed, "detail": detail, **extra}


def mmlu_vs_chance(run: RunData, labels: dict[str, dict]) -> list[dict[str, Any]]:
    """Fail when a label's MMLU CI lies entirely below 25%: worse than guessing means broken extraction."""
    out = []
    for label in run.labels:
        for shots, block in labels[label]["mmlu"].items():
            name = "mmlu_vs_chance"
            if block["n"] == 0:
                out.append(_check(name, label, None, "no MMLU questions scored", shots=int(shots)))
                continue
            lo, hi, acc = block["ci_low_pct"], block["ci_high_pct"], block["accuracy_pct"]
            passed = hi >= CHANCE_PCT
            where = "above" if lo > CHANCE_PCT else "consistent with" if passed else "BELOW"
            detail = (f"{acc:.1f}% [{lo:.1f}, {hi:.1f}] on {block['n']} questions: {where} chance ({CHANCE_PCT:.0f}%)"
                      + ("" if passed else "; a below-chance score usually means the answer extraction is broken"))
            out.append(_check(name, label, passed, detail, shots=int(shots)))
    return out


LETTER_SHARE_MAX_PCT = 50.0  # one of four letters predicted more often than this = a letter preference


def mmlu_letter_bias(run: RunData, labels: dict[str, dict]) -> list[dict[str, Any]]:
    """Fail when a label's MMLU score cannot measure knowledge: a letter preference, or chance accuracy.

    A model that answers "A" to nearly every question scores about the share of gold "A"s; that number
    moves with the answer key, not with knowledge, so its change after fine-tuning is no evidence of
    forgetting. Likewise an accuracy whose 95% CI contains 25% cannot show a loss. The detail gives the
    predicted and gold letter distributions; the fix is a knowledge-bearing model or cloze scoring.
    """
    out = []
    for label in run.labels:
        for shots, block in labels[label]["mmlu"].items():
            name = "mmlu_letter_bias"
            n = block["n"]
            if n == 0:
                out.append(_check(name, label, None, "no MMLU questions scored", shots=int(shots)))
                continue
            pred, gold = block["pred_letters"], block["gold_letters"]
            top = max(("A", "B", "C", "D"), key=lambda k: pred[k])
            share = 100.0 * pred[top] / n
            dist = ", ".join(f"{k} {pred[k]}" for k in ("A", "B", "C", "D")) + (
                f", none {pred['none']}" if pred["none"] else "")
            gold_dist = ", ".join(f"{k} {gold[k]}" for k in ("A", "B", "C", "D"))
            lo, hi = block["ci_low_pct"], block["ci_high_pct"]
            at_chance = lo <= CHANCE_PCT <= hi
            problems = []
            if share > LETTER_SHARE_MAX_PCT:
                problems.append(f"'{top}' is {share:.1f}% of answers (limit {LETTER_SHARE_MAX_PCT:.0f}%): the score "
                                "follows the answer key's letters, not knowledge")
            if at_chance:
                problems.append(f"accuracy {block['accuracy_pct']:.1f}% [{lo:.1f}, {hi:.1f}] is within the chance band "
                                f"({CHANCE_PCT:.0f}%): a loss of knowledge cannot show")
            detail = f"predicted {dist} (gold {gold_dist}) on {n} questions"
            if problems:
                detail += "; " + "; ".join(problems) + (
                    " — use a model with measurable MMLU knowledge, or length-normalised option scoring (cloze)")
            out.append(_check(name, label, not problems, detail, shots=int(shots), pred_letters=pred,
                              top_letter_pct=share))
    return out


def gold_vs_gold(run: RunData) -> dict[str, Any]:
    """Scoring the gold SQL against itself must give EX = 100% on every scorable example.

    Gold queries that fail to execute are named in the detail (they are excluded from every label and
    counted by `unscorable`), not failed here: this check is about the comparison semantics.
    """
    records = run.sql.get(GOLD)
    if records is None:
        return _check("gold_vs_gold", GOLD, None,
                      f"not run: no evals/{GOLD}/sql.jsonl (score the gold SQL as predictions to run it)")
    scored = [r for r in records if r.ex is not None]
    gold_errors = sum(r.error == "gold_error" for r in records)
    if not scored:
        return _check("gold_vs_gold", GOLD, False, f"no scorable example among {len(records)}")
    block = rate_block(sum(r.ex for r in scored), len(scored))
    wrong = [r.example_id for r in scored if r.ex != 1]
    detail = f"EX {block['accuracy_pct']:.2f}% ({block['correct']}/{block['n']} scorable)"
    if wrong:
        detail += f"; gold differs from itself on {len(wrong)} (e.g. {', '.join(wrong[:3])}): the comparison is broken"
    if gold_errors:
        detail += (f"; {gold_errors} gold quer{'y' if gold_errors == 1 else 'ies'} failed to execute "
                   "(excluded everywhere)")
    return _check("gold_vs_gold", GOLD, not wrong, detail)


def adapter_differs(run: RunData) -> list[dict[str, Any]]:
    """Fail when every generation of a fine-tuned label equals the base model's on the same example."""
    out = []
    base_sql = {r.example_id: r.raw_generation for r in run.sql.get(BASELINE, [])}
    base_mmlu = {(k, r.example_id): r.logprobs for k, recs in run.mmlu.get(BASELINE, {}).items() for r in recs}
    for label in run.labels:
        if label_kind(label) not in ("variant", "checkpoint"):
            continue
        pairs = [(base_sql[r.example_id], r.raw_generation) for r in run.sql.get(label, [])
                 if r.example_id in base_sql and r.error != "missing_db"]  # nothing generated without a db
        what = "SQL generations"
        if not pairs:  # no SQL side: compare MMLU log-likelihoods instead
            pairs = [(base_mmlu[(k, r.example_id)], r.logprobs) for k, recs in run.mmlu.get(label, {}).items()
                     for r in recs if base_mmlu.get((k, r.example_id)) is not None and r.logprobs is not None]
            what = "MMLU log-likelihoods"
        if not pairs:
            out.append(_check("adapter_differs", label, None, "not run: no outputs shared with the baseline"))
            continue
        n_diff = sum(a != b for a, b in pairs)
        frac = 100.0 * n_diff / len(pairs)
        detail = f"{frac:.1f}% of {what} differ from the baseline's ({n_diff}/{len(pairs)})"
        if n_diff == 0:
            detail += ": identical outputs — the base model may have been served instead of the adapter"
        out.append(_check("adapter_differs", label, n_diff > 0, detail))
    return out


def unscorable(run: RunData) -> list[dict[str, Any]]:
    """Count unscorable SQL examples and why; fail when the reason is unknown or nothing is scorable."""
    out = []
    for label in run.labels:
        records = run.sql.get(label)
        if records is None:
            continue
        reasons: dict[str, set[str]] = {}
        for r in records:
            if r.ex is None:
                reasons.setdefault(unscorable_reason(r), set()).add(r.db_id)
        counts = {k: sum(1 for r in records if r.ex is None and unscorable_reason(r) == k) for k in reasons}
        n_bad = sum(counts.values())
        n_scored = len(records) - n_bad
        parts = [f"{counts[k]} {k}" + (f" ({', '.join(sorted(reasons[k]))})" if k == "missing_db" else "")
                 for k in sorted(counts)]
        detail = f"{n_scored} of {len(records)} scorable" + (f"; {n_bad} not: " + ", ".join(parts) if n_bad else "")
        if "other" in counts:
            detail += "; 'other' = ex is null with an error that does not explain it (a scorer bug)"
        passed = n_scored > 0 and "other" not in counts
        out.append(_check("unscorable_examples", label, passed, detail))
    return out


def same_examples(run: RunData) -> list[dict[str, Any]]:
    """Each label must be scored on the baseline's examples with the same prompts (same prompt hashes)."""
    out = []
    base = {r.example_id: r.prompt_hash for r in run.sql.get(BASELINE, [])}
    if not base:
        return out
    for label in run.labels:
        if label_kind(label) not in ("variant", "checkpoint") or label not in run.sql:
            continue
        mine = {r.example_id: r.prompt_hash for r in run.sql[label]}
        missing, extra = base.keys() - mine.keys(), mine.keys() - base.keys()
        changed = [i for i in base.keys() & mine.keys() if base[i] != mine[i]]
        passed = not (missing or extra or changed)
        detail = (f"{len(base.keys() & mine.keys())} shared examples" + (f", {len(missing)} missing" if missing else "")
                  + (f", {len(extra)} not in baseline" if extra else "")
                  + (f", {len(changed)} with a different prompt than the baseline's" if changed else ""))
        out.append(_check("same_examples_and_prompts", label, passed, detail))
    return out


def run_checks(run: RunData, labels: dict[str, dict]) -> dict[str, Any]:
    """All checks; status 'failed' when any check failed (not-run checks are listed, not failed)."""
    items = (mmlu_vs_chance(run, labels) + mmlu_letter_bias(run, labels) + [gold_vs_gold(run)] + adapter_differs(run)
             + unscorable(run) + same_examples(run))
    failed = [check_title(c) for c in items if c["status"] == "failed"]
    return {"status": "failed" if failed else "passed", "failed": failed,
            "not_run": [check_title(c) for c in items if c["status"] == "not_run"], "items": items}


def check_title(check: dict[str, Any]) -> str:
    """'mmlu_vs_chance (baseline, 5-shot)': the check's name and what it looked at."""
    what = [check["label"]] if check.get("label") else []
    if check.get("shots") is not None:
        what.append(f"{check['shots']}-shot")
    return f"{check['name']} ({', '.join(what)})" if what else check["name"]
