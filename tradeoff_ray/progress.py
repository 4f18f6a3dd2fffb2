"""How long a run will take: an up-front estimate from the plan's work counts, refined by measured stages.

A stage's cost is modelled as fixed start-up + work counts x per-unit seconds:

    gold check   reference outputs scored (no model)
    evaluation   generation rows, their token budgets, log-likelihood rows (+ actor start, model load)
    training     training examples seen, validation examples run (+ Ray Train worker group, tokenization)
    report       fixed

The per-unit priors are the quickstart's stages measured on the 2-core development VM (fp32
SmolLM2-135M, benchmarks/RESULTS.md). On another machine they are scaled by its speed: the ratio
of actual to predicted seconds of stages measured on it before (kept in the stage cache), else the
CPU time of a fixed fp32 matmul in the driver against the same matmul on that VM. As the run goes on,
each finished stage corrects the rest: a stage's prediction is scaled by actual/predicted of the
stages of its kind that ran, or of all measured stages when none of its kind ran yet. Cached
stages cost nothing. The priors are for CPU runs of a small model; on a GPU or a cluster there
is no up-front figure, only the corrections from measured stages.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

# Seconds per unit: the quickstart's stages on the 2-core development VM on 2026-11-30 (benchmarks/RESULTS.md,
# "Quickstart profile"), measured while other work kept its load average at 8-12 — an idle machine of
# the same kind comes in under them, and the first measured stage corrects the rest.
PRIORS: dict[str, dict[str, float]] = {
    "gold": {"fixed": 5.0, "generate": 0.015},
    # fixed: Ray Data, actor start and model load; generate = a Spider question, choice = an MMLU question
    "eval": {"fixed": 60.0, "generate": 0.35, "budget_tokens": 0.012, "choice": 0.2},
    # fixed: Ray Train worker group, imports, model load, tokenization, export
    "train": {"fixed": 37.0, "examples": 5.0, "validation": 1.7},
    "report": {"fixed": 2.0},
}
RAY_START_S = 20.0  # a local Ray's start-up, with the driver's imports
# CPU seconds of the calibration (5 matmuls on one thread, best of 30) on the development VM: 0.0236-0.0241
# in three runs at load average 9-13 (CPU time, unlike wall time, hardly depends on the load).
REFERENCE_MATMUL_S = 0.024
MODEL_KINDS = ("eval", "train")  # stages whose cost is model compute (their speed carries to each other)


@dataclass(frozen=True)
class StageWork:
    """One counted stage of the plan: its kind, title, work counts and whether the cache already holds it."""

    kind: str
    title: str
    counts: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    def prior_s(self) -> float | None:
        """Seconds on the development VM, None when there is no prior for this kind."""
        rates = PRIORS.get(self.kind)
        if rates is None:
            return None
        return rates.get("fixed", 0.0) + sum(rates.get(k, 0.0) * v for k, v in self.counts.items())


@dataclass
class RunEstimate:
    """Predicted seconds of the stages not yet done; `observe` feeds each finished stage back."""

    stages: list[StageWork]
    speed: float | None = None  # machine seconds per development-VM second; None = unknown (no up-front figure)
    basis: str = ""  # where `speed` comes from, for the user
    measured: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # kind -> (prior_s, actual_s)

    def observe(self, index: int, seconds: float, cached: bool) -> None:
        stage = self.stages[index]
        prior = stage.prior_s()
        if cached or prior is None or prior <= 0 or seconds <= 0:
            return
        self.measured.setdefault(stage.kind, []).append((prior, seconds))

    def ratio(self, kind: str) -> float | None:
        """Actual/prior of this kind's measured stages; else, for a model stage, of the model stages measured
        (for another stage, of every stage measured); else the machine speed."""
        own = self.measured.get(kind)
        if own:
            return sum(a for _, a in own) / sum(p for p, _ in own)
        model = [pa for k in MODEL_KINDS for pa in self.measured.get(k, [])]
        if model and kind in MODEL_KINDS:
            return sum(a for _, a in model) / sum(p for p, _ in model)
        every = [pa for pairs in self.measured.values() for pa in pairs]
        if every and kind not in MODEL_KINDS:
            return sum(a for _, a in every) / sum(p for p, _ in every)
        return self.speed

    def stage_s(self, index: int) -> float | None:
        stage = self.stages[index]
        if stage.cached:
            return 0.0
        prior, ratio = stage.prior_s(), self.ratio(stage.kind)
        return None if prior is None or ratio is None else prior * ratio

    def remaining_s(self, start: int) -> float | None:
        """Seconds of stages start.. (None when some stage that will run has no estimate)."""
        parts = [self.stage_s(i) for i in range(start, len(self.stages))]
        return None if any(p is None for p in parts) else sum(parts)

    def total_s(self, *, ray_start: bool = True) -> float | None:
        rest = self.remaining_s(0)
        if rest is None:
            return None
        if ray_start and self.speed is not None and not self.all_cached():
            rest += RAY_START_S * self.speed
        return rest

    # ---- ratios measured on this machine by earlier runs
    def save(self, path: Path) -> None:
        """Append this run's measured ratios to the machine's history (kept small: the latest per kind)."""
        history = load_history(path)
        for kind, pairs in self.measured.items():
            history[kind] = (history.get(kind, []) + [[p, a] for p, a in pairs])[-5:]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(history, indent=1) + "\n")
        tmp.replace(path)


    def all_cached(self) -> bool:
        """Whether every stage that computes something (all but the report) is in the cache already."""
        return all(s.cached for s in self.stages if s.kind != "report")

    def headline(self) -> str:
        """The whole-run estimate in words, for the first line of `tradeoff-ray run`."""
        if self.all_cached():
            return "every stage is cached: this takes seconds"
        total = self.total_s()
        if total is None:
            why = f"on {self.basis or 'this target'}" if self.speed is None else "for a Tune sweep"
            return f"no up-front time estimate {why} (ETAs follow the first stages)"
        cached = sum(s.cached for s in self.stages)
        reuse = f", {cached} of {len(self.stages)} stages cached" if cached else ""
        return f"estimated ~{fmt_s(total)} on this machine (from {self.basis}{reuse})"


def load_history(path: Path) -> dict[str, list[list[float]]]:
    try:
        data = json.loads(Path(path).read_text())
        return {k: [[float(p), float(a)] for p, a in v] for k, v in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def history_speed(history: dict[str, list[list[float]]]) -> float | None:
    """Actual/prior over the model stages earlier runs measured on this machine (None if none)."""
    pairs = [pa for k in MODEL_KINDS for pa in history.get(k, [])]
    if not pairs:
        return None
    return sum(a for _, a in pairs) / sum(p for p, _ in pairs)


def calibrate_speed(*, repeats: int = 30) -> float:
    """This machine's seconds per development-VM second, from the CPU time of a fixed fp32 matmul (best of
    `repeats`, 1-3 s): the speed of its cores, not how busy they are now — the first measured stage tells that."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: two stall at OpenMP barriers whenever anything else runs
    try:
        a, b = torch.randn(256, 576), torch.randn(576, 1536)  # SmolLM2-135M's MLP shape, 256 tokens
        a @ b  # warm-up
        best = math.inf
        for _ in range(repeats):
            t0 = time.thread_time()
            for _ in range(5):
                a @ b
            best = min(best, time.thread_time() - t0)
    finally:
        torch.set_num_threads(threads)
    return max(best / REFERENCE_MATMUL_S, 0.05)


def fmt_s(s: float) -> str:
    """'42s' or '3m05s'."""
    s = max(0.0, s)
    return f"{int(s // 60)}m{int(s % 60):02d}s" if s >= 60 else f"{s:.0f}s"


def log(msg: str) -> None:
    """One timestamped line of the run's progress on stdout."""
    print(f"[run {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class StepTimer:
    """Progress over the plan: stage k of n, elapsed, and the estimate of what is left."""

    estimate: RunEstimate
    done: int = 0
    started: float = field(default_factory=time.time)

    @property
    def total(self) -> int:
        return len(self.estimate.stages)

    def begin(self, title: str) -> None:
        elapsed = time.time() - self.started
        rest = self.estimate.remaining_s(self.done) if self.done < self.total else None
        eta = "" if rest is None else f", ETA ~{fmt_s(rest)} for the rest"
        log(f"[{self.done + 1}/{self.total}] {title} (elapsed {fmt_s(elapsed)}{eta})")

    def end(self, wall_s: float, cached: bool) -> None:
        if self.done < self.total:
            self.estimate.observe(self.done, wall_s, cached)
        self.done += 1
