"""Result comparison: official test-suite semantics and mismatch sub-kinds."""
from __future__ import annotations

import time

from tradeoff_ray.score.sql_compare import match_detail, results_match, strict_match


def test_row_order_matters_only_with_order_by():
    gold, pred = [(1,), (2,)], [(2,), (1,)]
    assert results_match(gold, pred, order_matters=False)
    assert not results_match(gold, pred, order_matters=True)
    assert match_detail(gold, pred, order_matters=True) == (False, "row_order")


def test_column_permutation_matches_and_is_reported():
    gold = [("Ana", 31), ("Bo", 25)]
    pred = [(25, "Bo"), (31, "Ana")]
    assert results_match(gold, pred, order_matters=False)
    assert not strict_match(gold, pred, order_matters=False)
    assert match_detail(gold, pred, order_matters=False) == (True, "column_order_only")
    assert match_detail(gold, [(31, "Ana"), (25, "Bo")], order_matters=True) == (True, "column_order_only")


def test_permutation_must_be_consistent_across_rows():
    gold = [(1, 2), (3, 4)]
    pred = [(1, 2), (4, 3)]  # each row is some permutation, but not the same one
    assert not results_match(gold, pred, order_matters=False)


def test_duplicates_matter():
    assert not results_match([(1,), (1,), (2,)], [(1,), (2,), (2,)], order_matters=False)
    assert match_detail([(1,), (1,), (2,)], [(1,), (2,)], order_matters=False) == (False, "distinct_only")
    assert match_detail([("a",), ("b",)], [("a",), ("a",), ("b",)], order_matters=False)[1] == "distinct_only"


def test_empty_results():
    assert results_match([], [], order_matters=True)
    assert match_detail([], [(1,)], order_matters=False) == (False, "empty_vs_nonempty")
    assert match_detail([(1,)], [], order_matters=False) == (False, "empty_vs_nonempty")


def test_row_and_column_counts_must_agree():
    assert match_detail([(1,)], [(1, 1)], order_matters=False) == (False, "different_columns")
    assert match_detail([(1,), (2,)], [(1,), (3,)], order_matters=False) == (False, "different_rows")


def test_values_compared_exactly():
    assert not results_match([(0.3,)], [(0.1 + 0.2,)], order_matters=False)
    assert not results_match([("1",)], [(1,)], order_matters=False)
    assert results_match([(1,)], [(1.0,)], order_matters=False)  # Python equality, as the official evaluator
    assert results_match([(None, "x")], [("x", None)], order_matters=False)


def test_identical_and_repeated_columns_do_not_explode():
    n_cols = 9
    gold = [tuple([i] * n_cols) for i in range(200)]
    pred = [tuple(reversed(r)) for r in gold]
    start = time.perf_counter()
    assert results_match(gold, pred, order_matters=False)
    swapped = [r[:-2] + (r[-1] + 1, r[-2]) for r in gold]
    assert not results_match(gold, swapped, order_matters=False)
    assert time.perf_counter() - start < 1.0


def test_columns_with_equal_value_sets_need_a_joint_check():
    gold = [(1, 1), (2, 2), (1, 2)]
    pred = [(1, 2), (2, 1), (1, 1)]  # same per-column multisets, different rows
    assert not results_match(gold, pred, order_matters=False)
    assert results_match(gold, [(2, 1), (1, 1), (2, 2)], order_matters=False)
