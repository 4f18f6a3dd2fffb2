"""Evaluate every label of a stage (base, adapters, checkpoints) on every task with one engine per GPU.

    labels ─> rows (task, label, adapter, prompt) ─> EnginePool: one EngineActor per GPU ─┬─> light scoring (driver)
                                                     (vLLM multi-LoRA, all rows queued,   └─> heavy scoring: CPU Ray
                                                      finished rows streamed back)             tasks (SQL) ─> evals/<label>/...

Used when the engine is vLLM and `eval.adapters` is lora (or auto): an experiment with a baseline and
four adapters pays one engine start per GPU instead of one per label and task, adapters are not
merged into model copies, and the GPU is fed all rows at once instead of one synchronous batch at a
time. Tasks whose scoring is heavy (`Task.heavy_scoring`: SQL execution) are scored in CPU Ray tasks as
generations stream in, so scoring overlaps generation; the others are scored here as rows arrive.
With `eval.adapters=merged` (or the HF engine) each label is evaluated by `pipeline.evaluate` on its own.

Results land exactly where and how `pipeline.evaluate` writes them (`evals/<label>/<task>.jsonl`,
`summary.json`); the summary's `timing.shared` says which labels shared the engine and its start time.
Rows finished so far are appended to `evals/<label>/partial.jsonl` as they arrive, so a run that dies
keeps them.

Ray on the dashboard: actors `<stage>-engine-<i>-<id>` (restarted at most once; their serving call is
not retried, so a poisonous request cannot loop), scorer tasks `<stage>-score-<task>` (retried once).
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.infer import stages
from tradeoff_ray.infer.pipeline import (PARTIAL, SCORER_BATCH, evaluate, label_rows, label_summary, load_data,
                                         progress_line, write_task)
from tradeoff_ray.infer.plan import eval_dir, serves_shared
from tradeoff_ray.infer.serving import EngineActor, serve_rows, spread
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.infer.vllm_engine import AdapterRef
from tradeoff_ray.records import GOLD, write_json
from tradeoff_ray.tasks import Row, Task, TaskData, configured_tasks

ENGINE_RESTARTS = 1  # an engine actor that dies is rebuilt once; its serving call is not retried
SCORER_RETRIES = 1
SCORE_CHUNK = 8 * SCORER_BATCH  # SQL rows per scorer task


def shared_spec(cfg: ExperimentConfig, labels: Mapping[str, Path | None]) -> EngineSpec:
    """The engine that serves the base model and every adapter in `labels` (adapter name = label)."""
    from tradeoff_ray.infer.adapters import adapter_rank, fetch_weights
    from tradeoff_ray.models import resolve_model

    base = resolve_model(cfg.model)
    # checked here on a copy; each engine actor fetches its own from the same ref (`stages.on_this_node`)
    adapters = tuple(AdapterRef(name=label, path=str(d), rank=adapter_rank(fetch_weights(d, cfg.model)))
                     for label, d in labels.items() if d is not None)
    return EngineSpec(kind="vllm", model_path=base.path, dtype=cfg.model.dtype, revision=base.revision,
                      adapters=adapters, base=cfg.model, vllm=cfg.eval.vllm)


class EnginePool:
    """One long-lived `EngineActor` per GPU (`eval.generation_actors` of them), named after the stage."""

    def __init__(self, cfg: ExperimentConfig, spec: EngineSpec, *, stage: str = "eval") -> None:
        import ray

        actor = ray.remote(EngineActor)
        tag = uuid.uuid4().hex[:6]
        gpus = cfg.eval.gpus_per_generation_actor if spec.kind == "vllm" else 0  # an HF pool is the CPU check
        self.names = [f"{stage}-engine-{i}-{tag}" for i in range(cfg.eval.generation_actors)]
        self.actors = [actor.options(name=self.names[i], num_gpus=gpus,
                                     num_cpus=cfg.eval.cpus_per_generation_actor,
                                     resources=cfg.eval.generation_resources or None, max_restarts=ENGINE_RESTARTS,
                                     max_task_retries=0).remote(spec)
                       for i in range(cfg.eval.generation_actors)]
        self.info = ray.get([a.info.remote() for a in self.actors])
        self.spec = spec

    def shutdown(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []

    def __enter__(self) -> "EnginePool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def evaluate_labels(cfg: ExperimentConfig, *, labels: Mapping[str, Path | None], out_dir: Path,
                    data: Mapping[str, TaskData] | None = None, tasks: Sequence[Task] | None = None,
                    items: Mapping[str, Sequence[Any]] | None = None, stage: str = "eval",
                    pool: EnginePool | None = None, engine: Any = None) -> dict[str, dict]:
    """Score every label (label -> adapter dir, None = the base model) on `tasks`; return label -> summary.

    vLLM with `eval.adapters` lora/auto: one engine per GPU serves them all. With merged: each adapter is
    merged into a cached model copy and served by its own engine (one start per label). `pool`: an
    already started `EnginePool` to reuse; `engine`: an engine object run in this process, no Ray (tests).
    The HF engine and label 'gold' go through `pipeline.evaluate`, one label at a time.
    """
    tasks = list(configured_tasks(cfg) if tasks is None else tasks)
    data = load_data(cfg, tasks, data)
    out: dict[str, dict] = {}
    rest = dict(labels)
    if GOLD in rest:
        out[GOLD] = evaluate(cfg, label=GOLD, out_dir=out_dir, adapter_dir=rest.pop(GOLD), data=data, tasks=tasks,
                             items=items)
    if not rest:
        return out
    if pool is None and engine is None and not serves_shared(cfg):
        for label, adapter in rest.items():
            out[label] = evaluate(cfg, label=label, out_dir=out_dir, adapter_dir=adapter, data=data, tasks=tasks,
                                  items=items)
        return out
    from tradeoff_ray.infer.adapters import fetch_weights, is_full_model_dir

    merged = pool is None and engine is None and cfg.eval.adapters == "merged"
    # fully fine-tuned models are whole models: each is served by its own engine, never as a LoRA
    full = {} if engine is not None else {label: a for label, a in rest.items()
                                           if a is not None and is_full_model_dir(fetch_weights(a, cfg.model))}
    lora = {label: a for label, a in rest.items() if label not in full}
    if merged:
        groups = [({label: adapter}, merged_spec(cfg, adapter), True) for label, adapter in rest.items()]
    else:
        groups = [({label: a}, merged_spec(cfg, a), True) for label, a in full.items()]
        if lora:
            groups.insert(0, (lora, pool.spec if pool is not None else (None if engine is not None
                                                                        else shared_spec(cfg, lora)), False))
    for group, spec, own_engine in groups:
        out.update(_serve_group(cfg, group, spec=spec, merged=own_engine, out_dir=out_dir, data=data, tasks=tasks,
                                items=items, stage=stage, pool=None if own_engine else pool, engine=engine))
    return out


def merged_spec(cfg: ExperimentConfig, adapter: Path | None) -> EngineSpec:
    """An engine over the base with `adapter` merged in (on the engine's node, cached there), serving no adapters."""
    from tradeoff_ray.models import resolve_model

    base = resolve_model(cfg.model)
    return EngineSpec(kind="vllm", model_path=base.path, dtype=cfg.model.dtype, revision=base.revision,
                      base=cfg.model, weights=None if adapter is None else str(adapter),
                      vllm=cfg.eval.vllm)


def _serve_group(cfg: ExperimentConfig, labels: Mapping[str, Path | None], *, spec: EngineSpec | None, merged: bool,
                 out_dir: Path, data: Mapping[str, TaskData], tasks: Sequence[Task],
                 items: Mapping[str, Sequence[Any]] | None, stage: str, pool: EnginePool | None,
                 engine: Any) -> dict[str, dict]:
    """The labels' rows through one pool (or one in-process engine); their result files and summaries."""
    tokenizer = _tokenizer(spec, engine)
    rows: list[Row] = []
    unserved: dict[str, dict[str, list[Any]]] = {}
    for label, adapter in labels.items():
        name = label if adapter is not None and not merged else None
        mine, unserved[label], _ = label_rows(cfg, tasks, data, tokenizer, label=label, adapter=name, items=items)
        rows += mine
    partial = {label: eval_dir(out_dir, label) for label in labels}
    print(f"[{stage}] {len(labels)} label(s) x {[t.name for t in tasks]}: {len(rows)} rows, one engine per GPU",
          flush=True)
    t0 = time.perf_counter()
    if engine is not None:
        done = _score_all(cfg, tasks, [r for chunk in serve_rows(engine, rows) for r in chunk])
        info = [{"served": engine.describe(), "engine_start_s": None}]
    else:
        own = pool is None
        pool = pool or EnginePool(cfg, spec, stage=stage)
        try:
            done = _serve_ray(cfg, pool, rows, tasks=tasks, stage=stage, partial=partial)
            info = pool.info
        finally:
            if own:
                pool.shutdown()
    seconds = time.perf_counter() - t0
    shared = {"labels": list(labels), "rows": len(rows), "seconds": round(seconds, 3),
              "engines": len(info), "engine_start_s": [i["engine_start_s"] for i in info]}
    out = {}
    for label, adapter in labels.items():
        out[label] = _write_label(cfg, label, adapter, out_dir=out_dir, rows=[r for r in done if r["label"] == label],
                                  unserved=unserved[label], served=info[0]["served"], shared=shared, merged=merged,
                                  data=data, tasks=tasks)
        (partial[label] / PARTIAL).unlink(missing_ok=True)
    return out


def _score_all(cfg: ExperimentConfig, tasks: Sequence[Task], rows: list[Row]) -> list[Row]:
    by_name = {t.name: t for t in tasks}
    out: list[Row] = []
    for name in dict.fromkeys(r["task"] for r in rows):
        out += stages.score_here(by_name[name], cfg, [r for r in rows if r["task"] == name])
    return out


def _tokenizer(spec: EngineSpec | None, engine: Any) -> Any:
    if engine is not None:
        return engine.tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.model_path, revision=spec.revision)


def score_chunk(task: Task, cfg: ExperimentConfig, rows: list[Row]) -> list[Row]:
    """Ray task: score one chunk of a heavy-scoring task's served rows (e.g. SQL on read-only SQLite)."""
    return stages.score_here(task, cfg, rows)


def _serve_ray(cfg: ExperimentConfig, pool: EnginePool, rows: list[Row], *, tasks: Sequence[Task], stage: str,
               partial: dict[str, Path]) -> list[Row]:
    """Rows spread over the pool's engines; finished chunks streamed back (one thread per engine), rows of
    heavy-scoring tasks handed to scorer tasks at once, the others scored here; every finished row appended
    to its label's partial file."""
    import ray

    by_name = {t.name: t for t in tasks}
    scorers = {t.name: ray.remote(score_chunk).options(name=f"{stage}-score-{t.name}",
                                                       num_cpus=cfg.eval.cpus_per_scorer_actor,
                                                       max_retries=SCORER_RETRIES)
               for t in tasks if t.heavy_scoring}
    streams = [a.serve.options(num_returns="streaming").remote(share)
               for a, share in zip(pool.actors, spread(rows, len(pool.actors))) if share]
    inbox: queue.Queue = queue.Queue()

    def pump(stream: Any) -> None:
        try:
            for ref in stream:
                inbox.put(ref)
        except BaseException as err:  # handed to the driver thread, which raises it
            inbox.put(err)
        finally:
            inbox.put(None)

    for s in streams:
        threading.Thread(target=pump, args=(s,), daemon=True).start()
    sinks: dict[str, Any] = {}
    for path in partial.values():
        path.mkdir(parents=True, exist_ok=True)
    done: list[Row] = []
    scoring: list[tuple[Any, int]] = []
    open_streams, t0, last = len(streams), time.perf_counter(), 0.0
    try:
        while open_streams:
            item = inbox.get()
            if item is None:
                open_streams -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            chunk = ray.get(item)
            for name in dict.fromkeys(r["task"] for r in chunk):
                mine = [r for r in chunk if r["task"] == name]
                if name in scorers:
                    for i in range(0, len(mine), SCORE_CHUNK):
                        part = mine[i:i + SCORE_CHUNK]
                        scoring.append((scorers[name].remote(by_name[name], cfg, part), len(part)))
                else:
                    scored = stages.score_here(by_name[name], cfg, mine)
                    _append(sinks, partial, scored)
                    done += scored
            now = time.perf_counter()
            if now - last >= 10.0:
                last = now
                print(progress_line(stage, len(done) + sum(n for _, n in scoring), len(rows), now - t0),
                      file=sys.stderr, flush=True)
        for ref, _ in scoring:
            scored = ray.get(ref)
            _append(sinks, partial, scored)
            done += scored
    finally:
        for f in sinks.values():
            f.close()
    print(progress_line(stage, len(done), len(rows), time.perf_counter() - t0), file=sys.stderr, flush=True)
    return done


def _append(sinks: dict, partial: dict[str, Path], rows: list[Row]) -> None:
    for r in rows:
        label = r["label"]
        if label not in sinks:
            sinks[label] = open(partial[label] / PARTIAL, "a", encoding="utf-8")
        sinks[label].write(json.dumps(r, default=str, ensure_ascii=False) + "\n")
    for f in sinks.values():
        f.flush()


def _write_label(cfg: ExperimentConfig, label: str, adapter: Path | None, *, out_dir: Path, rows: list[Row],
                 unserved: dict[str, list[Any]], served: str, shared: dict, merged: bool,
                 data: Mapping[str, TaskData], tasks: Sequence[Task]) -> dict[str, Any]:
    """The label's result files and summary, as `pipeline.evaluate` writes them."""
    from tradeoff_ray.infer.adapters import is_full_model_dir, weights_hash
    from tradeoff_ray.models import resolve_model

    target = eval_dir(out_dir, label)
    base = resolve_model(cfg.model)
    how = "" if adapter is None else (f" = fully fine-tuned {adapter}" if is_full_model_dir(adapter) else
                                       f" = base + merged LoRA {adapter}" if merged else
                                       f" + unmerged LoRA {adapter} (adapter '{label}')")
    summary = label_summary(cfg, label, engine="vllm", reason=f"vLLM, eval.adapters={cfg.eval.adapters}",
                            served=served + how, model=base.description or base.path,
                            adapter=None if adapter is None else str(adapter),
                            adapter_hash=None if adapter is None else weights_hash(adapter),
                            merged=merged and adapter is not None and not is_full_model_dir(adapter))
    for task in tasks:
        summary["tasks"][task.name] = write_task(task, label, target, [r for r in rows if r["task"] == task.name],
                                                 unserved[task.name], source=data[task.name].source)
    summary["timing"] = {"shared": shared}
    write_json(target / "summary.json", summary)
    return summary
