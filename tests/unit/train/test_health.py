"""The divergence watch on synthetic trainer logs: it stops at the first NaN/inf loss or gradient norm, and only
then."""
from __future__ import annotations

import math

import pytest
from transformers import TrainerControl, TrainerState

from tradeoff_ray.train.health import Divergence, check_log, divergence_watch_class, fmt_value
from tradeoff_ray.train.ray_train import format_results

NAN, INF = float("nan"), float("inf")


def _feed(logs: list[dict]) -> tuple[object, list[TrainerControl]]:
    """Run the watch over one log per step (steps 1, 2, ...), as the trainer would call it."""
    watch = divergence_watch_class()("lora-x")
    state, controls = TrainerState(), []
    for step, entry in enumerate(logs, 1):
        state.global_step = step
        control = TrainerControl(should_save=True, should_evaluate=True)  # a save/eval step, as planned
        watch.on_log(None, state, control, logs=entry)
        controls.append(control)
        if control.should_training_stop:
            break
    return watch, controls


def _log(loss, grad_norm=0.5, lr=1e-3):
    return {"loss": loss, "grad_norm": grad_norm, "learning_rate": lr}


def test_normal_training_is_never_stopped():
    watch, controls = _feed([_log(2.0 - 0.1 * i) for i in range(10)] + [{"eval_loss": 1.0}])
    assert watch.divergence is None
    assert len(controls) == 11
    assert not any(c.should_training_stop for c in controls)
    assert all(c.should_save and c.should_evaluate for c in controls)  # its saves and evals are untouched
    assert (watch.last_finite_step, watch.last_finite_loss) == (10, pytest.approx(1.1))


@pytest.mark.parametrize("bad,culprit", [
    (_log(NAN), "loss nan"),
    (_log(0.0, grad_norm=NAN), "grad_norm nan"),  # a NaN hidden in the loss still shows in the norm
    (_log(INF, grad_norm=INF), "loss inf and grad_norm inf"),
    (_log(1.3, grad_norm=-INF), "grad_norm -inf"),
    ({"eval_loss": NAN}, "eval_loss nan"),  # half-precision weights that overflow before the training loss does
])
def test_the_first_non_finite_step_stops_training_without_saving_it(bad, culprit):
    watch, controls = _feed([_log(2.0), _log(1.8), _log(1.5), bad, _log(1.0)])
    assert len(controls) == 4  # nothing after the bad step is seen
    stop = controls[-1]
    assert stop.should_training_stop and not stop.should_save and not stop.should_evaluate
    d = watch.divergence
    assert (d.variant, d.step, d.last_finite_step, d.last_finite_loss) == ("lora-x", 4, 3, 1.5)
    assert d.culprit == culprit and d.learning_rate == 1e-3


def test_divergence_at_the_first_step_has_no_finite_loss():
    watch, _ = _feed([_log(NAN, grad_norm=NAN)])
    assert watch.divergence.step == 1 and watch.divergence.last_finite_loss is None
    assert "no step had a finite loss" in watch.divergence.message()


def test_logs_without_loss_or_norm_are_not_divergence():
    assert not check_log({"eval_loss": 1.0, "learning_rate": 0.1})
    assert not check_log({"loss": 0.3, "grad_norm": None})
    assert check_log({"loss": 0.3, "grad_norm": NAN})


def test_message_names_variant_step_last_loss_checkpoint_and_fixes():
    d = Divergence(variant="lora-r64", step=84, loss=NAN, grad_norm=NAN, last_finite_step=83,
                   last_finite_loss=0.1712, learning_rate=4e-4, checkpoint="runs/x/train/lora-r64/checkpoints/step-75")
    text = d.message({"learning_rate": 4e-4, "warmup_ratio": 0.03, "max_grad_norm": 1.0})
    for part in ("'lora-r64'", "step 84", "loss nan and grad_norm nan", "last finite loss 0.1712 at step 83",
                 "runs/x/train/lora-r64/checkpoints/step-75", "learning_rate (now 0.0004)", "warmup_ratio (now 0.03)",
                 "max_grad_norm (now 1)"):
        assert part in text, part
    assert Divergence.from_dict(d.to_dict()).message() == d.message()


def test_non_finite_values_print_as_nan_and_inf_never_as_zero():
    assert [fmt_value(v) for v in (NAN, INF, -INF, None, 0.0)] == ["nan", "inf", "-inf", "-", "0.0000"]
    result = {"variant": "v", "steps": 4, "max_steps": 10, "first_train_loss": 2.0, "last_train_loss": NAN,
              "last_grad_norm": NAN, "initial_eval_loss": 1.9, "final_eval_loss": 1.5, "over_length_dropped": 0,
              "steps_per_s": 0.5, "wall_time_s": 12.0, "adapter_dir": None, "status": "diverged",
              "divergence": {"step": 4}}
    table = format_results([result])
    assert "nan" in table and "0.0000" not in table and "DIVERGED at step 4" in table
    assert math.isnan(result["last_train_loss"])  # formatting leaves the record as it was
