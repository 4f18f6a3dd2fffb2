"""Explore LoRA settings with Ray Tune; trials are chosen on validation sets, never on the reported test sets.

The current Train-in-Tune pattern: the Tune trainable is a *driver function* (`_trial`) that builds
and fits a `TorchTrainer` through `ray_train.train_variant`; a Ray Train callback relays each Train
report (validation loss, checkpoint) to the trial, which reports it to Tune, so ASHA sees the
validation loss at every checkpoint. The finished adapter is scored with `infer.pipeline.evaluate` on
the validation sets of `data.validation` (Spider questions of the held-out train databases, MMLU `val`,
a GSM8K train slice; `tune.validation_limit` per task) and the trial reports every measure with a
`val_` prefix (`val_spider`, `val_mmlu_0shot`, `val_gsm8k_flexible`, ... as fractions). The test sets are
scored once, for the chosen trial only (`chosen_trial`, `tune.select_on`), by the caller: the `run`
pipeline (`experiment.py`, label `tuned`, which the report shows) or the `tune` command. Choosing on the
test sets would fit the choice to them and overstate the chosen settings in the report.

Search (`tune.search`): grid (every dim a `grid`), random (grid dims crossed, other dims sampled
`num_samples` times), optuna (one objective per task, all maximized: the task's first validation measure,
e.g. `val_spider`, MMLU at the first shot count, GSM8K flexible; grid dims become categorical).
`tune.scheduler: asha` stops weak trials early on validation loss. With asha every checkpoint is also
scored on the validation sets, so every report carries the objectives: the last report of a trial ASHA
stops is what Optuna's study records for it (Ray's OptunaSearch tells Optuna the objectives of a trial's
last result; without them the trial would stay unrecorded and Optuna would learn nothing from it).

A trial whose training diverges (NaN/inf loss or gradient norm, `health.py`) raises `TrainingDiverged`:
the trial ends in ERROR, which Optuna records as a failed trial and ASHA drops, and the trials table
marks it `diverged` — never objective values, which would read like a trained model's result.

A sweep that was interrupted (Ctrl-C, a killed driver) resumes where it stopped when run again with the
same run dir: `Tuner.restore` keeps finished trials and restarts unfinished ones (their Ray Train runs
continue from their newest checkpoint); errored trials stay errored.

Output: `<run_dir>/tune/trials.csv` and `.parquet` (one row per trial: settings, validation metrics,
adapter, `pareto` = not dominated on the objectives), `tune/chosen.json` (the chosen trial),
`tune/validation/<task>.json` (the validation items), `tune/validation/evals/baseline/` (the base model on
them), per-trial run dirs under `tune/trials/` (their validation scores in `<trial>/validation/evals/`).

A trial runs on whatever node Tune places it; its run dir is on that node's disk. With `ray.storage_path`
set, the trial's adapter goes to the run's storage (`train_variant` uploads it; `adapter_uri`), its
evaluation fetches it from there, and the trial dir's results (not weights) are uploaded to
`<storage>/tune-trials/<run dir name>/trial-<id>/` (`trial_uri`), so the driver can read every trial.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from tradeoff_ray.config import ExperimentConfig, LoraVariant, SearchDim, TuneConfig, result_settings
from tradeoff_ray.errors import UserError
from tradeoff_ray.train.health import DIVERGED, TrainingDiverged

LIST_SEP = ","  # list-valued settings (target_modules) travel as "q_proj,v_proj": Optuna needs scalars
PG_FILE = "ray_train_placement_group.txt"  # written by the trial's first Train worker (see _FreeStoppedTrials)
TRIAL_DRIVER_CPUS = 0.01  # the trial function waits on Ray Train and Ray Data; it computes nothing itself
VAL = "val_"  # prefix of validation metrics: trials are never scored on the test sets
CHOSEN_FILE = "chosen.json"


# ---------------------------------------------------------------- search space (pure)


def _encode(value: Any) -> Any:
    return LIST_SEP.join(map(str, value)) if isinstance(value, (list, tuple)) else value


def check_tune_config(cfg: ExperimentConfig) -> TuneConfig:
    """The tune section, or a UserError listing what a sweep would fail on (`ExperimentConfig.tune_problems`,
    which the config also checks on load when tune.enabled); `tradeoff-ray tune` runs without tune.enabled.
    Trials are scored on validation sets (never the test sets): that needs held-out Spider train databases,
    and a `select_on` measure some task reports."""
    problems = cfg.tune_problems()
    if problems:
        raise UserError("invalid tune settings: " + "\n  ".join(problems))
    if cfg.tune.evaluate_trials:
        if cfg.data.validation_fraction <= 0:
            raise UserError("trials are scored on Spider train databases held out from training (never on the "
                            "test sets), which needs data.validation_fraction > 0 (e.g. 0.1)")
        select_key(cfg)  # a select_on no task measures fails here, not after the sweep
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
    """The validation metrics a sweep maximizes: the first measure of each configured task, `val_`-prefixed."""
    from tradeoff_ray.tasks import configured_tasks

    return [VAL + task.measure_keys(cfg)[0] for task in configured_tasks(cfg)]


def select_key(cfg: ExperimentConfig) -> str:
    """The validation metric that picks the chosen trial (`tune.select_on`, default the first objective)."""
    from tradeoff_ray.tasks import configured_tasks

    if cfg.tune.select_on is None:
        return objectives(cfg)[0]
    known = [key for task in configured_tasks(cfg) for key in task.measure_keys(cfg)]
    name = cfg.tune.select_on.removeprefix(VAL)
    if name not in known:
        raise UserError(f"tune.select_on is {cfg.tune.select_on!r}, which no configured task measures; "
                        f"choose one of {known}")
    return VAL + name


def trial_metrics(summary: dict[str, Any], *, prefix: str = "") -> dict[str, float | None]:
    """Every measure of an eval summary as a fraction ({'spider': 0.42, 'mmlu_0shot': 0.51, ...}), each key
    with `prefix` (`val_` for validation sets)."""
    out: dict[str, float | None] = {}
    for block in (summary.get("tasks") or {}).values():
        for key, m in block["measures"].items():
            out[prefix + key] = None if m.get("accuracy_pct") is None else m["accuracy_pct"] / 100.0
    return out


def chosen_trial(rows: Sequence[dict[str, Any]], goals: Sequence[str], key: str) -> dict[str, Any] | None:
    """The completed trial with the best validation `key` (ties: the other objectives in order); None when
    no trial completed with a value for it."""
    order = [key, *(g for g in goals if g != key)]
    done = [r for r in rows if r.get("status") == "complete" and r.get(key) is not None and r.get("adapter_dir")]
    if not done:
        return None
    return max(done, key=lambda r: tuple(-math.inf if r.get(g) is None else r[g] for g in order))


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


def _report_relay() -> Any:
    """A Ray Train callback that puts each report (rank 0's metrics, the checkpoint) on a queue the trial reads.

    Ray's own TuneReportCallback forwards reports to Tune directly, from the Train controller; relaying them
    to the trial lets it score a checkpoint on the validation sets before Tune (and ASHA, and Optuna) see
    the report, without blocking the controller. The queue is owned by the trial, so it dies with it."""
    from ray.train import UserCallback
    from ray.util.queue import Queue

    class RelayReports(UserCallback):
        def __init__(self) -> None:
            self.queue = Queue(actor_options={"num_cpus": 0})

        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            self.queue.put((dict(metrics[0]), checkpoint))

    return RelayReports()


def _validate(cfg: ExperimentConfig, *, label: str, out_dir: Path, adapter_dir: Path | str | None,
              data: dict[str, Any],
              validation: dict[str, list[Any]]) -> dict[str, float]:
    """Score an adapter (None: the base model) on the validation items with the evaluation pipeline; its `val_`
    metrics. Results go to out_dir/evals/<label>/, as any evaluation's."""
    from tradeoff_ray.infer.pipeline import evaluate
    from tradeoff_ray.tasks import get_task

    summary = evaluate(cfg, label=label, out_dir=out_dir, adapter_dir=adapter_dir, data=data,
                       tasks=[get_task(name) for name in validation], items=validation)
    return {k: v for k, v in trial_metrics(summary, prefix=VAL).items() if v is not None}


def _trial(params: dict[str, Any], *, cfg: ExperimentConfig, run_dir: str, data: dict[str, Any],
           validation: dict[str, list[Any]]) -> None:
    import ray.tune

    from tradeoff_ray.train.ray_train import HF_CHECKPOINT_NAME, train_variant

    trial_id = ray.tune.get_context().get_trial_id()
    variant = trial_variant(cfg.tune.base, params, name=trial_name(trial_id))
    trial_dir = trial_path(Path(run_dir), trial_id)
    trial_dir.mkdir(parents=True, exist_ok=True)
    val_dir = trial_dir / "validation"
    every_checkpoint = bool(validation) and cfg.tune.scheduler == "asha"  # a stop may come at any report
    relay = _report_relay()
    outcome: dict[str, Any] = {}

    def fit() -> None:  # in a thread: this one relays Train's reports to Tune while training runs
        try:
            outcome["result"] = train_variant(cfg, variant, run_dir=trial_dir, spider=data["spider"].data,
                                              callbacks=[relay], placement_group_file=trial_dir / PG_FILE)
        except BaseException as err:  # re-raised below, in the trial's thread
            outcome["error"] = err
        finally:
            relay.queue.put(None)

    thread = threading.Thread(target=fit, name=f"train-{trial_id}", daemon=True)
    thread.start()
    scored: dict[str, float] = {}  # validation metrics of the newest scored checkpoint
    scored_step = None
    while (item := relay.queue.get()) is not None:
        metrics, checkpoint = item
        if every_checkpoint and checkpoint is not None:
            step = metrics.get("step")
            with checkpoint.as_directory() as ckpt:
                scored = _validate(cfg, label=f"{variant.name}@step{step}", out_dir=val_dir,
                                   adapter_dir=Path(ckpt) / HF_CHECKPOINT_NAME, data=data, validation=validation)
            scored_step = step
        if checkpoint is not None:
            metrics["checkpoint_path"] = checkpoint.path
        ray.tune.report({**metrics, **scored})
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    if result["status"] == DIVERGED:
        raise TrainingDiverged(result["message"])
    metrics: dict[str, Any] = {
        "eval_loss": result["final_eval_loss"], "train_loss": result["last_train_loss"],
        "steps": result["steps"], "adapter_dir": result["adapter_dir"], "adapter_uri": result.get("adapter_uri"),
        "train_seconds": result["train_seconds"], "over_length_dropped": result["over_length_dropped"],
        "done_training": True,
    }
    if validation:
        final_step = (result.get("checkpoints") or [{}])[-1].get("step")
        if scored_step is None or scored_step != final_step:  # the final adapter is the last checkpoint's
            scored = _validate(cfg, label=variant.name, out_dir=val_dir,
                               adapter_dir=result.get("adapter_uri") or Path(result["adapter_dir"]),
                               data=data, validation=validation)
        metrics.update(scored)
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
            while self.pending:
                _free_placement_group(trial_path(run_dir, self.pending.pop()) / PG_FILE)

    return FreeStoppedTrials()


def _free_placement_group(path: Path) -> None:
    """Remove the Ray Train placement group whose id a trial's first worker wrote to `path`, if it still holds
    resources (see `_free_stopped_trials_callback`)."""
    import ray
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    if not path.is_file():
        return
    pg_id = path.read_text().strip()
    entry = ray.util.placement_group_table().get(pg_id) or {}
    if entry.get("state") == "CREATED":
        remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id))))
        print(f"[tune] freed the Ray Train workers' resources of stopped trial {path.parent.name}", flush=True)


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
    """Run the sweep of `cfg.tune` (or resume it, when `run_dir` holds an interrupted one), write tune/trials.csv
    (+ .parquet) and tune/chosen.json, print the table; returns the CSV path."""
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
    validation = validation_sets(cfg, tasks, data, out_dir=run_dir / "tune" / "validation")
    baseline = validation_baseline(cfg, run_dir=run_dir, data=data, validation=validation)
    goals = objectives(cfg)
    scheduler = None
    if t.scheduler == "asha":
        scheduler = ASHAScheduler(metric="eval_loss", mode="min", max_t=10_000, grace_period=t.asha_grace_period,
                                  reduction_factor=t.asha_reduction_factor)
    if t.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(metric=goals, mode=["max"] * len(goals), seed=base.seed)
        limit = t.max_concurrent_trials  # Tune wraps a Searcher in a ConcurrencyLimiter
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # a SearchGenerator takes its concurrency limit itself (Tune ignores TuneConfig's for it)
        search_alg = BasicVariantGenerator(random_state=base.seed, max_concurrent=t.max_concurrent_trials)
        limit = None
    trainable = ray.tune.with_parameters(_trial, cfg=cfg, run_dir=str(run_dir), data=data, validation=validation)
    # The trial only drives: its TorchTrainer worker and the evaluation actors reserve their own CPUs/GPUs.
    # (Tune refuses an all-zero request, hence a token 0.01 CPU.)
    trainable = ray.tune.with_resources(trainable, {"cpu": TRIAL_DRIVER_CPUS})
    storage = cfg.ray.storage_path or str(run_dir.resolve() / "ray")
    name = f"{run_dir.name}-tune"
    experiment = f"{storage.rstrip('/')}/{name}"
    if ray.tune.Tuner.can_restore(experiment):
        # finished trials are kept; unfinished ones restart, their Train runs continuing from their checkpoints
        print(f"[tune] resuming the interrupted sweep at {experiment}", flush=True)
        for pg_file in sorted((run_dir / "tune" / "trials").glob(f"*/{PG_FILE}")):
            _free_placement_group(pg_file)  # an interrupted trial's workers, when this Ray outlived the sweep
        tuner = ray.tune.Tuner.restore(experiment, trainable, resume_unfinished=True, resume_errored=False,
                                       restart_errored=False)
    else:
        tuner = ray.tune.Tuner(
            trainable,
            param_space=search_space(t),
            tune_config=ray.tune.TuneConfig(num_samples=t.num_samples, max_concurrent_trials=limit,
                                            search_alg=search_alg, scheduler=scheduler),
            run_config=ray.tune.RunConfig(name=name, storage_path=storage,
                                          callbacks=[_free_stopped_trials_callback(run_dir)]),
        )
    print(f"[tune] search {t.search}, {t.num_samples} sample(s), scheduler {t.scheduler}, "
          f"searching {sorted(t.space)}; trials scored on validation sets "
          f"({', '.join(f'{k}: {len(v)}' for k, v in validation.items()) or 'none'}); trials under "
          f"{run_dir / 'tune' / 'trials'}", flush=True)
    with _lenient_metric_check(t.search == "optuna"):
        grid = tuner.fit()
    check_finished(saved_statuses(grid), expected=expected_trials(t), experiment=experiment)
    rows = trial_rows(grid, goals)
    path = write_trials_table(rows, run_dir / "tune")
    chosen = chosen_trial(rows, goals, select_key(cfg))
    write_chosen(run_dir / "tune", chosen, key=select_key(cfg))
    print(format_trials(rows, goals))
    if baseline:
        scores = ", ".join(f"{g} {baseline[g]:.3f}" for g in goals if g in baseline)
        print(f"[tune] base model on the validation sets: {scores}")
    print(f"[tune] ResultGrid: {grid.experiment_path}")
    print(f"[tune] trials table: {path} (+ .parquet)")
    if chosen is not None:
        print(f"[tune] chosen on {select_key(cfg)}: trial {chosen['trial_id']} ({chosen['adapter_dir']})")
    return path


def validation_sets(cfg: ExperimentConfig, tasks: Sequence[Any], data: dict[str, Any], *,
                    out_dir: Path) -> dict[str, list[Any]]:
    """Each task's validation items (`Task.validation_items`), their ids written to out_dir/<task>.json."""
    from tradeoff_ray.records import write_json
    from tradeoff_ray.tasks.base import item_id

    out = {task.name: task.validation_items(cfg, data[task.name]) for task in tasks}
    for name, items in out.items():
        write_json(out_dir / f"{name}.json", {"task": name, "source": data[name].source, "n": len(items),
                                              "limit": cfg.tune.validation_limit,
                                              "example_ids": [item_id(x) for x in items]})
    return out


def validation_baseline(cfg: ExperimentConfig, *, run_dir: Path, data: dict[str, Any],
                        validation: dict[str, list[Any]]) -> dict[str, float]:
    """The base model's `val_` metrics (what trials gain or lose on the validation sets), evaluated once into
    tune/validation/evals/baseline/ (kept when a sweep resumes)."""
    from tradeoff_ray.records import BASELINE

    if not validation:
        return {}
    out_dir = run_dir / "tune" / "validation"
    summary = out_dir / "evals" / BASELINE / "summary.json"
    if summary.is_file():
        return {k: v for k, v in trial_metrics(json.loads(summary.read_text()), prefix=VAL).items() if v is not None}
    return _validate(cfg, label=BASELINE, out_dir=out_dir, adapter_dir=None, data=data, validation=validation)


def expected_trials(t: TuneConfig) -> int:
    """How many trials a finished sweep has: num_samples x the grid's size (grid/random), num_samples (optuna)."""
    if t.search == "optuna":
        return t.num_samples
    return t.num_samples * math.prod(len(d.grid) for d in t.space.values() if d.grid is not None)


def check_finished(statuses: Sequence[str], *, expected: int, experiment: str) -> None:
    """Refuse an interrupted sweep (trials not started, or saved while PENDING/RUNNING/PAUSED): its table would
    be partial. `statuses` are the trials' states as the experiment's saved state records them (Tune marks
    the trials it stops at an interruption TERMINATED in memory, but saves them as unfinished)."""
    finished = sum(1 for s in statuses if s in ("TERMINATED", "ERROR"))
    if len(statuses) < expected or finished < len(statuses):
        raise UserError(f"the sweep was interrupted: {finished} of {max(expected, len(statuses))} trials finished; "
                        f"run the same command again with the same run dir to resume it (Ray Tune restores "
                        f"{experiment})")


def saved_statuses(grid: Any) -> list[str]:
    """Each trial's status as the experiment state on storage records it (what `Tuner.restore` resumes from)."""
    from ray.tune import ExperimentAnalysis

    return [t.status for t in ExperimentAnalysis(grid.experiment_path, storage_filesystem=grid.filesystem).trials]


def write_chosen(out_dir: Path, chosen: dict[str, Any] | None, *, key: str) -> Path:
    """tune/chosen.json: the chosen trial's row (settings, validation metrics, adapter), or null."""
    from tradeoff_ray.records import write_json

    path = out_dir / CHOSEN_FILE
    write_json(path, {"selected_on": key, "trial": chosen})
    return path


def read_chosen(tune_dir: Path) -> dict[str, Any] | None:
    """The chosen trial's row written by `run_tune` (None when no trial completed)."""
    return json.loads((Path(tune_dir) / CHOSEN_FILE).read_text())["trial"]


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
    """One dict per trial of a ResultGrid: settings, validation metrics, adapter, status, pareto flag."""
    rows = []
    for result in grid:
        config = dict(result.config or {})
        metrics = dict(result.metrics or {})
        row: dict[str, Any] = {"trial_id": metrics.get("trial_id") or Path(str(result.path)).name}
        for key in setting_columns(config):
            row[key] = config[key]
        validation = sorted(k for k in metrics if k.startswith(VAL) and k not in goals)
        for key in ("eval_loss", "train_loss", *goals, *validation, "steps", "train_seconds", "over_length_dropped"):
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
    return "\n".join(lines) + (f"\n* = Pareto-optimal on ({', '.join(goals)}): {pareto} of {len(rows)} trials"
                               " (validation sets; the test sets are scored once, for the chosen trial)")
