"""Ray Tune over a tiny search space (4 trials, tiny model, local Ray with 2 CPUs): every trial trains,
is scored on Spider EX and MMLU by the evaluation pipeline, and lands in trials.csv with a Pareto flag."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.unit.infer.helpers import tiny_data
from tests.unit.train.tiny_spider import make_tiny_spider
from tradeoff_ray.config import ExperimentConfig, cache_root

pytestmark = pytest.mark.integration


def test_grid_sweep_writes_both_objectives_and_the_pareto_front(local_ray, tiny_model_dir, tmp_path):
    from tradeoff_ray.data.mmlu import load_mmlu
    from tradeoff_ray.sweep import run_tune

    cfg = ExperimentConfig(
        name="tune-test",
        model={"name": str(tiny_model_dir), "cache_dir": str(tmp_path / "cache")},
        data={"validation_fraction": 0.25, "dev_limit": 4, "mmlu_per_category": 2},
        eval={"engine": "hf", "batch_size": 4, "max_new_tokens": 16},
        tune={"base": {"name": "sweep", "r": 4, "alpha": 8, "max_steps": 6, "save_steps": 3,
                       "learning_rate": 1e-2, "per_device_batch_size": 4, "max_length": 1024},
              "space": {"r": {"grid": [4, 8]}, "learning_rate": {"grid": [1e-3, 1e-2]}},
              "search": "grid"},
    )
    spider = make_tiny_spider(tmp_path / "spider")
    mmlu = load_mmlu(cfg.data, cache=cache_root(cfg.model))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    csv = run_tune(cfg, run_dir=run_dir, data=tiny_data(spider, mmlu))

    table = pd.read_csv(csv)
    assert len(table) == 4
    assert set(zip(table["r"], table["learning_rate"])) == {(4, 1e-3), (4, 1e-2), (8, 1e-3), (8, 1e-2)}
    assert (table["status"] == "complete").all()
    for col in ("spider", "mmlu_0shot", "eval_loss"):
        assert table[col].notna().all() and table[col].between(0, 100).all()
    assert table["spider"].between(0, 1).all() and table["mmlu_0shot"].between(0, 1).all()
    assert table["pareto"].dtype == bool and table["pareto"].any()
    for adapter in table["adapter_dir"]:
        assert (Path(adapter) / "adapter_model.safetensors").is_file()
    assert len(pd.read_parquet(csv.with_suffix(".parquet"))) == 4
