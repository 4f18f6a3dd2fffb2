"""Evaluate one model (base, adapter or full fine-tune) on every configured task with Ray Data.

    rows of every task (tasks/) ── from_items ──> EngineStage pool ──> ScoreStage pool ──> evals/<label>/<task>.jsonl
                                                 (engine: HF, or a     (CPU: each row scored by its
                                                  preset for 'gold';    task — SQL on read-only SQLite
                                                  num_gpus/num_cpus     with a per-query timeout, the
                                                  from eval.*)          MMLU option, the GSM8K number)

Generation and scoring are separate actor pools and Ray Data streams batches between them, so scoring
never blocks generation, and a query that hangs costs its scorer one timeout (`eval.sql_timeout_s`)
while the other rows flow on. One engine pool serves every task of the label (the model loads once).
With vLLM, `evaluate` hands the label to `infer.shared.evaluate_labels` (long-lived engine actors fed
every row at once; there one engine per GPU serves every label of a stage).

Library code: it never calls `ray.init` (commands and jobs do, via `ray_session`), so it runs the
same inside a local Ray, on a cluster (`RAY_ADDRESS`) and inside a Ray Tune trial. `use_ray=False` runs
the same stage functions in this process (unit tests). Label 'gold' serves each task's reference
outputs (`Task.gold_output`) through a preset-predictions engine: the scoring path must give 100 %.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.infer import stages
from tradeoff_ray.infer.plan import PRESET, ServePlan, eval_dir, load_tokenizer, plan_serving, serves_shared
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.records import GOLD, task_file, write_json, write_jsonl
from tradeoff_ray.tasks import Row, Task, TaskData, configured_tasks
from tradeoff_ray.tasks.base import task_summary

SCORER_BATCH = 8  # rows per scorer call: small, so results stream out while generation continues
PROGRESS_EVERY_S = 10.0
PARTIAL = "partial.jsonl"  # evals/<label>/partial.jsonl: rows finished so far, removed once the label is written


# ------------------------------------------------------------------------------------------ rows and records


def has_gold(task: Task) -> bool:
    """Whether the task gives reference outputs (and so takes part in the gold check)."""
    return type(task).gold_output is not Task.gold_output


def load_data(cfg: ExperimentConfig, tasks: Sequence[Task],
              data: Mapping[str, TaskData] | None = None) -> dict[str, TaskData]:
    """Each task's data: what the caller already loaded, else the task's loader on `cfg`."""
    given = dict(data or {})
    return {t.name: given[t.name] if t.name in given else t.load(cfg) for t in tasks}


def label_rows(cfg: ExperimentConfig, tasks: Sequence[Task], data: Mapping[str, TaskData], tokenizer: Any, *,
               label: str, adapter: str | None = None, items: Mapping[str, Sequence[Any]] | None = None,
               ) -> tuple[list[Row], dict[str, list[Any]], dict[str, str]]:
    """(rows of every task tagged with label and adapter, each task's records of items that cannot be served,
    the preset outputs by prompt for label 'gold'). `items`: task -> items, default the task's selection.

    Gold rows carry the key '<task>:<example_id>' as their prompt (no model reads it; duplicate questions
    with different references stay apart); their prompt_hash is still the real prompt's."""
    rows: list[Row] = []
    unserved: dict[str, list[Any]] = {}
    presets: dict[str, str] = {}
    for task in tasks:
        chosen = (items or {}).get(task.name)
        chosen = task.select(cfg, data[task.name]) if chosen is None else list(chosen)
        task_rows, unserved[task.name] = task.rows(cfg, data[task.name], chosen, tokenizer)
        for r in task_rows:
            r = {**r, "label": label, "adapter": adapter}
            if label == GOLD:
                r["prompt"] = f"{task.name}:{r['example_id']}"
                presets[r["prompt"]] = task.gold_output(r)
            rows.append(r)
    return rows, unserved, presets


def write_task(task: Task, label: str, target: Path, rows: Sequence[Row], unserved: Sequence[Any],
               *, source: str) -> dict[str, Any]:
    """Write evals/<label>/<task>.jsonl from the scored rows (plus unservable items); the task's summary."""
    records = [task.record(r, label) for r in rows]
    for u in unserved:
        u.label = label
    records = sorted(records + list(unserved), key=task.sort_key)
    write_jsonl(target / task_file(task.name), records)
    engine_s = sum(float(r.get("gen_s") or 0.0) for r in rows)
    return {"source": source, "rows": len(rows), "unserved": len(unserved), "engine_s": round(engine_s, 3),
            "measures": task_summary(task, records)}


def label_summary(cfg: ExperimentConfig, label: str, *, engine: str, reason: str, served: str, model: str,
                  adapter: str | None, adapter_hash: str | None, merged: bool) -> dict[str, Any]:
    """The head of a label's summary.json (its per-task blocks are added by `write_task`)."""
    return {"label": label, "engine": engine, "engine_reason": reason, "served": served, "model": model,
            "adapter": adapter, "adapter_hash": adapter_hash, "merged": merged,
            "config_hash": cfg.section_hash("model", "data", "prompt", "eval"),
            "eval_config": cfg.eval.model_dump(mode="json"), "tasks": {}, "timing": {}}


# ------------------------------------------------------------------------------------------ public entry


def evaluate(cfg: ExperimentConfig, *, label: str, out_dir: Path, adapter_dir: Path | None = None,
             data: Mapping[str, TaskData] | None = None, tasks: Sequence[Task] | None = None,
             items: Mapping[str, Sequence[Any]] | None = None, use_ray: bool = True) -> dict[str, Any]:
    """Score one model on every task of `tasks` (default: `eval.tasks`); write per-example JSONL per task
    into `out_dir/evals/<label>/`; return the label's summary.

    `data` holds already loaded task data (else each task loads its own), `items` the items to score per
    task (else each task's selection). Needs a running Ray (callers start it) unless `use_ray=False`.
    """
    tasks = list(configured_tasks(cfg) if tasks is None else tasks)
    if label == GOLD:
        tasks = [t for t in tasks if has_gold(t)]
    data = load_data(cfg, tasks, data)
    if label != GOLD and use_ray and serves_shared(cfg):
        from tradeoff_ray.infer.shared import evaluate_labels

        return evaluate_labels(cfg, labels={label: adapter_dir}, out_dir=out_dir, data=data, tasks=tasks,
                               items=items)[label]
    plan = plan_serving(cfg, label=label, adapter_dir=adapter_dir)
    tokenizer = load_tokenizer(plan)
    target = eval_dir(out_dir, label)
    rows, unserved, presets = label_rows(cfg, tasks, data, tokenizer, label=label, items=items)
    if plan.engine == PRESET:
        plan = ServePlan(engine=PRESET, reason=plan.reason, model=plan.model,
                         spec=EngineSpec(kind=PRESET, model_path="", presets=presets))
    t0 = time.perf_counter()
    if use_ray:
        done = run_dataset(rows, cfg=cfg, plan=plan, tasks=tasks, partial=target / PARTIAL, name=f"eval-{label}")
    else:
        done = run_local(rows, cfg=cfg, plan=plan, tasks=tasks)
    seconds = time.perf_counter() - t0
    summary = label_summary(cfg, label, engine=plan.engine, reason=plan.reason, served=plan.describe(),
                            model=plan.model, adapter=plan.adapter, adapter_hash=plan.adapter_hash,
                            merged=plan.merged)
    for task in tasks:
        mine = [r for r in done if r["task"] == task.name]
        summary["tasks"][task.name] = write_task(task, label, target, mine, unserved[task.name],
                                                 source=data[task.name].source)
    summary["timing"] = {"rows": len(rows), "seconds": round(seconds, 3),
                         "rows_per_s": round(len(rows) / seconds, 3) if seconds > 0 else None}
    write_json(target / "summary.json", summary)
    (target / PARTIAL).unlink(missing_ok=True)
    print(f"[eval {label}] {len(rows)} rows of {[t.name for t in tasks]} in {seconds:.1f}s", flush=True)
    return summary


# ------------------------------------------------------------------------------------------ Ray Data run


def _uniform(rows: list[Row]) -> list[Row]:
    """Rows with the union of every row's columns (None where a task has no such column), so rows of
    several tasks form one dataset with one schema."""
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    return [{k: r.get(k) for k in keys} for r in rows]


def run_dataset(rows: list[Row], *, cfg: ExperimentConfig, plan: ServePlan, tasks: Sequence[Task],
                partial: Path | None = None, name: str | None = None) -> list[Row]:
    """Engine actors -> score actors over `rows` (any tasks); returns the scored rows (any order).

    `partial`: see `_collect`. `name`: the dataset's name on the Ray dashboard (stage and label)."""
    import ray.data

    if not rows:
        return []
    preset = plan.engine == PRESET
    ds = ray.data.from_items(_uniform(stages.by_prompt(rows)))
    ds = ds.map_batches(
        stages.EngineStage, fn_constructor_kwargs={"spec": plan.spec},
        compute=ray.data.ActorPoolStrategy(size=1 if preset else cfg.eval.generation_actors),
        num_cpus=cfg.eval.cpus_per_scorer_actor if preset else cfg.eval.cpus_per_generation_actor,
        num_gpus=0 if preset else plan.gpus_per_actor, batch_size=cfg.eval.batch_size, batch_format="pandas",
        **({"resources": cfg.eval.generation_resources} if cfg.eval.generation_resources and not preset else {}))
    ds = ds.map_batches(
        ScoreStages, fn_constructor_kwargs={"tasks": list(tasks), "cfg": cfg},
        compute=ray.data.ActorPoolStrategy(size=cfg.eval.scorer_actors),
        num_cpus=cfg.eval.cpus_per_scorer_actor, batch_size=SCORER_BATCH, batch_format="pandas")
    if name:
        ds.set_name(name)
    return _collect(ds, total=len(rows), what=name or "eval", partial=partial)


class ScoreStages:
    """Ray Data stage: scores each row by its task, each task's scorer opened on first use in this actor."""

    def __init__(self, tasks: Sequence[Task], cfg: ExperimentConfig) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.cfg = cfg
        self.scorers: dict[str, Any] = {}

    def __call__(self, batch):
        rows = stages._records(batch)
        out = []
        for name in dict.fromkeys(r["task"] for r in rows):
            task = self.tasks[name]
            if name not in self.scorers:
                self.scorers[name] = task.open_scorer(self.cfg)
            out += stages.score_rows(task, self.scorers[name], [r for r in rows if r["task"] == name])
        return stages._frame(out)


def _collect(ds: Any, *, total: int, what: str, partial: Path | None = None) -> list[Row]:
    """Stream the dataset's output into rows, printing counts, rate and ETA as they arrive.

    With `partial`, every finished row is also appended there as it arrives (JSONL), so a run that
    dies part-way keeps what it computed; the caller removes it once the results are written.
    """
    out: list[Row] = []
    t0 = last = time.perf_counter()
    first: tuple[int, float] | None = None  # (rows, seconds) when the first rows arrived
    sink = None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        sink = open(partial, "w", encoding="utf-8")
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pandas"):
            rows = stages._records(batch)
            out.extend(rows)
            if sink is not None:
                sink.writelines(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rows)
                sink.flush()
            now = time.perf_counter()
            first = first or (len(out), now - t0)
            if now - last >= PROGRESS_EVERY_S or len(out) == total:
                last = now
                print(progress_line(what, len(out), total, now - t0, first=first), file=sys.stderr, flush=True)
    finally:
        if sink is not None:
            sink.close()
    return out


def progress_line(task: str, done: int, total: int, elapsed: float, *,
                  first: tuple[int, float] | None = None) -> str:
    """Counts, rate and ETA. With `first` (rows, seconds when the first rows arrived) the ETA uses the rate
    since then: actor start-up and model load, paid before the first rows, would inflate it several-fold."""
    rate = done / elapsed if elapsed > 0 else 0.0
    steady = rate
    if first is not None:
        rows0, t_first = first
        steady = (done - rows0) / (elapsed - t_first) if done > rows0 and elapsed > t_first else 0.0
    eta = (total - done) / steady if steady > 0 else (0.0 if done >= total else float("nan"))
    eta_s = "?" if eta != eta else f"{int(eta // 60)}m{int(eta % 60):02d}s"
    return f"[{task}] {done}/{total} rows · {rate:.2f} q/s · elapsed {elapsed:.0f}s · ETA {eta_s}"


# ------------------------------------------------------------------------------------------ no-Ray run


def run_local(rows: list[Row], *, cfg: ExperimentConfig, plan: ServePlan, tasks: Sequence[Task],
              engine: Any = None) -> list[Row]:
    """The same stages as plain calls in this process: serve every row, then score it by its task."""
    import dataclasses

    if engine is None:
        spec = plan.spec if plan.spec.kind != "hf" else dataclasses.replace(plan.spec, threads=None)
        engine = stages.build_engine(spec)  # threads=None: torch's thread count is process-wide here
    served = stages.engine_rows(engine, stages.by_prompt(rows))
    by_name = {t.name: t for t in tasks}
    out: list[Row] = []
    for name in dict.fromkeys(r["task"] for r in served):
        out += stages.score_here(by_name[name], cfg, [r for r in served if r["task"] == name])
    return out


def evaluate_rows_local(cfg: ExperimentConfig, *, label: str, engine: Any, tasks: Sequence[Task],
                        rows: list[Row]) -> dict[str, list[Any]]:
    """Rows -> each task's result records through the same stages, in this process, no Ray (unit tests)."""
    done = run_local(rows, cfg=cfg, plan=ServePlan(engine="given", reason="engine passed in", spec=None,
                                                   model="given"), tasks=tasks, engine=engine)
    return {t.name: sorted((t.record(r, label) for r in done if r["task"] == t.name), key=t.sort_key)
            for t in tasks}
