"""Minimum detectable effect and Holm adjustment: the numbers that say what a comparison can show."""
from __future__ import annotations

import math

import pytest

from tradeoff_ray.stats import holm_adjust, min_detectable_effect


def test_mde_matches_the_textbook_case_and_shrinks_with_n():
    # 200 paired questions with 20% discordance: ~9 pp (normal approximation (1.96 + 0.84) * sqrt(0.2 / 200)).
    assert min_detectable_effect(200, 0.20) == pytest.approx(0.088, abs=0.002)
    # The full MMLU test split at the same discordance detects ~8x smaller effects.
    assert min_detectable_effect(14042, 0.20) == pytest.approx(0.0106, abs=0.0005)
    values = [min_detectable_effect(n, 0.1) for n in (50, 200, 1000, 14042)]
    assert values == sorted(values, reverse=True)


def test_mde_never_exceeds_what_the_discordance_allows_and_stays_finite():
    # With no disagreement observed, the bound is the all-one-way case, not zero.
    d = min_detectable_effect(200, 0.0)
    assert 0 < d < 0.1 and math.isfinite(d)
    assert min_detectable_effect(200, 0.5) > min_detectable_effect(200, 0.05)
    assert min_detectable_effect(0, 0.2) is None


def test_holm_multiplies_by_rank_keeps_order_and_skips_missing():
    adjusted = holm_adjust([0.01, 0.04, None, 0.03])
    # sorted: 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> made monotone: 0.06
    assert adjusted == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm_adjust([]) == []
    assert holm_adjust([0.9, 0.8]) == [1.0, 1.0]
