"""Learning/forgetting curves from checkpoint labels."""
from __future__ import annotations

from tradeoff_ray.analyze.load import load_run
from tradeoff_ray.analyze.metrics import compute_metrics
from tradeoff_ray.records import write_json
from tests.run_fixture import make_run_dir, sql_record, write_run_dir


def test_fixture_curve_runs_from_baseline_to_final(tmp_path):
    m = compute_metrics(load_run(make_run_dir(tmp_path / "run")), n_boot=100)
    assert list(m["curves"]) == ["lora-r16"]  # lora-r8 has no checkpoints
    pts = m["curves"]["lora-r16"]["points"]
    assert [(p["step"], p["label"]) for p in pts] == [
        (0, "baseline"), (10, "lora-r16@step10"), (20, "lora-r16@step20"), (30, "lora-r16")]
    for p in pts:
        assert p["measures"]["spider"]["pct"] == m["labels"][p["label"]]["spider"]["accuracy_pct"]
        assert p["measures"]["mmlu_5shot"]["pct"] == m["labels"][p["label"]]["mmlu_5shot"]["accuracy_pct"]


def test_final_step_from_training_result_and_checkpoint_at_final_step_deduplicated(tmp_path):
    sql = {lb: [sql_record(lb, "e0", 1)] for lb in ("baseline", "v", "v@step5", "v@step8")}
    run_dir = write_run_dir(tmp_path / "r", sql=sql,
                            config={"training": {"variants": [{"name": "v", "max_steps": 99}]}})
    m = compute_metrics(load_run(run_dir), n_boot=10)
    assert [p["step"] for p in m["curves"]["v"]["points"]] == [0, 5, 8, 99]  # config max_steps
    write_json(run_dir / "train" / "v" / "result.json", {"global_step": 8})
    m = compute_metrics(load_run(run_dir), n_boot=10)
    assert [(p["step"], p["label"]) for p in m["curves"]["v"]["points"]] == [(0, "baseline"), (5, "v@step5"), (8, "v")]
