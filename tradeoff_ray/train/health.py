"""Training health: stop a run at its first non-finite loss or gradient norm, and say what to change.

A fine-tune that diverges (learning rate too high, no warm-up, an fp16/bf16 overflow) keeps running
with NaN weights; its adapter then scores like a broken model and would enter the trade-off table as
if it were a result. `DivergenceWatch` (a transformers `TrainerCallback`) reads every log entry —
the trainer logs each step's loss and gradient norm (see `loop.sft_config`), and the validation loss
at each evaluation — and at the first non-finite value sets `control.should_training_stop` and
cancels what is left of that step (its evaluation, its save), so the newest checkpoint is the last
one whose weights gave finite values. A NaN validation loss counts: half-precision weights can
overflow in the forward pass one step before the training loss shows it. Every rank sees the same
gathered loss and gradient norm, so all DDP workers stop at the same step.

The record it leaves (`Divergence`) travels in the worker's return value into train/<variant>/result.json
(`status: "diverged"`), where the run plan, the report and Tune read it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from tradeoff_ray.errors import UserError

DIVERGED = "diverged"
TRAINED = "trained"


class TrainingDiverged(UserError):
    """A Tune trial whose training diverged: raised so the trial ends in ERROR (Optuna records a failed trial,
    ASHA drops it) instead of reporting objective values that would look like a trained model's."""


def is_finite(value: Any) -> bool:
    """False for NaN and +-inf; True for any other number."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fmt_value(value: Any, digits: int = 4) -> str:
    """A loss or norm for people: '0.4123', 'nan', 'inf', '-' when absent (never a NaN hidden as 0)."""
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


@dataclass
class Divergence:
    """Where and how a variant diverged, and the last state with finite values."""

    variant: str
    step: int
    loss: float | None  # the logged values at `step` (one of them non-finite)
    grad_norm: float | None
    last_finite_step: int | None
    last_finite_loss: float | None
    learning_rate: float | None = None  # the scheduled rate at `step`
    checkpoint: str | None = None  # the newest checkpoint saved before `step` (filled in by the driver)
    eval_loss: float | None = None  # validation loss of the weights after `step`, when that was what failed

    @property
    def culprit(self) -> str:
        bad = [name for name in WATCHED if getattr(self, name) is not None and not is_finite(getattr(self, name))]
        return " and ".join(f"{name} {fmt_value(getattr(self, name))}" for name in bad)

    def message(self, settings: dict[str, Any] | None = None) -> str:
        """One paragraph: variant, step, the non-finite value, last finite loss, the checkpoint kept, what to try."""
        s = settings or {}
        last = (f"last finite loss {fmt_value(self.last_finite_loss)} at step {self.last_finite_step}"
                if self.last_finite_step is not None else "no step had a finite loss")
        kept = (f"last checkpoint with finite loss: {self.checkpoint}" if self.checkpoint
                else "no checkpoint was saved before it" + ("" if s.get("save_steps") else " (save_steps keeps some)"))
        try_ = (f"lower learning_rate{_now(s, 'learning_rate')}, "
                f"add warm-up with warmup_ratio{_now(s, 'warmup_ratio')}, "
                f"or clip gradients harder with max_grad_norm{_now(s, 'max_grad_norm')}")
        return (f"training of variant {self.variant!r} diverged at step {self.step}: {self.culprit}; {last}. "
                f"Stopped there and not evaluated; {kept}. Try: {try_}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Divergence":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


WATCHED = ("loss", "grad_norm", "eval_loss")


def check_log(logs: dict[str, Any]) -> bool:
    """True when a trainer log entry carries a non-finite training loss, gradient norm or validation loss."""
    return any(logs.get(key) is not None and not is_finite(logs[key]) for key in WATCHED)


def divergence_watch_class():
    """The `DivergenceWatch` callback class (built on demand: transformers is imported only by training)."""
    from transformers import TrainerCallback

    class DivergenceWatch(TrainerCallback):
        """Stops training at the first logged step whose loss, grad_norm or eval_loss is NaN/inf; keeps
        `self.divergence`."""

        def __init__(self, variant: str):
            self.variant = variant
            self.divergence: Divergence | None = None
            self.last_finite_step: int | None = None
            self.last_finite_loss: float | None = None
            self.learning_rate: float | None = None  # the last logged rate (an evaluation log has none)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or self.divergence is not None:
                return control
            self.learning_rate = _float(logs.get("learning_rate", self.learning_rate))
            if check_log(logs):
                self.divergence = Divergence(
                    variant=self.variant, step=state.global_step, loss=_float(logs.get("loss")),
                    grad_norm=_float(logs.get("grad_norm")), eval_loss=_float(logs.get("eval_loss")),
                    last_finite_step=self.last_finite_step, last_finite_loss=self.last_finite_loss,
                    learning_rate=self.learning_rate)
                control.should_training_stop = True
                control.should_evaluate = False  # an evaluation of NaN weights says nothing
                control.should_save = False  # the newest checkpoint stays the last finite one
            elif "loss" in logs:
                self.last_finite_step, self.last_finite_loss = state.global_step, float(logs["loss"])
            return control

    return DivergenceWatch


def _now(settings: dict[str, Any], key: str) -> str:
    return f" (now {settings[key]:g})" if isinstance(settings.get(key), (int, float)) else ""


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
