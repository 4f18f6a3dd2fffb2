"""Sanity checks that catch a broken measurement before anyone reads its numbers.

Each check is {"name", "label", "status": "passed" | "failed" | "not_run", "passed": bool | None,
"detail"}; `passed` is None exactly when the check could not run (never counted as passed). The
source studies this project comes from published an MMLU baseline below chance (a broken answer
parser) and scored a few-shot demo instead of the answer; a Ray/vLLM bug once served the base model
in place of the adapter. These checks look for those failure shapes in the saved records.

Three checks apply to every task: gold_vs_gold (a task's reference outputs, served as predictions, score
100 %), adapter_differs, same_examples_and_prompts. A task names the others that apply to it
(`Task.checks`); they are implemented here, in `TASK_CHECKS`.
"""
from __future__ import annotations

from typing import Any

from tradeoff_ray.analyze.load import RunData, label_kind
from tradeoff_ray.records import BASELINE, GOLD
from tradeoff_ray.tasks import Task

UNSCORABLE_REASONS = ("missing_db", "gold_error")

CHANCE_PCT = 25.0  # four options


def _check(name: str, label: str | None, passed: bool | None, detail: str, **extra: Any) -> dict[str, Any]:
    status = "not_run" if passed is None else "passed" if passed else "failed"
    return {"name": name, "label": label, "status": status, "passed": passed, "detail": detail, **extra}


def _task_blocks(run: RunData, labels: dict[str, dict], task: Task):
    """(label, shots, measure block) of every label and measure of `task`."""
    keys = [m.key for t, m in run.measures() if t.name == task.name]
    for label in run.labels:
        for key in keys:
            if key in labels[label]:
                yield label, key.removeprefix(f"{task.name}_").removesuffix("shot"), labels[label][key]


def mmlu_vs_chance(run: RunData, labels: dict[str, dict], task: Task) -> list[dict[str, Any]]:
    """Fail when a label's MMLU CI lies entirely below 25%: worse than guessing means broken extraction."""
    out = []
    for label, shots, block in _task_blocks(run, labels, task):
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


def mmlu_letter_bias(run: RunData, labels: dict[str, dict], task: Task) -> list[dict[str, Any]]:
    """Fail when a label's MMLU score cannot measure knowledge: a letter preference, or chance accuracy.

    A model that answers "A" to nearly every question scores about the share of gold "A"s; that number
    moves with the answer key, not with knowledge, so its change after fine-tuning is no evidence of
    forgetting. Likewise an accuracy whose 95% CI contains 25% cannot show a loss. The detail gives the
    predicted and gold letter distributions; the fix is a knowledge-bearing model or cloze scoring.
    """
    out = []
    for label, shots, block in _task_blocks(run, labels, task):
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


def gold_vs_gold(run: RunData, labels: dict[str, dict]) -> list[dict[str, Any]]:
    """Each task's reference outputs, scored as predictions through the model's path, must score 100 % on
    every scorable example (Spider: the gold SQL against itself; GSM8K: the worked solution's number).

    Gold queries that fail to execute are named in the detail (they are excluded from every label and
    counted by `unscorable`), not failed here: this check is about the comparison semantics.
    """
    out = []
    gold_tasks = [t for t in run.tasks if run.records(t.name, GOLD) is not None]
    if not gold_tasks:
        return [_check("gold_vs_gold", GOLD, None,
                       f"not run: no evals/{GOLD}/ (score each task's reference outputs as predictions to run it)")]
    for task in gold_tasks:
        records = run.records(task.name, GOLD)
        for t, m in run.measures():
            if t.name != task.name or m.key not in labels.get(GOLD, {}):
                continue
            members = task.members(records, m)
            scored = [(r, task.outcome(r, m)) for r in members]
            scored = [(r, v) for r, v in scored if v is not None]
            if not scored:
                out.append(_check("gold_vs_gold", GOLD, False, f"{m.title}: no scorable example among {len(members)}",
                                  measure=m.key))
                continue
            block = labels[GOLD][m.key]
            wrong = [r.example_id for r, v in scored if v != 1]
            detail = f"{m.title} {block['accuracy_pct']:.2f}% ({block['correct']}/{block['n']} scorable)"
            if wrong:
                detail += (f"; the reference differs from itself on {len(wrong)} (e.g. {', '.join(wrong[:3])}): the "
                           "scoring is broken")
            gold_errors = sum(getattr(r, "error", None) == "gold_error" for r in members)
            if gold_errors:
                detail += (f"; {gold_errors} gold quer{'y' if gold_errors == 1 else 'ies'} failed to execute "
                           "(excluded everywhere)")
            out.append(_check("gold_vs_gold", GOLD, not wrong, detail, measure=m.key))
    return out


def adapter_differs(run: RunData) -> list[dict[str, Any]]:
    """Fail when every output of a fine-tuned label equals the base model's on the same example (the first
    task with outputs on both sides: generations, or log-likelihoods)."""
    out = []
    for label in run.labels:
        if label_kind(label) not in ("variant", "checkpoint"):
            continue
        pairs, what = [], ""
        for task in run.tasks:
            base = {(r.example_id, task.sort_key(r)): task.fingerprint(r) for r in run.records(task.name, BASELINE) or []
                    if getattr(r, "error", None) != "missing_db"}  # nothing generated without a database
            pairs = [(base[(r.example_id, task.sort_key(r))], task.fingerprint(r))
                     for r in run.records(task.name, label) or [] if base.get((r.example_id, task.sort_key(r)))
                     is not None and task.fingerprint(r) is not None]
            if pairs:
                what = f"{task.title} outputs"
                break
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


def unscorable_reason(r: Any) -> str:
    """Why a Spider example has no EX verdict: missing_db, gold_error, or 'other' (an inconsistent record)."""
    return r.error if r.error in UNSCORABLE_REASONS else "other"


def unscorable(run: RunData, labels: dict[str, dict], task: Task) -> list[dict[str, Any]]:
    """Count unscorable SQL examples and why; fail when the reason is unknown or nothing is scorable."""
    out = []
    for label in run.labels:
        records = run.records(task.name, label)
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
    """Each label must be scored on the baseline's examples with the same prompts (same prompt hashes), task
    by task."""
    out = []
    for label in run.labels:
        if label_kind(label) not in ("variant", "checkpoint"):
            continue
        parts, passed = [], True
        for task in run.tasks:
            base_recs, mine_recs = run.records(task.name, BASELINE), run.records(task.name, label)
            if not base_recs or mine_recs is None:
                continue
            base = {task.sort_key(r): r.prompt_hash for r in base_recs}
            mine = {task.sort_key(r): r.prompt_hash for r in mine_recs}
            missing, extra = base.keys() - mine.keys(), mine.keys() - base.keys()
            changed = [i for i in base.keys() & mine.keys() if base[i] != mine[i]]
            passed = passed and not (missing or extra or changed)
            parts.append(f"{task.name}: {len(base.keys() & mine.keys())} shared"
                         + (f", {len(missing)} missing" if missing else "")
                         + (f", {len(extra)} not in baseline" if extra else "")
                         + (f", {len(changed)} with a different prompt than the baseline's" if changed else ""))
        if parts:
            out.append(_check("same_examples_and_prompts", label, passed, "; ".join(parts)))
    return out


TASK_CHECKS = {"mmlu_vs_chance": mmlu_vs_chance, "mmlu_letter_bias": mmlu_letter_bias,
               "unscorable_examples": unscorable}


def run_checks(run: RunData, labels: dict[str, dict]) -> dict[str, Any]:
    """All checks; status 'failed' when any check failed (not-run checks are listed, not failed)."""
    items = []
    for task in run.tasks:
        for name in task.checks:
            if name not in TASK_CHECKS:
                raise ValueError(f"task {task.name!r} names check {name!r}; known: {sorted(TASK_CHECKS)}")
            items += TASK_CHECKS[name](run, labels, task)
    items += gold_vs_gold(run, labels) + adapter_differs(run) + same_examples(run)
    failed = [check_title(c) for c in items if c["status"] == "failed"]
    return {"status": "failed" if failed else "passed", "failed": failed,
            "not_run": [check_title(c) for c in items if c["status"] == "not_run"], "items": items}


def check_title(check: dict[str, Any]) -> str:
    """'mmlu_vs_chance (baseline, 5-shot)': the check's name and what it looked at."""
    what = [check["label"]] if check.get("label") else []
    if check.get("shots") is not None:
        what.append(f"{check['shots']}-shot")
    if check.get("measure"):
        what.append(check["measure"])
    return f"{check['name']} ({', '.join(what)})" if what else check["name"]
