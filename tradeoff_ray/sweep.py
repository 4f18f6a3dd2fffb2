"""Explore LoRA settings with Ray Tune; each trial trains, is scored on every configured task, and reports them.

The current Train-in-Tune pattern: the Tune trainable is a *driver function* (`_trial`) that builds
and fits a `TorchTrainer` through `ray_train.train_variant` (Ray Train reports flow to Tune through
`TuneReportCallback`, so ASHA sees the validation loss at every checkpoint), then evaluates the
finished adapter with `infer.pipeline.evaluate` and reports every measure of the configured tasks
(`spider`, `mmlu_0shot`, `gsm8k_flexible`, ... as fractions) — so the `ResultGrid` holds every objective
of every finished trial. The trial function itself reserves no
CPU: its TorchTrainer worker and the evaluation actors ask for their own.

Search (`tune.search`): grid (every dim a `grid`), random (grid dims crossed, other dims sampled
`num_samples` times), optuna (one objective per task, all maximized: the task's first measure, e.g.
Spider EX, MMLU at the first shot count, GSM8K flexible; grid dims become categorical). `tune.scheduler: asha` stops weak trials early on validation loss.

A trial whose training diverges (NaN/inf loss or gradient norm, `health.py`) raises `TrainingDiverged`:
the trial ends in ERROR, which Optuna records as a failed trial and ASHA drops, and the trials table
marks it `diverged` — never objective values, which would read like a trained model's result.

Output: `<run_dir>/tune/trials.csv` and `.parquet` (one row per trial: settings, metrics, adapter,
`pareto` = not dominated on the objectives), per-trial run dirs under `tune/trials/`.

A trial runs on whatever node Tune places it; its run dir is on that node's disk. With `ray.storage_path`
set, the trial's adapter goes to the run's storage (`train_variant` uploads it; `adapter_uri`), its
evaluation fetches it from there, and the trial dir's results (not weights) are uploaded to
`<storage>/tune-trials/<run dir name>/trial-<id>/` (`trial_uri`), so the driver can read every trial.
"""
from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from tradeoff_ray.config import ExperimentConfig, LoraVariant, SearchDim, TuneConfig, result_settings
from tradeoff_ray.errors import UserError
from tradeoff_ray.train.health import DIVERGED, TrainingDiverged

LIST_SEP = ","  # list-valued settings (target_modules) travel as "q_proj,v_proj": Optuna needs scalars
PG_FILE = "ray_train_placement_group.txt"  # written by the trial's first Train worker (see _FreeStoppedTrials)
TRIAL_DRIVER_CPUS = 0.01  # the trial function waits on Ray Train and Ray Data; it computes nothing itself


# ---------------------------------------------------------------- search space (pure)


def _encode(value: Any) -> Any:
    return LIST_SEP.join(map(str, value)) if isinstance(value, (list, tuple)) else value


def check_tune_config(cfg: ExperimentConfig) -> TuneConfig:
    """The tune section, or a UserError listing what a sweep would fail on (`ExperimentConfig.tune_problems`,
    which the config also checks on load when tune.enabled); `tradeoff-ray tune` runs without tune.enabled."""
    problems = cfg.tune_problems()
    if problems:
        raise UserError("invalid tune settings: " + "\n  ".join(problems))
    return cfg.tune


def search_space(t: TuneConfig) -> dict[str, Any]:
    """Ray Tune param_space from `tune.space` (grid -> grid_search, or categorical for Optuna)."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, dim in sorted(t.space.items()):
        space[key] = _domain(dim, optuna=t.search == "optuna", tune=tune)
    return space


def _domain(dim: SearchDim, *, optuna: bool, tune: Any) -> Any:
    if dim.grid is not None:
        values = [_encode(v) for v in dim.grid]
        return tune.choice(values) if optuna else tune.grid_search(values)
    if dim.choice is not None:
        return tune.choice([_encode(v) for v in dim.choice])
    if dim.uniform is not None:
        return tune.uniform(*dim.uniform)
    if dim.loguniform is not None:
        return tune.loguniform(*dim.loguniform)
    return tune.randint(dim.randint[0], dim.randint[1] + 1)  # inclusive upper bound, as the config reads


def trial_variant(base: LoraVariant, params: dict[str, Any], *, name: str) -> LoraVariant:
    """`base` with a trial's sampled settings applied (and validated like any variant)."""
    settings = base.model_dump()
    settings["name"] = name
    for key, value in params.items():
        if key == "alpha_over_r":
            continue
        if key == "target_modules" and isinstance(value, str):
            value = [m for m in value.split(LIST_SEP) if m]
        settings[key] = value
    if "max_steps" in params:
        settings["num_epochs"] = None
    if "num_epochs" in params:
        settings["max_steps"] = None
    for key in ("r", "max_steps", "save_steps", "eval_steps"):
        if isinstance(settings.get(key), float):
            settings[key] = int(round(settings[key]))
    if "alpha_over_r" in params:
        settings["alpha"] = float(params["alpha_over_r"]) * settings["r"]
    try:
        return LoraVariant.model_validate(settings)
    except Exception as err:  # pydantic's message names the field
        raise UserError(f"trial settings {params} give an invalid variant: {err}") from None


def objectives(cfg: ExperimentConfig) -> list[str]:
    """The metrics a sweep maximizes: the first measure of each configured task (all maximized)."""
    from tradeoff_ray.tasks import configured_tasks

    return [task.measure_keys(cfg)[0] for task in configured_tasks(cfg)]


def trial_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    """Every measure of an eval summary as a fraction ({'spider': 0.42, 'mmlu_0shot': 0.51, ...})."""
    out: dict[str, float | None] = {}
    for block in (summary.get("tasks") or {}).values():
        for key, m in block["measures"].items():
            out[key] = None if m.get("accuracy_pct") is None else m["accuracy_pct"] / 100.0
    return out


def pareto_flags(points: Sequence[Sequence[float | None]]) -> list[bool]:
    """True where no other point is >= on every objective and > on one (maximizing); a point with a missing
    value never is (and never dominates)."""
    def whole(p: Sequence[float | None]) -> bool:
        return all(v is not None and v == v for v in p)

    flags = []
    for i, a in enumerate(points):
        if not whole(a):
            flags.append(False)
            continue
        dominated = any(j != i and whole(b) and all(x >= y for x, y in zip(b, a)) and any(x > y for x, y in zip(b, a))
                        for j, b in enumerate(points))
        flags.append(not dominated)
    return flags


# ---------------------------------------------------------------- the trial (runs in a Tune actor)


def trial_name(trial_id: str) -> str:
    return f"trial-{trial_id}"


def trial_path(run_dir: Path, trial_id: str) -> Path:
    """A trial's own run dir (train/<trial>/..., evals/<trial>/...)."""
    return Path(run_dir) / "tune" / "trials" / trial_name(trial_id)



def trial_storage(storage_path: str, run_dir: Path) -> str:
    """Where trials upload their run dirs (results only): `<storage>/tune-trials/<run dir name>`."""
    return f"{storage_path.rstrip('/')}/tune-trials/{Path(run_dir).name}"


def _trial(params: dict[str, Any], *, cfg: ExperimentConfig, run_dir: str, data: dict[str, Any]) -> None:
    import ray.tune

    from tradeoff_ray.train.ray_train import train_variant

    trial_id = ray.tune.get_context().get_trial_id()
    variant = trial_variant(cfg.tune.base, params, name=trial_name(trial_id))
    trial_dir = trial_path(Path(run_dir), trial_id)
    trial_dir.mkdir(parents=True, exist_ok=True)
    result = train_variant(cfg, variant, run_dir=trial_dir, spider=data["spider"].data, report_to_tune=True,
                           placement_group_file=trial_dir / PG_FILE)
    if result["status"] == DIVERGED:
        raise TrainingDiverged(result["message"])
    metrics: dict[str, Any] = {
        "eval_loss": result["final_eval_loss"], "train_loss": result["last_train_loss"],
        "steps": result["steps"], "adapter_dir": result["adapter_dir"], "adapter_uri": result.get("adapter_uri"),
        "train_seconds": result["train_seconds"], "over_length_dropped": result["over_length_dropped"],
        "done_training": True,
    }
    if cfg.tune.evaluate_trials:
        from tradeoff_ray.infer.pipeline import evaluate

        summary = evaluate(cfg, label=variant.name, out_dir=trial_dir, data=data,
                           adapter_dir=result.get("adapter_uri") or result["adapter_dir"])
        metrics.update(trial_metrics(summary))
    if cfg.ray.storage_path:  # the trial dir is on this trial's node: its results go to the run's storage
        from tradeoff_ray.storage import upload_run_dir

        metrics["trial_uri"] = upload_run_dir(trial_dir, trial_storage(cfg.ray.storage_path, Path(run_dir)))
    ray.tune.report({k: v for k, v in metrics.items() if v is not None})


# ---------------------------------------------------------------- the sweep (driver; Ray started by the caller)


def _free_stopped_trials_callback(run_dir: Path):
    """A Tune callback that frees the Train placement group of each trial Tune stopped before it finished.

    A stopped trial's actor is killed; Ray Train V2 then frees its workers' placement group only through
    a cleaner that polls the State API, which needs the dashboard (absent from a laptop's local Ray), so
    the group's CPUs stay reserved and the next trial waits forever (ray-project/ray#54305). The trial's
    first worker wrote the group's id into the trial dir; this removes it once Tune has stopped the trial.
    """
    import ray.tune
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    class FreeStoppedTrials(ray.tune.Callback):
        def __init__(self):
            self.pending: list[str] = []

        def _stopped(self, trial: Any) -> None:
            if not (trial.last_result or {}).get("done_training"):
                self.pending.append(trial.trial_id)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._stopped(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._stopped(trial)

        def on_step_begin(self, iteration, trials, **info):
            self._free()

        def on_experiment_end(self, trials, **info):
            self._free()

        def _free(self) -> None:
            import ray

            while self.pending:
                path = trial_path(run_dir, self.pending.pop()) / PG_FILE
                if not path.is_file():
                    continue
                pg_id = path.read_text().strip()
                entry = ray.util.placement_group_table().get(pg_id) or {}
                if entry.get("state") == "CREATED":
                    remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))
                    print(f"[tune] freed the Ray Train workers' resources of stopped trial {path.parent.name}",
                          flush=True)

    return FreeStoppedTrials()


@contextlib.contextmanager
def _lenient_metric_check(active: bool) -> Iterator[None]:
    """Multi-objective Optuna needs the objectives only in the final report; Tune otherwise demands them in
    every intermediate (training) report. Tune reads this switch from the environment."""
    key = "TUNE_DISABLE_STRICT_METRIC_CHECKING"
    old = os.environ.get(key)
    if active:
        os.environ[key] = "1"
    try:
        yield
    finally:
        if active:
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_tune(cfg: ExperimentConfig, *, run_dir: Path, data: dict[str, Any] | None = None) -> Path:
    """Run the sweep of `cfg.tune`, write tune/trials.csv (+ .parquet), print the table; returns the CSV path."""
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler

    t = check_tune_config(cfg)
    base = t.base
    check_tune_hardware(cfg)
    run_dir = Path(run_dir)
    from tradeoff_ray.infer.pipeline import load_data
    from tradeoff_ray.tasks import configured_tasks, get_task

    tasks = configured_tasks(cfg) if t.evaluate_trials else []
    data = load_data(cfg, [*tasks, *([] if "spider" in [x.name for x in tasks] else [get_task("spider")])], data)
    scheduler = None
    if t.scheduler == "asha":
        scheduler = ASHAScheduler(metric="eval_loss", mode="min", max_t=10_000, grace_period=t.asha_grace_period,
                                  reduction_factor=t.asha_reduction_factor)
    if t.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        goals = objectives(cfg)
        search_alg = OptunaSearch(metric=goals, mode=["max"] * len(goals), seed=base.seed)
        limit = t.max_concurrent_trials  # Tune wraps a Searcher in a ConcurrencyLimiter
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # a SearchGenerator takes its concurrency limit itself (Tune ignores TuneConfig's for it)
        search_alg = BasicVariantGenerator(random_state=base.seed, max_concurrent=t.max_concurrent_trials)
        limit = None
    trainable = ray.tune.with_parameters(_trial, cfg=cfg, run_dir=str(run_dir), data=data)
    # The trial only drives: its TorchTrainer worker and the evaluation actors reserve their own CPUs/GPUs.
    # (Tune refuses an all-zero request, hence a token 0.01 CPU.)
    trainable = ray.tune.with_resources(trainable, {"cpu": TRIAL_DRIVER_CPUS})
    tuner = ray.tune.Tuner(
        trainable,
        param_space=search_space(t),
        tune_config=ray.tune.TuneConfig(num_samples=t.num_samples, max_concurrent_trials=limit,
                                        search_alg=search_alg, scheduler=scheduler),
        run_config=ray.tune.RunConfig(name=f"{run_dir.name}-tune",
                                      storage_path=cfg.ray.storage_path or str(run_dir.resolve() / "ray"),
                                      callbacks=[_free_stopped_trials_callback(run_dir)]),
    )
    print(f"[tune] search {t.search}, {t.num_samples} sample(s), scheduler {t.scheduler}, "
          f"searching {sorted(t.space)}; trials under {run_dir / 'tune' / 'trials'}", flush=True)
    with _lenient_metric_check(t.search == "optuna"):
        grid = tuner.fit()
    rows = trial_rows(grid, objectives(cfg))
    path = write_trials_table(rows, run_dir / "tune")
    print(format_trials(rows, objectives(cfg)))
    print(f"[tune] ResultGrid: {grid.experiment_path}")
    print(f"[tune] trials table: {path} (+ .parquet)")
    return path


def check_tune_hardware(cfg: ExperimentConfig) -> None:
    """QLoRA in the base or among the searched values must be possible here (checked before any trial)."""
    from tradeoff_ray.train.checks import check_can_train

    dim = cfg.tune.space.get("quantization")
    values = (dim.grid or dim.choice or []) if dim is not None else []
    check_can_train(cfg, [cfg.tune.base, *[cfg.tune.base.model_copy(update={"quantization": "nf4"})
                                            for v in values if v == "nf4"][:1]])


# ---------------------------------------------------------------- the trials table


def setting_columns(keys: Iterable[str]) -> list[str]:
    """The trial settings the table shows: the searched ones among `keys`, in LoraVariant's field order
    (alpha_over_r after them), leaving out RUNTIME_ONLY ones."""
    order = [*LoraVariant.model_fields, "alpha_over_r"]
    shown = result_settings({k: None for k in order if k in set(keys)}, "training.variants")
    return list(shown)


def trial_rows(grid: Any, goals: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per trial of a ResultGrid: settings, metrics, adapter, status, pareto flag."""
    rows = []
    for result in grid:
        config = dict(result.config or {})
        metrics = dict(result.metrics or {})
        row: dict[str, Any] = {"trial_id": metrics.get("trial_id") or Path(str(result.path)).name}
        for key in setting_columns(config):
            row[key] = config[key]
        for key in ("eval_loss", "train_loss", *goals, "steps", "train_seconds", "over_length_dropped"):
            row[key] = metrics.get(key)
        row["adapter_dir"] = metrics.get("adapter_dir")
        row["adapter_uri"] = metrics.get("adapter_uri")
        row["trial_uri"] = metrics.get("trial_uri")
        row["status"] = (DIVERGED if result.error and TrainingDiverged.__name__ in _describe(result.error)
                         else "error" if result.error else "complete" if metrics.get("done_training")
                         else "stopped_early")
        row["error"] = None if result.error is None else _describe(result.error)[:500]
        row["trial_path"] = str(result.path)
        rows.append(row)
    flags = pareto_flags([tuple(r.get(g) for g in goals) for r in rows])
    for row, flag in zip(rows, flags):
        row["pareto"] = flag
    return rows


def _describe(error: BaseException) -> str:
    """'TrainingDiverged: training of variant ...' (the trial's own exception when Ray wrapped it)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    return f"{type(error).__name__}: {error}"


def write_trials_table(rows: list[dict[str, Any]], out_dir: Path) -> Path:
    """tune/trials.csv and tune/trials.parquet; returns the CSV path."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    csv = out_dir / "trials.csv"
    frame.to_csv(csv, index=False)
    frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}).to_parquet(
        out_dir / "trials.parquet", index=False)
    return csv


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def format_trials(rows: list[dict[str, Any]], goals: Sequence[str]) -> str:
    """A plain-text table of the trials, Pareto-optimal ones marked with *."""
    keys = setting_columns({k for r in rows for k in r})
    head = ["", "trial", *keys, "eval_loss", *goals, "status"]
    body = [["*" if r.get("pareto") else "", r["trial_id"], *(_fmt(r.get(k)) for k in keys),
             _fmt(r.get("eval_loss")), *(_fmt(r.get(g)) for g in goals), r["status"]]
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [head, *body]]
    pareto = sum(1 for r in rows if r.get("pareto"))
    return "\n".join(lines) + f"\n* = Pareto-optimal on ({', '.join(goals)}): {pareto} of {len(rows)} trials"
