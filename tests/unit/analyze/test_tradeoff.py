"""Trade-off numbers: hand-computed values, the fixture recounted independently, metrics.json consistency."""
from __future__ import annotations

import json

import pytest

from tradeoff_ray.analyze.load import load_run
from tradeoff_ray.analyze.metrics import compute_metrics, write_metrics
from tradeoff_ray.stats import wilson_interval
from tradeoff_ray.analyze.tradeoff import pareto_front
from tests.run_fixture import make_run_dir, mmlu_record, sql_record, write_run_dir

BASE_RIGHT = {0, 1, 2, 3}
VARIANT_RIGHT = {0, 1, 2, 4, 5, 6}
HARD = ["easy", "easy", "medium", "medium", "hard", "hard", "extra", "extra"]


@pytest.fixture
def hand_run(tmp_path):
    sql = {}
    for label, right in (("baseline", BASE_RIGHT), ("v", VARIANT_RIGHT)):
        recs = [sql_record(label, f"e{i}", int(i in right), hardness=HARD[i]) for i in range(8)]
        recs.append(sql_record(label, "e8", None, error="missing_db", db_id="wta_1", pred_sql=None))
        sql[label] = recs
    mmlu = {"baseline": {0: [mmlu_record("baseline", f"q{i}", int(i < 3)) for i in range(4)]},
            "v": {0: [mmlu_record("v", f"q{i}", int(i < 2)) for i in range(4)]}}
    config = {"name": "hand", "training": {"variants": [{"name": "v", "max_steps": 10}]}}
    return write_run_dir(tmp_path / "run", sql=sql, mmlu=mmlu, config=config)


def test_hand_computed_tradeoff(hand_run):
    m = compute_metrics(load_run(hand_run), n_boot=500)
    base, var = m["labels"]["baseline"]["spider"], m["labels"]["v"]["spider"]
    assert (base["n"], base["correct"], base["n_total"], base["unscorable"]) == (8, 4, 9, {"missing_db": 1})
    assert base["accuracy_pct"] == 50.0 and var["accuracy_pct"] == 75.0
    iv = wilson_interval(4, 8)
    assert base["ci_low_pct"] == pytest.approx(100 * iv.low) and base["ci_high_pct"] == pytest.approx(100 * iv.high)
    assert base["by_group"]["easy"]["accuracy_pct"] == 100.0 and base["by_group"]["hard"]["accuracy_pct"] == 0.0
    c = m["comparisons"]["v"]["spider"]
    assert c["delta_pp"] == 25.0 and c["delta_rel_pct"] == 50.0 and c["n_paired"] == 8
    assert (c["baseline_only_right"], c["variant_only_right"]) == (1, 3)
    assert c["p_value"] == pytest.approx(2 * (1 + 4) / 16)  # exact binomial, n = 4 discordant, k = 1
    assert c["ci_low_pp"] <= 25.0 <= c["ci_high_pp"]
    assert c["by_group"]["hard"]["delta_pp"] == 100.0  # e4, e5: baseline 0/2, variant 2/2
    mm = m["comparisons"]["v"]["mmlu_0shot"]
    assert mm["baseline_pct"] == 75.0 and mm["variant_pct"] == 50.0 and mm["delta_pp"] == -25.0
    assert set(m["pareto"]["front"]) == {"baseline", "v"}  # v trades MMLU for EX: neither dominates


def test_fixture_numbers_equal_an_independent_recount(tmp_path):
    run = make_run_dir(tmp_path / "run")
    _, m = write_metrics(run, n_boot=200)
    for label_dir in (run / "evals").iterdir():
        rows = [json.loads(line) for line in (label_dir / "spider.jsonl").read_text().splitlines()]
        scored = [r["ex"] for r in rows if r["ex"] is not None]
        assert m["labels"][label_dir.name]["spider"]["accuracy_pct"] == pytest.approx(100 * sum(scored) / len(scored))
        path = label_dir / "mmlu.jsonl"
        for k in (0, 5):
            if path.exists():
                q = [r for r in map(json.loads, path.read_text().splitlines()) if r["shots"] == k]
                stem = [r["correct"] for r in q if r["category"] == "STEM"]
                block = m["labels"][label_dir.name][f"mmlu_{k}shot"]
                assert block["accuracy_pct"] == pytest.approx(100 * sum(r["correct"] for r in q) / len(q))
                assert block["by_group"]["STEM"]["accuracy_pct"] == pytest.approx(100 * sum(stem) / len(stem))
    assert m["run"]["data"]["spider"]["missing_dbs"] == {"wta_1": 8}


def _deltas(comp: dict):
    yield comp
    yield from comp.get("by_group", {}).values()


def test_metrics_json_is_internally_consistent(tmp_path):
    run = make_run_dir(tmp_path / "run", seed=3)
    path, _ = write_metrics(run, n_boot=200)
    m = json.loads(path.read_text())  # check what is on disk, after the JSON round trip
    assert m["comparisons"]
    for label, comp in m["comparisons"].items():
        keys = [k for k in comp if k != "baseline"]
        assert keys == ["spider", "mmlu_0shot", "mmlu_5shot"]
        for key in keys:
            block, b, v = comp[key], m["labels"]["baseline"][key], m["labels"][label][key]
            assert block["baseline_pct"] == b["accuracy_pct"] and block["variant_pct"] == v["accuracy_pct"]
            for d in _deltas(block):
                assert d["delta_pp"] == d["variant_pct"] - d["baseline_pct"]
                assert d["delta_rel_pct"] == pytest.approx(100 * d["delta_pp"] / d["baseline_pct"])
                assert d["ci_low_pp"] <= d["ci_high_pp"] and 0 <= d["p_value"] <= 1
    assert (m["pareto"]["x"], m["pareto"]["y"]) == ("mmlu_0shot", "spider")
    for p in m["pareto"]["points"]:
        assert p["dy_pp"] == m["comparisons"][p["label"]]["spider"]["delta_pp"]
        assert p["dx_pp"] == m["comparisons"][p["label"]]["mmlu_0shot"]["delta_pp"]


def test_unpaired_examples_are_counted_and_flagged(hand_run):
    sql_path = hand_run / "evals" / "v" / "spider.jsonl"
    lines = sql_path.read_text().splitlines()
    sql_path.write_text("\n".join(lines[2:]) + "\n")  # the variant lost e0, e1 (both right for both)
    m = compute_metrics(load_run(hand_run), n_boot=200)
    c = m["comparisons"]["v"]["spider"]
    assert c["n_paired"] == 6 and c["n_variant"] == 6
    assert c["delta_pp"] == m["labels"]["v"]["spider"]["accuracy_pct"] - 50.0
    same = [x for x in m["checks"]["items"] if x["name"] == "same_examples_and_prompts"]
    assert same[0]["status"] == "failed"


def test_pareto_front():
    pts = {"a": (0.0, 0.0), "b": (-1.0, 5.0), "c": (-2.0, 4.0), "d": (1.0, -1.0), "e": (-1.0, 5.0)}
    assert set(pareto_front(pts)) == {"a", "b", "d", "e"}  # c is dominated by b; ties both stay
