"""Tune's pure parts: config -> search space, trial settings -> variant, metrics, Pareto front, table."""
from __future__ import annotations

import pandas as pd
import pytest

from tradeoff_ray.config import ExperimentConfig, LoraVariant
from tradeoff_ray.errors import UserError
from tradeoff_ray.sweep import (
    check_tune_config,
    format_trials,
    pareto_flags,
    search_space,
    trial_metrics,
    trial_variant,
    write_trials_table,
)

BASE = {"name": "sweep", "r": 8, "alpha": 16, "max_steps": 10}


def _cfg(space: dict, **tune) -> ExperimentConfig:
    return ExperimentConfig(tune={"base": BASE, "space": space, **tune})


def test_grid_dims_become_grid_search_and_lists_travel_as_strings():
    cfg = _cfg({"r": {"grid": [4, 8]}, "target_modules": {"grid": [["q_proj", "v_proj"], ["all-linear"]]}})
    space = search_space(check_tune_config(cfg))
    assert space["r"] == {"grid_search": [4, 8]}
    assert space["target_modules"] == {"grid_search": ["q_proj,v_proj", "all-linear"]}


def test_optuna_turns_grids_into_categoricals():
    from ray.tune.search.sample import Categorical, Float

    cfg = _cfg({"r": {"grid": [4, 8]}, "learning_rate": {"loguniform": [1e-4, 1e-2]}}, search="optuna")
    space = search_space(check_tune_config(cfg))
    assert isinstance(space["r"], Categorical) and space["r"].categories == [4, 8]
    assert isinstance(space["learning_rate"], Float)


def test_trial_variant_applies_settings_and_alpha_over_r():
    base = LoraVariant(**BASE)
    v = trial_variant(base, {"r": 32, "alpha_over_r": 2.0, "target_modules": "q_proj,v_proj", "num_epochs": 1.0},
                      name="trial-1")
    assert (v.name, v.r, v.alpha, v.target_modules) == ("trial-1", 32, 64.0, ["q_proj", "v_proj"])
    assert v.num_epochs == 1.0 and v.max_steps is None  # searching epochs replaces the base's max_steps


def test_invalid_trial_settings_are_a_user_error():
    with pytest.raises(UserError, match="dropout"):
        trial_variant(LoraVariant(**BASE), {"dropout": 1.5}, name="t")


@pytest.mark.parametrize("space,extra,match", [
    ({"r": {"choice": [4, 8]}}, {}, "search: random"),
    ({"r": {"grid": [4]}}, {"search": "optuna", "evaluate_trials": False}, "evaluate_trials"),
    ({"r": {"grid": [4]}, "alpha": {"grid": [8]}, "alpha_over_r": {"grid": [2]}}, {}, "alpha_over_r"),
    ({}, {}, "tune.space is empty"),
])
def test_settings_that_would_fail_late_are_refused_early(space, extra, match):
    with pytest.raises(UserError, match=match):
        check_tune_config(_cfg(space, **extra))


def test_asha_needs_a_validation_split():
    cfg = ExperimentConfig(tune={"base": BASE, "space": {"r": {"grid": [4]}}, "scheduler": "asha",
                                 "evaluate_trials": False}, data={"validation_fraction": 0})
    with pytest.raises(UserError, match="asha.*validation_fraction"):
        check_tune_config(cfg)


def test_trial_metrics_are_every_measure_as_a_fraction_and_objectives_one_per_task():
    from tradeoff_ray.sweep import objectives

    summary = {"tasks": {"spider": {"measures": {"spider": {"accuracy_pct": 30.0}}},
                         "mmlu": {"measures": {"mmlu_0shot": {"accuracy_pct": 41.0}, "mmlu_5shot": {"accuracy_pct": None}}}}}
    assert trial_metrics(summary) == {"spider": pytest.approx(0.3), "mmlu_0shot": pytest.approx(0.41), "mmlu_5shot": None}
    assert trial_metrics({}) == {}
    cfg = ExperimentConfig(eval={"mmlu_shots": [5, 0]}, data={"gsm8k_dir": "/g"})
    assert objectives(cfg) == ["val_spider", "val_mmlu_5shot", "val_gsm8k_flexible"]  # validation, never test
    assert trial_metrics(summary, prefix="val_") == {"val_spider": pytest.approx(0.3),
                                                     "val_mmlu_0shot": pytest.approx(0.41), "val_mmlu_5shot": None}


def test_chosen_trial_is_the_best_completed_on_the_selected_validation_measure():
    from tradeoff_ray.sweep import chosen_trial, select_key

    goals = ["val_spider", "val_mmlu_0shot"]
    rows = [{"trial_id": "a", "val_spider": 0.5, "val_mmlu_0shot": 0.3, "adapter_dir": "/a", "status": "complete"},
            {"trial_id": "b", "val_spider": 0.5, "val_mmlu_0shot": 0.4, "adapter_dir": "/b", "status": "complete"},
            {"trial_id": "c", "val_spider": 0.9, "val_mmlu_0shot": 0.9, "adapter_dir": None, "status": "stopped_early"},
            {"trial_id": "d", "val_spider": None, "val_mmlu_0shot": 0.8, "adapter_dir": "/d", "status": "complete"}]
    assert chosen_trial(rows, goals, "val_spider")["trial_id"] == "b"  # tie on Spider: MMLU decides
    assert chosen_trial(rows, goals, "val_mmlu_0shot")["trial_id"] == "d"
    assert chosen_trial(rows[2:3], goals, "val_spider") is None
    assert select_key(_cfg({"r": {"grid": [4]}})) == "val_spider"
    assert select_key(_cfg({"r": {"grid": [4]}}, select_on="mmlu_0shot")) == "val_mmlu_0shot"
    with pytest.raises(UserError, match="select_on"):
        check_tune_config(_cfg({"r": {"grid": [4]}}, select_on="gsm8k_strict"))


def test_trials_need_held_out_databases_to_be_scored_on():
    cfg = ExperimentConfig(tune={"base": BASE, "space": {"r": {"grid": [4]}}}, data={"validation_fraction": 0})
    with pytest.raises(UserError, match="validation_fraction"):
        check_tune_config(cfg)


def test_an_interrupted_sweep_is_refused_with_how_to_resume():
    from tradeoff_ray.sweep import check_finished, expected_trials

    t = _cfg({"r": {"grid": [4, 8]}, "dropout": {"grid": [0.0, 0.1]}}, num_samples=2).tune
    assert expected_trials(t) == 8
    assert expected_trials(_cfg({"r": {"grid": [4, 8]}}, search="optuna", num_samples=3).tune) == 3

    check_finished(["TERMINATED"] * 7 + ["ERROR"], expected=8, experiment="x")
    with pytest.raises(UserError, match="resume"):
        check_finished(["TERMINATED"] * 6 + ["ERROR", "RUNNING"], expected=8, experiment="x")
    with pytest.raises(UserError, match="3 of 8"):
        check_finished(["TERMINATED"] * 3, expected=8, experiment="x")


def test_pareto_front_keeps_non_dominated_trials():
    points = [(0.5, 0.3), (0.4, 0.4), (0.3, 0.3), (0.5, 0.2), (None, 0.9), (0.4, 0.4)]
    assert pareto_flags(points) == [True, True, False, False, False, True]
    three = [(0.5, 0.3, 0.1), (0.5, 0.3, 0.2), (0.1, 0.9, 0.0)]  # any number of objectives
    assert pareto_flags(three) == [False, True, True]


def test_trials_table_has_settings_metrics_and_pareto(tmp_path):
    rows = [{"trial_id": "a", "r": 4, "target_modules": "q_proj,v_proj", "eval_loss": 1.0, "spider": 0.2,
             "mmlu_0shot": 0.4, "adapter_dir": "/x", "status": "complete", "pareto": True},
            {"trial_id": "b", "r": 8, "target_modules": "all-linear", "eval_loss": None, "spider": None,
             "mmlu_0shot": None, "adapter_dir": None, "status": "stopped_early", "pareto": False}]
    csv = write_trials_table(rows, tmp_path)
    for frame in (pd.read_csv(csv), pd.read_parquet(tmp_path / "trials.parquet")):
        assert list(frame["trial_id"]) == ["a", "b"]
        assert list(frame["pareto"]) == [True, False]
        assert frame.loc[0, "spider"] == 0.2
    text = format_trials(rows, ["spider", "mmlu_0shot"])
    assert "1 of 2 trials" in text and text.splitlines()[1].startswith("*") and "mmlu_0shot" in text.splitlines()[0]


def test_a_diverged_trial_fails_instead_of_reporting_objectives(monkeypatch, tmp_path):
    """The trial raises (Tune: ERROR, Optuna: a failed trial, ASHA: dropped) and reports no objectives;
    the trials table calls it diverged."""
    import ray.tune
    from ray.exceptions import RayTaskError

    import tradeoff_ray.train.ray_train as ray_train
    from tradeoff_ray import sweep as tune_mod
    from tradeoff_ray.train.health import TrainingDiverged

    reported = []
    monkeypatch.setattr(ray.tune, "get_context", lambda: type("Ctx", (), {"get_trial_id": lambda self: "t1"})())
    monkeypatch.setattr(ray.tune, "report", reported.append)
    monkeypatch.setattr(ray_train, "train_variant", lambda *a, **k: {
        "status": "diverged", "message": "training of variant 'trial-t1' diverged at step 7: loss nan"})
    import queue

    relay = type("Relay", (), {"queue": queue.Queue()})()  # stands in for the Ray queue that relays reports
    monkeypatch.setattr(tune_mod, "_report_relay", lambda: relay)
    cfg = _cfg({"r": {"grid": [4]}}, evaluate_trials=True)
    with pytest.raises(TrainingDiverged, match="diverged at step 7"):
        tune_mod._trial({"r": 4}, cfg=cfg, run_dir=str(tmp_path),
                        data={"spider": type("TD", (), {"data": None})()}, validation={"spider": []})
    assert reported == []

    try:
        raise TrainingDiverged("training of variant 'trial-t1' diverged at step 7: loss nan")
    except TrainingDiverged as err:
        wrapped = RayTaskError("_trial", "traceback", err)  # how the error reaches the ResultGrid
    results = [type("R", (), {"config": {"r": 4}, "metrics": {"trial_id": "t1", "eval_loss": 1.2},
                              "error": wrapped.as_instanceof_cause(), "path": tmp_path / "t1"})(),
               type("R", (), {"config": {"r": 8}, "metrics": {"trial_id": "t2", "done_training": True,
                                                              "val_spider": 0.3, "val_mmlu_0shot": 0.4},
                              "error": None, "path": tmp_path / "t2"})()]
    rows = tune_mod.trial_rows(results, ["val_spider", "val_mmlu_0shot"])
    assert [r["status"] for r in rows] == ["diverged", "complete"]
    assert rows[0]["val_spider"] is None and not rows[0]["pareto"] and "step 7" in rows[0]["error"]
