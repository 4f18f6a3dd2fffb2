"""A run with a full fine-tune and a two-seed LoRA variant on the demo data: both train, are evaluated the
same way as any adapter, and the report shows the full fine-tune's trade-off and the seed mean."""
from __future__ import annotations

import json

import pytest

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.experiment import Experiment
from tradeoff_ray.rundir import new_run_dir

pytestmark = pytest.mark.integration

FULL = {"name": "full", "method": "full", "max_steps": 2, "save_steps": 1, "per_device_batch_size": 2,
        "learning_rate": 1e-3}
PAIR = {"name": "pair", "r": 4, "alpha": 8, "learning_rate": 1e-2, "max_steps": 2, "per_device_batch_size": 2,
        "seeds": [0, 1]}


@pytest.fixture(scope="module")
def run(local_ray, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full_seeds")
    cfg = ExperimentConfig(
        name="full-seeds", output_dir=str(out), model={"name": str(tiny_model_dir)},
        data={"dev_limit": 4, "train_limit": 16, "validation_limit": 4, "mmlu_per_category": 1},
        eval={"max_new_tokens": 8, "batch_size": 8},
        training={"variants": [FULL, PAIR], "cpus_per_worker": 1})
    run_dir = new_run_dir(cfg)
    Experiment(cfg, run_dir).run()
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_full_fine_tune_trains_every_weight_and_is_evaluated(run, tiny_model_dir):
    run_dir, metrics = run
    model = run_dir / "train" / "full" / "model"
    assert (model / "config.json").is_file() and list(model.glob("*.safetensors"))
    assert not (model / "optimizer.pt").exists() and not (run_dir / "train" / "full" / "adapter").exists()
    result = json.loads((run_dir / "train" / "full" / "result.json").read_text())
    from transformers import AutoModelForCausalLM

    n_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    assert result["status"] == "trained" and result["trainable_params"] == n_params
    assert sorted(p.name for p in (run_dir / "train" / "full" / "checkpoints").iterdir()) == ["step-1", "step-2"]
    assert (run_dir / "evals" / "full" / "spider.jsonl").is_file()
    comp = metrics["comparisons"]["full"]
    assert comp["spider"]["n_paired"] == metrics["labels"]["baseline"]["spider"]["n"]
    differs = next(c for c in metrics["checks"]["items"] if c["name"] == "adapter_differs" and c["label"] == "full")
    assert differs["status"] in ("passed", "failed")  # it ran on the full model's outputs


def test_two_seeds_train_separately_and_report_their_mean(run):
    run_dir, metrics = run
    for k in (0, 1):
        result = json.loads((run_dir / "train" / f"pair-seed{k}" / "result.json").read_text())
        assert result["settings"]["seed"] == k and result["settings"]["seed_group"] == "pair"
    group = metrics["seeds"]["pair"]
    assert group["seeds"] == [0, 1] and group["labels"] == ["pair-seed0", "pair-seed1"]
    assert group["measures"]["spider"]["n_seeds"] == 2
    assert "pair (mean of 2 seeds)" in (run_dir / "report.md").read_text()
