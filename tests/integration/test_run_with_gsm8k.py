"""`tradeoff-ray run` with GSM8K among the tasks: every label gets GSM8K records, the comparison of the adapter
with the baseline covers both GSM8K readings, and the trade-off table and the report show them beside
Spider and MMLU. A tiny model on the demo data and a GSM8K folder written here; CPU, local Ray."""
from __future__ import annotations

import json

import pytest

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.experiment import Experiment
from tradeoff_ray.records import read_jsonl
from tradeoff_ray.rundir import new_run_dir

pytestmark = pytest.mark.integration

LORA = {"name": "tiny", "r": 4, "alpha": 8, "learning_rate": 1e-2, "max_steps": 2, "save_steps": 2,
        "per_device_batch_size": 2}


def write_gsm8k(root):
    def problem(i: int) -> dict:
        return {"question": f"Tom has {i} apples and buys {i + 2} more. How many apples does he have?",
                "answer": f"He has {i} + {i + 2} = <<{i}+{i + 2}={2 * i + 2}>>{2 * i + 2} apples.\n#### {2 * i + 2}"}

    root.mkdir()
    (root / "test.jsonl").write_text("".join(json.dumps(problem(i)) + "\n" for i in range(1, 6)))
    (root / "train.jsonl").write_text("".join(json.dumps(problem(i)) + "\n" for i in range(10, 13)))
    return root


def test_run_puts_gsm8k_in_the_tradeoff_table_and_the_report(local_ray, tiny_model_dir, tmp_path):
    cfg = ExperimentConfig(
        name="with-gsm8k", output_dir=str(tmp_path / "runs"), model={"name": str(tiny_model_dir)},
        data={"dev_limit": 4, "train_limit": 16, "validation_limit": 4, "mmlu_per_category": 1,
              "gsm8k_dir": str(write_gsm8k(tmp_path / "gsm8k")), "gsm8k_limit": 3},
        eval={"max_new_tokens": 8, "batch_size": 8, "gsm8k_max_new_tokens": 16},
        training={"variants": [LORA], "cpus_per_worker": 1})
    assert cfg.eval.tasks is None  # gsm8k joins the default tasks because its data is given
    run_dir = new_run_dir(cfg)
    Experiment(cfg, run_dir).run()

    for label in ("baseline", "tiny"):
        records = list(read_jsonl(run_dir / "evals" / label / "gsm8k.jsonl"))
        assert len(records) == 3 and {r["label"] for r in records} == {label}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    keys = [m["key"] for m in metrics["run"]["measures"]]
    assert {"spider", "gsm8k_flexible", "gsm8k_strict"} <= set(keys) and any(k.startswith("mmlu") for k in keys)
    comp = metrics["comparisons"]["tiny"]
    assert comp["gsm8k_flexible"]["n_paired"] == 3 and comp["gsm8k_strict"]["n_paired"] == 3
    baseline = metrics["labels"]["baseline"]["gsm8k_flexible"]
    assert baseline["correct"] == sum(r["correct_flexible"] for r in read_jsonl(
        run_dir / "evals" / "baseline" / "gsm8k.jsonl"))
    report = (run_dir / "report.md").read_text()
    table = report.split("## Trade-off vs baseline", 1)[1].split("\n\n", 2)[1]
    header = table.splitlines()[0]
    assert "GSM8K flexible %" in header and "GSM8K strict %" in header and "Spider EX %" in header
    assert "| tiny |" in table
