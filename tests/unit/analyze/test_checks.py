"""Sanity checks pass on a healthy run and fail on the failure shapes they exist for."""
from __future__ import annotations

import pytest

from tradeoff_ray.analyze.load import load_run
from tradeoff_ray.analyze.metrics import compute_metrics
from tests.run_fixture import make_run_dir, mmlu_record, sql_record, write_run_dir


def _checks(run_dir, name=None):
    m = compute_metrics(load_run(run_dir), n_boot=100)
    items = [c for c in m["checks"]["items"] if name is None or c["name"] == name]
    return m, items


def _sql(label, n=10, right=range(5), **kw):
    return [sql_record(label, f"e{i}", int(i in right), **kw) for i in range(n)]


def test_healthy_fixture_passes_every_check(tmp_path):
    m, items = _checks(make_run_dir(tmp_path / "run"))
    assert m["checks"]["status"] == "passed" and m["run"]["status"] == "ok"
    assert {c["name"] for c in items} >= {"mmlu_vs_chance", "gold_vs_gold", "adapter_differs", "unscorable_examples"}
    assert all(c["passed"] for c in items)


def test_below_chance_mmlu_fails(tmp_path):
    mmlu = {"baseline": {0: [mmlu_record("baseline", f"q{i}", int(i < 10)) for i in range(100)]}}  # 10%
    m, items = _checks(write_run_dir(tmp_path / "r", mmlu=mmlu), "mmlu_vs_chance")
    assert items[0]["status"] == "failed" and items[0]["passed"] is False and "BELOW" in items[0]["detail"]
    assert m["run"]["status"] == "checks_failed"


def test_chance_level_mmlu_is_not_a_failure(tmp_path):
    mmlu = {"baseline": {0: [mmlu_record("baseline", f"q{i}", int(i < 22)) for i in range(100)]}}  # CI holds 25%
    _, items = _checks(write_run_dir(tmp_path / "r", mmlu=mmlu), "mmlu_vs_chance")
    assert items[0]["passed"] is True


def test_identical_adapter_outputs_fail(tmp_path):
    base = _sql("baseline")
    same = [sql_record("v", r.example_id, r.ex, pred_sql=r.pred_sql, raw_generation=r.raw_generation) for r in base]
    _, items = _checks(write_run_dir(tmp_path / "r", sql={"baseline": base, "v": same}), "adapter_differs")
    assert items[0]["label"] == "v" and items[0]["status"] == "failed" and "0.0%" in items[0]["detail"]


def test_different_adapter_outputs_pass(tmp_path):
    _, items = _checks(write_run_dir(tmp_path / "r", sql={"baseline": _sql("baseline"), "v": _sql("v", right=[])}),
                       "adapter_differs")
    assert items[0]["passed"] is True


def test_gold_below_100_fails_and_missing_gold_is_not_run(tmp_path):
    gold = _sql("gold", right=range(9))  # e9 wrong
    m, items = _checks(write_run_dir(tmp_path / "a", sql={"baseline": _sql("baseline"), "gold": gold}), "gold_vs_gold")
    assert items[0]["status"] == "failed" and "e9" in items[0]["detail"]
    m, items = _checks(write_run_dir(tmp_path / "b", sql={"baseline": _sql("baseline")}), "gold_vs_gold")
    assert items[0]["status"] == "not_run" and items[0]["passed"] is None
    assert m["checks"]["status"] == "passed" and m["checks"]["not_run"] == ["gold_vs_gold (gold)"]


def test_unscorable_examples_counted_by_reason(tmp_path):
    recs = _sql("baseline", n=6) + [
        sql_record("baseline", "m1", None, error="missing_db", db_id="wta_1", pred_sql=None),
        sql_record("baseline", "m2", None, error="missing_db", db_id="wta_1", pred_sql=None),
        sql_record("baseline", "g1", None, error="gold_error"),
    ]
    m, items = _checks(write_run_dir(tmp_path / "a", sql={"baseline": recs}), "unscorable_examples")
    assert items[0]["passed"] is True
    assert "6 of 9 scorable" in items[0]["detail"] and "2 missing_db (wta_1)" in items[0]["detail"]
    assert m["labels"]["baseline"]["spider"]["unscorable"] == {"missing_db": 2, "gold_error": 1}
    # ex null without an explaining error is a scorer bug
    recs.append(sql_record("baseline", "x1", None, error="ok"))
    _, items = _checks(write_run_dir(tmp_path / "b", sql={"baseline": recs}), "unscorable_examples")
    assert items[0]["status"] == "failed" and "1 other" in items[0]["detail"]


@pytest.mark.parametrize("field", ["prompt_hash"])
def test_changed_prompts_fail(tmp_path, field):
    base = _sql("baseline")
    other = [sql_record("v", r.example_id, r.ex, **{field: "different"}) for r in base]
    _, items = _checks(write_run_dir(tmp_path / "r", sql={"baseline": base, "v": other}), "same_examples_and_prompts")
    assert items[0]["status"] == "failed" and "different prompt" in items[0]["detail"]


def _letters(label, preds, answers):
    return [mmlu_record(label, f"q{i}", int(p == a), pred=p, answer=a) for i, (p, a) in enumerate(zip(preds, answers))]


ANSWERS = ("ABCD" * 50)[:200]


def test_letter_bias_fails_on_a_constant_predictor(tmp_path):
    mmlu = {"baseline": {0: _letters("baseline", "A" * 200, ANSWERS)}}
    m, items = _checks(write_run_dir(tmp_path / "r", mmlu=mmlu), "mmlu_letter_bias")
    assert items[0]["status"] == "failed" and "'A' is 100.0% of answers" in items[0]["detail"]
    assert "mmlu_letter_bias (baseline, 0-shot)" in m["checks"]["failed"]
    assert m["labels"]["baseline"]["mmlu_0shot"]["pred_letters"] == {"A": 200, "B": 0, "C": 0, "D": 0, "none": 0}


def test_letter_bias_fails_at_chance_even_with_spread_letters(tmp_path):
    # letters spread evenly over A-D, one question in four right: 25%, no letter preference
    preds = "".join(a if i % 4 == 0 else "ABCD"[("ABCD".index(a) + 1) % 4] for i, a in enumerate(ANSWERS))
    mmlu = {"baseline": {0: _letters("baseline", preds, ANSWERS)}}
    _, items = _checks(write_run_dir(tmp_path / "r", mmlu=mmlu), "mmlu_letter_bias")
    assert items[0]["status"] == "failed" and "within the chance band" in items[0]["detail"]
    assert "of answers" not in items[0]["detail"]


def test_letter_bias_passes_with_spread_letters_and_real_knowledge(tmp_path):
    preds = "".join(a if i % 10 < 6 else "ABCD"[("ABCD".index(a) + 1) % 4] for i, a in enumerate(ANSWERS))  # 60%
    mmlu = {"baseline": {0: _letters("baseline", preds, ANSWERS)}}
    _, items = _checks(write_run_dir(tmp_path / "r", mmlu=mmlu), "mmlu_letter_bias")
    assert items[0]["status"] == "passed", items[0]["detail"]


def test_comparisons_carry_holm_adjusted_p_and_the_minimum_detectable_effect(tmp_path):
    m, _ = _checks(make_run_dir(tmp_path / "run"))
    blocks = []
    for comp in m["comparisons"].values():
        for key in ("spider", "mmlu_0shot", "mmlu_5shot"):
            blocks += [comp[key], *comp[key]["by_group"].values()]
    assert m["multiple_comparisons"]["family_size"] == sum(b["p_value"] is not None for b in blocks) > 10
    for b in blocks:
        if b["p_value"] is not None:
            assert b["p_holm"] >= b["p_value"] and b["significant"] == (b["p_holm"] < 0.05)
            assert 0 < b["mde_pp"] <= 100
