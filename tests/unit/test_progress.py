"""The run's time estimate: priors x work counts x machine speed, corrected by each measured stage."""
from __future__ import annotations

import pytest

from tradeoff_ray.progress import (
    PRIORS,
    RAY_START_S,
    RunEstimate,
    StageWork,
    StepTimer,
    history_speed,
    load_history,
)


def _plan(cached: tuple[bool, ...] = (False,) * 5) -> list[StageWork]:
    evals = {"sql": 60, "budget_tokens": 60 * 80, "mmlu": 60}
    kinds = [("gold", {"sql": 60}), ("eval", evals), ("train", {"examples": 40, "validation": 16}),
             ("eval", evals), ("report", {})]
    return [StageWork(k, f"stage {i}", c, cached[i]) for i, (k, c) in enumerate(kinds)]


def test_prior_is_fixed_cost_plus_counts_times_rates():
    stage = StageWork("train", "t", {"examples": 40, "validation": 16})
    rates = PRIORS["train"]
    assert stage.prior_s() == pytest.approx(rates["fixed"] + 40 * rates["examples"] + 16 * rates["validation"])
    assert StageWork("tune", "sweep").prior_s() is None


def test_up_front_total_scales_the_priors_by_the_machine_speed_and_skips_cached_stages():
    plan = _plan()
    priors = sum(s.prior_s() for s in plan)
    assert RunEstimate(plan, speed=2.0).total_s() == pytest.approx(2.0 * (priors + RAY_START_S))
    cached = _plan((True, True, False, False, False))
    expected = 2.0 * (sum(s.prior_s() for s in cached[2:]) + RAY_START_S)
    assert RunEstimate(cached, speed=2.0).total_s() == pytest.approx(expected)
    every = RunEstimate(_plan((True, True, True, True, False)), speed=2.0)  # the report always runs
    assert every.all_cached() and "cached" in every.headline()
    assert every.total_s() == pytest.approx(2.0 * PRIORS["report"]["fixed"])  # no Ray to start


def test_a_measured_stage_sets_the_rate_of_later_stages_of_its_kind():
    est = RunEstimate(_plan(), speed=1.0)
    baseline_prior = est.stages[1].prior_s()
    est.observe(0, 3.0, cached=False)  # gold check: scoring only, says nothing about the model's speed
    est.observe(1, 3.0 * baseline_prior, cached=False)  # the model runs 3x slower than the prior here
    assert est.stage_s(3) == pytest.approx(3.0 * est.stages[3].prior_s())  # the adapter's evaluation
    assert est.stage_s(2) == pytest.approx(3.0 * est.stages[2].prior_s())  # training: model speed carries over
    every = (3.0 + 3.0 * baseline_prior) / (est.stages[0].prior_s() + baseline_prior)
    assert est.stage_s(4) == pytest.approx(every * est.stages[4].prior_s())  # report: every stage measured
    est.observe(2, 1.5 * est.stages[2].prior_s(), cached=False)
    assert est.stage_s(2) == pytest.approx(1.5 * est.stages[2].prior_s())  # its own kind wins once measured


def test_cached_stages_teach_nothing():
    est = RunEstimate(_plan(), speed=1.0)
    est.observe(1, 0.01, cached=True)
    assert est.measured == {}


@pytest.mark.parametrize("true_factor", [0.3, 1.0, 4.0])
def test_eta_after_the_first_stages_is_within_2x_on_synthetic_timings(true_factor):
    """A machine `true_factor` x slower than the priors whose stages each deviate by up to 1.5x from the model
    (adapter answers shorter than the baseline's, a slow Ray Train start): once the baseline evaluation
    has run, the ETA for the rest is within 2x of the actual rest."""
    plan = _plan()
    deviation = [1.0, 1.2, 1.5, 0.7, 1.0]
    actual = [true_factor * d * s.prior_s() for d, s in zip(deviation, plan)]
    est = RunEstimate(plan, speed=1.0)  # a calibration that got the machine wrong by true_factor
    for i in range(2):
        est.observe(i, actual[i], cached=False)
    for start in (2, 3, 4):
        predicted, real = est.remaining_s(start), sum(actual[start:])
        assert real / 2 <= predicted <= 2 * real, (start, predicted, real)
        est.observe(start, actual[start], cached=False)


def test_without_a_speed_there_is_no_up_front_figure_until_a_model_stage_ran():
    est = RunEstimate(_plan(), speed=None, basis="a GPU")
    assert est.total_s() is None and "no up-front" in est.headline()
    est.observe(1, 10.0, cached=False)
    assert est.stage_s(0) == pytest.approx(10.0 / est.stages[1].prior_s() * est.stages[0].prior_s())
    assert est.stage_s(3) == pytest.approx(10.0) and est.remaining_s(2) is not None


def test_measured_ratios_are_kept_for_the_next_run_on_this_machine(tmp_path):
    path = tmp_path / "stage_seconds.json"
    assert load_history(path) == {} and history_speed({}) is None
    est = RunEstimate(_plan(), speed=1.0)
    est.observe(1, 2.0 * est.stages[1].prior_s(), cached=False)
    est.observe(2, 4.0 * est.stages[2].prior_s(), cached=False)
    est.save(path)
    speed = history_speed(load_history(path))
    p1, p2 = est.stages[1].prior_s(), est.stages[2].prior_s()
    assert speed == pytest.approx((2 * p1 + 4 * p2) / (p1 + p2))
    path.write_text("not json")
    assert load_history(path) == {}


def test_step_timer_prints_stage_counts_and_the_eta_for_the_rest(capsys):
    est = RunEstimate(_plan(), speed=1.0)
    timer = StepTimer(est)
    timer.begin("evaluate gold")
    timer.end(5.0, cached=False)
    timer.begin("evaluate baseline")
    lines = capsys.readouterr().out.splitlines()
    assert "[1/5] evaluate gold" in lines[0] and "[2/5] evaluate baseline" in lines[1]
    assert "ETA ~" in lines[1] and timer.done == 1


def test_notices_raised_while_held_follow_the_header(capsys):
    from tradeoff_ray.data import notices

    with notices.held():
        notices.notice("held notice for the progress test")
        print("header")
        assert capsys.readouterr().err == ""
    assert capsys.readouterr().err == "held notice for the progress test\n"


def test_evaluation_eta_uses_the_rate_since_the_first_rows_arrived():
    from tradeoff_ray.infer.pipeline import progress_line

    # 20 s of actor start-up, then 16 rows every 10 s: 16 rows at 30 s, 32 at 40 s; 28 rows left = 17.5 s
    assert "ETA ?" in progress_line("sql", 16, 60, 30.0, first=(16, 30.0))
    assert "ETA 0m17s" in progress_line("sql", 32, 60, 40.0, first=(16, 30.0))
    assert "ETA 0m00s" in progress_line("sql", 60, 60, 50.0, first=(60, 50.0))
    assert "ETA 0m35s" in progress_line("sql", 32, 60, 40.0)  # without it: the overall rate


def test_calibration_gives_a_speed_and_leaves_torch_threads_alone():
    import torch

    from tradeoff_ray.progress import calibrate_speed

    threads = torch.get_num_threads()
    speed = calibrate_speed(repeats=3)
    assert 0.05 <= speed < 100 and torch.get_num_threads() == threads


def test_a_stage_without_a_prior_leaves_the_total_open():
    plan = [StageWork("gold", "g", {"sql": 4}), StageWork("tune", "sweep"), StageWork("report", "r")]
    est = RunEstimate(plan, speed=1.0)
    assert est.total_s() is None and "Tune" in est.headline()
