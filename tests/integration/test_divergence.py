"""A run with one variant that diverges for real: it stops at its first non-finite step, keeps its last finite
checkpoint, is never evaluated, is listed as diverged in the report (also on a rerun from the stage cache), and
the other variant of the same run trains and is evaluated as usual.

The divergence is real, not injected: half-precision weights (float16, as a GPU run in half precision has) and
a learning rate of 0.9 overflow the tiny model's activations within a few steps.
"""
from __future__ import annotations

import json
import math

import pytest

from tradeoff_ray.commands.run import diverged_variants
from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.experiment import Experiment
from tradeoff_ray.rundir import new_run_dir

pytestmark = pytest.mark.integration

GOOD = {"name": "good", "r": 4, "alpha": 8, "learning_rate": 1e-2, "max_steps": 4, "save_steps": 2,
        "per_device_batch_size": 2}
BAD = {"name": "bad", "r": 8, "alpha": 16, "learning_rate": 0.9, "max_steps": 12, "save_steps": 1,
       "per_device_batch_size": 2, "warmup_ratio": 0.0, "lr_scheduler": "constant"}


@pytest.fixture(scope="module")
def diverged_run(local_ray, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("divergence")
    cfg = ExperimentConfig(
        name="divergence", output_dir=str(out), model={"name": str(tiny_model_dir), "dtype": "float16"},
        data={"dev_limit": 4, "train_limit": 24, "validation_limit": 4, "mmlu_per_category": 1},
        eval={"max_new_tokens": 8, "batch_size": 8},
        training={"variants": [BAD, GOOD], "cpus_per_worker": 1})
    run_dir = new_run_dir(cfg)
    experiment = Experiment(cfg, run_dir)
    experiment.run()
    return cfg, run_dir, experiment


def test_the_diverged_variant_stops_at_its_first_non_finite_step(diverged_run):
    _, run_dir, experiment = diverged_run
    assert experiment.diverged == ["bad"]
    result = json.loads((run_dir / "train" / "bad" / "result.json").read_text())
    assert result["status"] == "diverged" and result["adapter_dir"] is None
    d = result["divergence"]
    steps = [p["step"] for p in result["train_loss"]]
    assert steps == list(range(1, d["step"] + 1))  # every step logged, none after the divergence
    *before, last = result["train_loss"]
    assert all(math.isfinite(p["loss"]) and math.isfinite(p["grad_norm"]) for p in before)
    if d["eval_loss"] is None:  # the training loss or gradient norm of the last step went non-finite
        assert not (math.isfinite(last["loss"]) and math.isfinite(last["grad_norm"]))
        assert d["last_finite_step"] == d["step"] - 1
    else:  # or the validation loss of the weights that step produced
        assert not math.isfinite(d["eval_loss"]) and d["last_finite_step"] == d["step"]
    assert d["last_finite_loss"] == next(p["loss"] for p in result["train_loss"] if p["step"] == d["last_finite_step"])
    assert result["steps"] == d["step"] < result["max_steps"]
    # the newest checkpoint is the last one saved before that step, and the message names it
    saved = sorted(int(p.name.split("-")[1]) for p in (run_dir / "train" / "bad" / "checkpoints").iterdir())
    assert saved == list(range(1, d["step"])) and saved
    assert d["checkpoint"].endswith(f"step-{saved[-1]}") and d["checkpoint"] in result["message"]
    assert not (run_dir / "train" / "bad" / "adapter").exists()


def test_it_is_not_evaluated_and_the_other_variant_is(diverged_run):
    _, run_dir, _ = diverged_run
    assert sorted(p.name for p in (run_dir / "evals").iterdir()) == ["baseline", "gold", "good"]
    good = json.loads((run_dir / "train" / "good" / "result.json").read_text())
    assert good["status"] == "trained" and good["steps"] == 4
    assert all(math.isfinite(p["loss"]) and math.isfinite(p["grad_norm"]) for p in good["train_loss"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["diverged"] == ["bad"] and metrics["run"]["variants"] == ["good"]
    assert set(metrics["comparisons"]) == {"good"}
    assert list(diverged_variants(metrics)) == ["bad"]  # `tradeoff-ray run` prints these and exits 1


def test_the_report_lists_it_as_diverged_with_its_curve(diverged_run):
    _, run_dir, _ = diverged_run
    report = (run_dir / "report.md").read_text()
    step = json.loads((run_dir / "train" / "bad" / "result.json").read_text())["divergence"]["step"]
    assert "Training of bad DIVERGED" in report.split("## Trade-off vs baseline")[0]
    assert f"DIVERGED at step {step}" in report and "the last steps before training stopped" in report
    assert (run_dir / "plots" / "training.png").exists()


def test_a_rerun_reuses_the_cached_divergence_and_reports_it_again(diverged_run, capsys):
    cfg, run_dir, _ = diverged_run
    capsys.readouterr()
    again = Experiment(cfg, run_dir)
    again.run()
    out = capsys.readouterr().out
    assert again.diverged == ["bad"]
    assert "done: train-bad (cached" in out and "training of variant 'bad' diverged" in out
    assert "evaluate bad: skipped" in out
