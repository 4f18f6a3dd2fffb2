"""`tradeoff-ray run` on a GPU serves every model label with one engine per GPU: the variants train first, then
the baseline, each adapter and its checkpoints are evaluated in one `evaluate_labels` call, each label still
cached as its own stage. Run here with the evaluation call replaced by the in-process stages (no GPU)."""
from __future__ import annotations

import json

import pytest

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.experiment import Experiment
from tradeoff_ray.rundir import new_run_dir

pytestmark = pytest.mark.integration

LORA = {"name": "tiny", "r": 4, "alpha": 8, "learning_rate": 1e-2, "max_steps": 2, "save_steps": 1,
        "per_device_batch_size": 2}


def test_every_label_is_evaluated_in_one_call_and_cached_per_label(local_ray, tiny_model_dir, tmp_path, monkeypatch):
    import tradeoff_ray.infer.shared as shared
    from tradeoff_ray.infer.pipeline import evaluate

    calls = []

    def one_call(cfg, *, labels, out_dir, data, tasks, items, **kw):
        calls.append(dict(labels))
        return {label: evaluate(cfg, label=label, out_dir=out_dir, adapter_dir=adapter, data=data, tasks=tasks,
                                items=items, use_ray=False) for label, adapter in labels.items()}

    monkeypatch.setattr(shared, "evaluate_labels", one_call)
    monkeypatch.setattr(Experiment, "one_engine", lambda self: True)
    cfg = ExperimentConfig(
        name="one-engine", output_dir=str(tmp_path / "runs"), model={"name": str(tiny_model_dir)},
        data={"dev_limit": 4, "train_limit": 16, "validation_limit": 4, "mmlu_per_category": 1},
        eval={"max_new_tokens": 8, "batch_size": 8, "evaluate_checkpoints": True},
        training={"variants": [LORA], "cpus_per_worker": 1})
    run_dir = new_run_dir(cfg)
    experiment = Experiment(cfg, run_dir)
    estimate = experiment.prepare()
    assert [s.title for s in estimate.stages] == ["evaluate gold", "train tiny", "evaluate baseline",
                                                  "evaluate tiny", "analysis and report"]
    experiment.run()
    assert len(calls) == 1 and sorted(calls[0]) == ["baseline", "tiny", "tiny@step1"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["labels"]) == {"baseline", "tiny", "tiny@step1", "gold"}
    assert metrics["comparisons"]["tiny"]["spider"]["n_paired"] == metrics["labels"]["baseline"]["spider"]["n"]
    stages = {p.stem.rsplit("-", 1)[0]: json.loads(p.read_text()) for p in (run_dir / "stages").glob("eval-*.json")}
    assert stages["eval-baseline"]["cached"] is False and stages["eval-tiny"]["cached"] is False
    assert not list((tmp_path / "runs" / ".cache").glob("eval-group-*"))  # the group's scratch output is gone

    again = new_run_dir(cfg)
    Experiment(cfg, again).run()
    assert len(calls) == 1  # every label's stage came from the cache: no engine needed
    assert (again / "evals" / "tiny@step1" / "spider.jsonl").is_file()
