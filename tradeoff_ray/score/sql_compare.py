"""Compare two query results with the official Spider test-suite semantics, and say how they differ.

Semantics (Zhong, Yu & Klein 2020, test-suite-sql-eval `exec_eval.result_eq`):
- results are multisets of rows (duplicates count); row order matters only when the gold query
  has ORDER BY (the caller decides `order_matters`, see sql_text.has_order_by);
- the prediction matches if *some* permutation of its columns matches the gold result, which
  needs the same number of rows and of columns; two empty results match;
- values are compared exactly, as Python compares what sqlite3 returns (so 1 == 1.0, '1' != 1,
  0.30000000000000004 != 0.3).

Speed: the official evaluator tries column permutations filtered by sampled values. Here a gold
column can only map to a predicted column with the same multiset of values (a necessary
condition), and the search assigns columns one at a time, keeping a partial assignment only while
the projected rows still match as multisets (sequences when order matters). Identical results are
accepted at once, so the common case costs one pass over the rows.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

Rows = Sequence[tuple]

# wrong_result sub-kinds (records.SqlResult.error_detail) and the ok-but-notable one.
ROW_ORDER = "row_order"
DISTINCT_ONLY = "distinct_only"
EMPTY_VS_NONEMPTY = "empty_vs_nonempty"
DIFFERENT_COLUMNS = "different_columns"
DIFFERENT_ROWS = "different_rows"
COLUMN_ORDER_ONLY = "column_order_only"


def strict_match(gold: Rows, pred: Rows, *, order_matters: bool) -> bool:
    """Equal results with columns taken in the order given (no permutation)."""
    if order_matters:
        return list(gold) == list(pred)
    return len(gold) == len(pred) and Counter(gold) == Counter(pred)


def results_match(gold: Rows, pred: Rows, *, order_matters: bool) -> bool:
    """Official execution match: equal multisets (or sequences) of rows up to a column permutation."""
    return _match(gold, pred, order_matters)[0]


def _match(gold: Rows, pred: Rows, order_matters: bool) -> tuple[bool, bool]:
    """(match up to a column permutation, match with columns as given)."""
    if not gold and not pred:
        return True, True
    if len(gold) != len(pred):
        return False, False
    width = len(gold[0])
    if any(len(r) != width for r in pred) or any(len(r) != width for r in gold):
        return False, False
    if strict_match(gold, pred, order_matters=order_matters):
        return True, True
    return _permutation_exists(gold, pred, width, order_matters), False


def _permutation_exists(gold: Rows, pred: Rows, width: int, order_matters: bool) -> bool:
    gold_cols = list(zip(*gold))
    pred_cols = list(zip(*pred))
    if order_matters:
        # Rows stay aligned, so each gold column must equal some predicted column as a sequence.
        return Counter(gold_cols) == Counter(pred_cols)
    gold_sig = [_signature(c) for c in gold_cols]
    pred_sig = [_signature(c) for c in pred_cols]
    if Counter(gold_sig) != Counter(pred_sig):
        return False
    candidates = [[j for j in range(width) if pred_sig[j] == gold_sig[i]] for i in range(width)]
    order = sorted(range(width), key=lambda i: len(candidates[i]))  # most constrained column first
    return _assign(0, order, candidates, gold_cols, pred_cols, [], [], set())


def _signature(column: tuple) -> frozenset:
    return frozenset(Counter(column).items())


def _assign(depth: int, order: list[int], candidates: list[list[int]], gold_cols: list, pred_cols: list,
            gold_sel: list[int], pred_sel: list[int], used: set[int]) -> bool:
    if depth == len(order):
        return True
    i = order[depth]
    tried_columns = set()
    for j in candidates[i]:
        if j in used or pred_cols[j] in tried_columns:  # identical columns are interchangeable
            continue
        tried_columns.add(pred_cols[j])
        gs, ps = gold_sel + [i], pred_sel + [j]
        if len(gs) > 1 and Counter(zip(*(gold_cols[k] for k in gs))) != Counter(zip(*(pred_cols[k] for k in ps))):
            continue
        used.add(j)
        if _assign(depth + 1, order, candidates, gold_cols, pred_cols, gs, ps, used):
            return True
        used.discard(j)
    return False


def mismatch_kind(gold: Rows, pred: Rows, *, order_matters: bool) -> str:
    """Why `pred` does not match `gold` (call only when results_match is False)."""
    if bool(gold) != bool(pred):
        return EMPTY_VS_NONEMPTY
    if gold and len(gold[0]) != len(pred[0]):
        return DIFFERENT_COLUMNS
    if order_matters and results_match(gold, pred, order_matters=False):
        return ROW_ORDER
    gold_set, pred_set = list(dict.fromkeys(gold)), list(dict.fromkeys(pred))
    if (len(gold_set), len(pred_set)) != (len(gold), len(pred)) and \
            results_match(gold_set, pred_set, order_matters=False):
        return DISTINCT_ONLY
    return DIFFERENT_ROWS


def match_detail(gold: Rows, pred: Rows, *, order_matters: bool) -> tuple[bool, str | None]:
    """(match, detail): detail is the mismatch kind, or COLUMN_ORDER_ONLY for a match that needed
    a column permutation (still a match: EX = 1), or None."""
    match, strict = _match(gold, pred, order_matters)
    if match:
        return True, (None if strict else COLUMN_ORDER_ONLY)
    return False, mismatch_kind(gold, pred, order_matters=order_matters)
