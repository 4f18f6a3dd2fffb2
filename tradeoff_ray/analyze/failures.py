"""What went wrong in the SQL: error-taxonomy counts per label and a table of example failures.

The class of a prediction is the scorer's `error` (ok, extraction_failed, syntax_error, unknown_table,
unknown_column, timeout, other_exec_error, wrong_result; unscorable: missing_db, gold_error), with
`wrong_result` split by its sub-kind (`error_detail`: row_order, distinct_only, empty_vs_nonempty,
different_rows, ...). Example failures are chosen like the source study's Table V, but by rule so a
rerun picks the same ones: a few per class and label, regressions first (the baseline got the example
right, the fine-tuned model wrong), then examples the fine-tuned model fixed, in a fixed pseudo-random
order of example ids (a hash) so they spread over databases instead of all coming from the first one.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from tradeoff_ray.analyze.load import RunData, label_kind
from tradeoff_ray.records import BASELINE, SqlResult

TAXONOMY = ("ok", "extraction_failed", "syntax_error", "unknown_table", "unknown_column", "timeout",
            "other_exec_error", "wrong_result")
UNSCORABLE = ("missing_db", "gold_error")
FAILURES = TAXONOMY[1:]


def error_class(r: SqlResult) -> str:
    """The taxonomy class of one record ('unclassified' = wrong with no class given by the scorer)."""
    if r.error:
        return r.error
    if r.ex == 1:
        return "ok"
    return "unclassified" if r.ex == 0 else "other"


def error_counts(records: list[SqlResult]) -> dict[str, Any]:
    """Counts of every class (zeros included, so tables line up) and of wrong_result sub-kinds."""
    counts = Counter(error_class(r) for r in records)
    classes = {c: counts.get(c, 0) for c in TAXONOMY + UNSCORABLE}
    classes.update({c: n for c, n in sorted(counts.items()) if c not in classes})
    kinds = Counter(r.error_detail or "unspecified" for r in records if error_class(r) == "wrong_result")
    return {"n": len(records), "classes": classes, "wrong_result_kinds": dict(sorted(kinds.items()))}


def _order(example_id: str) -> str:
    return hashlib.sha1(example_id.encode()).hexdigest()


def _row(r: SqlResult, *, label: str, shown: str, kind: str) -> dict[str, Any]:
    return {"label": label, "shown": shown, "kind": kind, "example_id": r.example_id, "db_id": r.db_id,
            "hardness": r.hardness, "question": r.question, "pred_sql": r.pred_sql,
            "raw_generation": r.raw_generation if r.pred_sql is None else None, "gold_sql": r.gold_sql,
            "class": error_class(r), "detail": r.error_detail}


def failure_examples(run: RunData, *, per_class: int = 2) -> list[dict[str, Any]]:
    """A few example failures per class for each fine-tuned label (or the baseline when it is alone).

    kind: 'regression' (baseline right, this label wrong), 'both_wrong', 'failure' (no baseline to
    compare with), 'fixed' (baseline wrong, this label right; the baseline's prediction is shown; at
    most 2 x per_class of them, one class after another).
    """
    base = {r.example_id: r for r in run.sql.get(BASELINE, [])}
    shown_labels = [lb for lb in run.labels if label_kind(lb) == "variant" and lb in run.sql]
    if not shown_labels:
        shown_labels = [lb for lb in run.labels if label_kind(lb) == "baseline" and lb in run.sql]
    rows: list[dict[str, Any]] = []
    for label in shown_labels:
        records = run.sql[label]
        compare = label != BASELINE and bool(base)
        for cls in FAILURES:
            cands = [r for r in records if error_class(r) == cls]
            cands.sort(key=lambda r: (0 if compare and getattr(base.get(r.example_id), "ex", None) == 1 else 1,
                                      _order(r.example_id)))
            for r in cands[:per_class]:
                b = base.get(r.example_id)
                kind = ("failure" if not compare or b is None or b.ex is None
                        else "regression" if b.ex == 1 else "both_wrong")
                rows.append(_row(r, label=label, shown=label, kind=kind))
        if not compare:
            continue
        fixed = sorted((base[r.example_id] for r in records
                        if r.ex == 1 and r.example_id in base and base[r.example_id].ex == 0),
                       key=lambda b: _order(b.example_id))
        by_class = [[b for b in fixed if error_class(b) == cls] for cls in FAILURES]
        picks = [b for rank in range(per_class) for group in by_class if rank < len(group) for b in [group[rank]]]
        rows.extend(_row(b, label=label, shown=BASELINE, kind="fixed") for b in picks[:2 * per_class])
    return rows


def error_summary(run: RunData, *, per_class: int = 2) -> dict[str, Any]:
    """{"taxonomy": {label: error_counts}, "examples": failure_examples} for metrics.json."""
    return {"taxonomy": {label: error_counts(run.sql[label]) for label in run.labels if label in run.sql},
            "examples": failure_examples(run, per_class=per_class)}
