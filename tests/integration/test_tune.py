"""Ray Tune over tiny search spaces (tiny model, local Ray with 2 CPUs): every trial trains, is scored on the
validation sets (never the test sets) by the evaluation pipeline, and lands in trials.csv with a Pareto flag;
a trial ASHA stops still gives Optuna values; an interrupted sweep resumes without re-running finished trials."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.tune_isolation import ISOLATED
from tests.unit.infer.helpers import tiny_data
from tests.unit.train.tiny_spider import make_tiny_spider
from tradeoff_ray.config import ExperimentConfig, cache_root

# These sweeps stop, interrupt and resume trials; a shared Ray session carries actors and placement groups of
# earlier tests that can hold the CPUs a resumed trial waits for, so test_tune_isolated.py runs this module
# in a process of its own (its own local Ray, a hard timeout).
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get(ISOLATED) != "1", reason="run by test_tune_isolated.py")]

BASE = {"name": "sweep", "r": 4, "alpha": 8, "max_steps": 6, "save_steps": 3, "learning_rate": 1e-2,
        "per_device_batch_size": 4, "max_length": 1024}


def _cfg(tiny_model_dir: Path, tmp_path: Path, **tune) -> ExperimentConfig:
    return ExperimentConfig(
        name="tune-test",
        model={"name": str(tiny_model_dir), "cache_dir": str(tmp_path / "cache")},
        data={"validation_fraction": 0.25, "dev_limit": 4, "mmlu_per_category": 2},
        eval={"engine": "hf", "batch_size": 4, "max_new_tokens": 16},
        tune={"base": BASE, "validation_limit": 4, **tune},
    )


def _data(cfg: ExperimentConfig, tmp_path: Path) -> dict:
    from tradeoff_ray.data.mmlu import load_mmlu

    return tiny_data(make_tiny_spider(tmp_path / "spider"), load_mmlu(cfg.data, cache=cache_root(cfg.model)))


def _ids(path: Path) -> set[str]:
    return {json.loads(line)["example_id"] for line in path.read_text().splitlines()}


def test_grid_sweep_scores_trials_on_validation_sets_only(local_ray, tiny_model_dir, tmp_path):
    from tradeoff_ray.sweep import read_chosen, run_tune

    cfg = _cfg(tiny_model_dir, tmp_path, space={"r": {"grid": [4, 8]}, "learning_rate": {"grid": [1e-2]}},
               search="grid")
    data = _data(cfg, tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    csv = run_tune(cfg, run_dir=run_dir, data=data)

    table = pd.read_csv(csv)
    assert len(table) == 2
    assert set(zip(table["r"], table["learning_rate"])) == {(4, 1e-2), (8, 1e-2)}
    assert (table["status"] == "complete").all()
    assert table["eval_loss"].notna().all()
    for col in ("val_spider", "val_mmlu_0shot"):
        assert table[col].notna().all() and table[col].between(0, 1).all()
    assert not {"spider", "mmlu_0shot"} & set(table.columns), "no test-set metric in the trials table"
    assert table["pareto"].dtype == bool and table["pareto"].any()
    for adapter in table["adapter_dir"]:
        assert (Path(adapter) / "adapter_model.safetensors").is_file()
    assert len(pd.read_parquet(csv.with_suffix(".parquet"))) == 2

    # what each trial was scored on: held-out Spider train databases and MMLU val, never dev/test
    spider, mmlu = data["spider"].data, data["mmlu"].data
    test_ids = {e.example_id for e in spider.dev} | {q.example_id for q in mmlu.questions("test")}
    trained_dbs = set(json.loads(next((run_dir / "tune" / "trials").glob("*/train/*/train_split.json"))
                                 .read_text())["validation_dbs"])
    for trial in (run_dir / "tune" / "trials").iterdir():
        sql = _ids(next((trial / "validation" / "evals").glob("*/spider.jsonl")))
        mc = _ids(next((trial / "validation" / "evals").glob("*/mmlu.jsonl")))
        assert sql and mc and not (sql | mc) & test_ids
        assert all(i.startswith("train-") for i in sql) and all("/val/" in i for i in mc)
        assert {e.db_id for e in spider.train if e.example_id in sql} <= trained_dbs  # the held-out databases
    assert not list(run_dir.glob("evals")), "the sweep itself scores no test set"

    chosen = read_chosen(run_dir / "tune")
    best = table.loc[table["val_spider"].idxmax(), "val_spider"]
    assert chosen["val_spider"] == best and chosen["status"] == "complete"


def test_asha_stopped_trials_still_give_optuna_their_validation_scores(local_ray, tiny_model_dir, tmp_path):
    """Optuna records the objectives of a trial ASHA stopped (COMPLETE with values), not a missing one."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from tradeoff_ray.sweep import run_tune

    base = {**BASE, "max_steps": 4, "save_steps": 1}
    cfg = _cfg(tiny_model_dir, tmp_path, base=base, space={"learning_rate": {"choice": [1e-2, 1e-7]}},
               search="optuna", num_samples=4, scheduler="asha", asha_grace_period=1, asha_reduction_factor=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    table = pd.read_csv(run_tune(cfg, run_dir=run_dir, data=_data(cfg, tmp_path)))

    stopped = table[table["status"] == "stopped_early"]
    assert len(stopped), f"ASHA stopped no trial; statuses {table['status'].tolist()}"
    assert stopped["val_spider"].notna().all() and stopped["val_mmlu_0shot"].notna().all()

    searcher = OptunaSearch()  # the searcher state Tune saved with the experiment
    searcher.restore_from_dir(str(next((run_dir / "ray").iterdir())))
    study = {ft.number: ft for ft in searcher._ot_study.trials}
    for trial_id in table["trial_id"]:
        recorded = study[searcher._ot_trials[trial_id].number]
        assert recorded.state == optuna.trial.TrialState.COMPLETE, (trial_id, recorded.state)
        row = table[table["trial_id"] == trial_id].iloc[0]
        assert recorded.values == pytest.approx([row["val_spider"], row["val_mmlu_0shot"]])


SWEEP_SCRIPT = """
import os, signal, sys, threading, time
from pathlib import Path
import ray
from tests.integration.test_tune import _cfg, _data
from tradeoff_ray.sweep import run_tune
tiny, tmp, interrupt = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
cfg = _cfg(tiny, tmp, space={"r": {"grid": [4, 8]}}, search="grid")
data = _data(cfg, tmp)
run_dir = tmp / "run"
run_dir.mkdir(exist_ok=True)
trials = run_dir / "tune" / "trials"
def interrupt_when_the_second_trial_starts():  # trials run one at a time: the first has finished
    while len(list(trials.glob("*"))) < 2:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGUSR1)  # what Ctrl-C does to a Tune driver
if interrupt:
    threading.Thread(target=interrupt_when_the_second_trial_starts, daemon=True).start()
ray.init(num_cpus=2, include_dashboard=False)
try:
    run_tune(cfg, run_dir=run_dir, data=data)
except Exception as err:
    print(f"SWEEP ERROR {type(err).__name__}: {err}", flush=True)
    sys.exit(3)
print("SWEEP DONE", flush=True)
"""


def _sweep_process(tiny_model_dir: Path, tmp_path: Path, *, interrupt: bool) -> subprocess.CompletedProcess:
    """The sweep in a driver process of its own, as a user runs it: an interrupted driver exits, and with it
    its local Ray and every actor of the interrupted trial; the rerun starts a fresh one."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", SWEEP_SCRIPT, str(tiny_model_dir), str(tmp_path),
                           "1" if interrupt else "0"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(tiny_model_dir, tmp_path):
    trials = tmp_path / "run" / "tune" / "trials"
    first = _sweep_process(tiny_model_dir, tmp_path, interrupt=True)
    assert first.returncode == 3, first.stdout[-3000:] + first.stderr[-3000:]
    assert re.search(r"SWEEP ERROR UserError: .*interrupted: 1 of 2 trials finished.*again", first.stdout,
                     re.S), first.stdout[-3000:]
    done = next(p for p in trials.iterdir() if (p / "validation").is_dir() and
                list((p / "train").glob("*/result.json")))
    result = next((done / "train").glob("*/result.json"))
    before = result.stat().st_mtime_ns

    again = _sweep_process(tiny_model_dir, tmp_path, interrupt=False)
    assert again.returncode == 0 and "SWEEP DONE" in again.stdout, again.stdout[-3000:] + again.stderr[-3000:]
    table = pd.read_csv(tmp_path / "run" / "tune" / "trials.csv")
    assert len(table) == 2 and (table["status"] == "complete").all()
    assert set(table["r"]) == {4, 8}
    assert result.stat().st_mtime_ns == before, "the finished trial was not trained again"
    assert len(list(trials.iterdir())) == 2


def test_a_run_with_a_sweep_scores_only_the_chosen_trial_on_the_test_sets(local_ray, tiny_model_dir, tmp_path):
    """`run` with tune.enabled: trials on validation, then the chosen trial once on the test items (label `tuned`),
    which the report compares with the base model."""
    from tradeoff_ray.experiment import Experiment
    from tradeoff_ray.rundir import new_run_dir
    from tradeoff_ray.sweep import read_chosen

    cfg = ExperimentConfig(
        name="tune-run", output_dir=str(tmp_path), model={"name": str(tiny_model_dir)},
        data={"dev_limit": 4, "train_limit": 16, "validation_limit": 4, "mmlu_per_category": 1},
        eval={"max_new_tokens": 8, "batch_size": 8},
        tune={"enabled": True, "base": {**BASE, "max_steps": 2, "save_steps": 2}, "space": {"r": {"grid": [4]}},
              "validation_limit": 4})
    run_dir = new_run_dir(cfg)
    Experiment(cfg, run_dir).run()

    chosen = read_chosen(run_dir / "tune")
    assert chosen is not None and chosen["val_spider"] is not None
    tuned = json.loads((run_dir / "evals" / "tuned" / "summary.json").read_text())
    assert tuned["adapter_hash"] and set(tuned["tasks"]) == {"spider", "mmlu"}
    for task in ("spider", "mmlu"):  # the test items, exactly those the base model is scored on
        evals = run_dir / "evals"
        assert _ids(evals / "tuned" / f"{task}.jsonl") == _ids(evals / "baseline" / f"{task}.jsonl")
    assert all(i.startswith("dev-") for i in _ids(run_dir / "evals" / "tuned" / "spider.jsonl"))
    trial_sql = _ids(next((run_dir / "tune" / "trials").glob("*/validation/evals/*/spider.jsonl")))
    assert trial_sql and all(i.startswith("train-") for i in trial_sql)
    assert "tuned" in (run_dir / "report.md").read_text()
