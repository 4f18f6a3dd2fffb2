"""Statistics: Wilson bounds, exact McNemar, paired bootstrap, pairing on example_id."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tradeoff_ray.stats import mcnemar_exact, paired_bootstrap_delta, wilson_interval
from tradeoff_ray.analyze.tradeoff import compare
from tradeoff_ray.tasks import get_task
from tradeoff_ray.tasks.base import measure_summary
from tests.run_fixture import sql_record


@pytest.mark.parametrize("k,n,low,high", [
    # Newcombe (1998), Stat Med 17:857, Table I, method 3 (score interval without continuity correction)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_bounds(k, n, low, high):
    iv = wilson_interval(k, n)
    assert iv.estimate == pytest.approx(k / n)
    assert iv.low == pytest.approx(low, abs=6e-5) and iv.high == pytest.approx(high, abs=6e-5)


def test_wilson_of_nothing_is_undefined():
    assert math.isnan(wilson_interval(0, 0).estimate)


def test_mcnemar_exact_p_for_a_known_table():
    # b = 1 (base right only), c = 9 (other right only): p = 2 * (C(10,0) + C(10,1)) / 2^10
    base = [1] + [0] * 9 + [1, 1, 0]
    other = [0] + [1] * 9 + [1, 1, 0]
    res = mcnemar_exact(base, other)
    assert (res["b"], res["c"]) == (1, 9)
    assert res["p_value"] == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0  # no discordant pair


def test_paired_bootstrap_covers_the_true_delta():
    rng = np.random.default_rng(1)
    covered, trials, true_delta = 0, 120, 0.10
    for t in range(trials):
        base = rng.random(300) < 0.4
        gain = rng.random(300) < true_delta / 0.6  # flip wrong -> right with a rate giving +0.10 in expectation
        other = base | gain
        iv = paired_bootstrap_delta(base.astype(int), other.astype(int), n_boot=800, seed=t)
        covered += iv.low <= true_delta <= iv.high
    assert 0.85 <= covered / trials <= 1.0


def test_paired_bootstrap_excludes_zero_for_a_clear_gain():
    base = [0] * 50 + [1] * 50
    other = [1] * 30 + [0] * 20 + [1] * 50
    iv = paired_bootstrap_delta(base, other, n_boot=1000)
    assert iv.estimate == pytest.approx(0.3) and iv.low > 0


def test_comparison_pairs_on_example_id_with_mismatched_sets():
    base = [sql_record("baseline", f"e{i}", 1 if i < 5 else 0) for i in range(10)]            # e0..e9
    other = [sql_record("v", f"e{i}", 1 if i in (5, 6, 12) else 0) for i in range(4, 14)]     # e4..e13
    spider = get_task("spider")
    m = spider.measures(base)[0]
    bs, os_ = measure_summary(spider, base, m), measure_summary(spider, other, m)
    c = compare(spider, m, base, other, bs, os_, label="v", n_boot=500)
    assert c["n_paired"] == 6                    # e4..e9 only
    # on e4..e9: base right on e4 only, other right on e5, e6
    assert (c["baseline_only_right"], c["variant_only_right"]) == (1, 2)
    assert c["paired_delta_pp"] == pytest.approx(100 * (2 - 1) / 6)
    # the headline delta is the difference of the two reported accuracies (50% and 30%)
    assert c["delta_pp"] == os_["accuracy_pct"] - bs["accuracy_pct"] == pytest.approx(-20.0)


def test_mcnemar_large_n_agrees_with_the_exact_sum():
    b, c = 600, 900  # n > 1000 takes the log-space path
    exact = 2 * sum(math.comb(b + c, i) for i in range(b + 1)) / 2 ** (b + c)
    res = mcnemar_exact([1] * b + [0] * c, [0] * b + [1] * c)
    assert res["p_value"] == pytest.approx(exact, rel=1e-9)


def test_bootstrap_of_continuous_values_brackets_the_mean():
    from tradeoff_ray.stats import bootstrap_mean_interval

    x = np.random.default_rng(0).normal(3.0, 1.0, size=400)
    iv = bootstrap_mean_interval(x, n_boot=500)
    assert iv.low < x.mean() < iv.high and iv.high - iv.low == pytest.approx(2 * 1.96 / 20, rel=0.25)
