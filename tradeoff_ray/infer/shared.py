"""Evaluate every label of a stage (base, adapters, checkpoints) on every task with one engine per GPU.

    labels ─> rows (task, label, adapter, prompt) ─> EnginePool: one EngineActor per GPU ─┬─> MMLU rows
                                                     (vLLM multi-LoRA, all rows queued,   └─> SQL scorer tasks (CPU)
                                                      finished rows streamed back)             ─> evals/<label>/...

Used when the engine is vLLM and `eval.adapters` is lora (or auto): an experiment with a baseline and
four adapters pays one engine start per GPU instead of one per label and task, adapters are not
merged into model copies, and the GPU is fed all rows at once instead of one synchronous batch at a
time. SQL scoring runs in CPU Ray tasks as generations stream in, so it overlaps generation. With
`eval.adapters=merged` (or the HF engine) each label is evaluated by `pipeline.evaluate` on its own.

Results land exactly where and how `pipeline.evaluate` writes them (`evals/<label>/sql.jsonl`,
`mmlu_<k>shot.jsonl`, `summary.json`); the summary's `timing.shared` says which labels shared the engine
and its start time. Rows finished so far are appended to `evals/<label>/<task>.partial.jsonl` as they
arrive, so a run that dies keeps them.

Ray on the dashboard: actors `<stage>-engine-<i>-<id>` (restarted at most once; their serving call is
not retried, so a poisonous request cannot loop), scorer tasks `<stage>-score-sql` (retried once).
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
from tradeoff_ray.data.types import MmluData, SpiderData
from tradeoff_ray.errors import UserError
from tradeoff_ray.infer import stages
from tradeoff_ray.infer.pipeline import GOLD, SCORER_BATCH, TASKS, eval_dir, evaluate, progress_line, serves_shared
from tradeoff_ray.infer.serving import EngineActor, serve_rows, spread
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.infer.summary import mmlu_summary, sql_summary
from tradeoff_ray.infer.tasks import Row, mmlu_rows, sql_rows
from tradeoff_ray.records import SqlResult, mmlu_file, write_json, write_jsonl

ENGINE_RESTARTS = 1  # an engine actor that dies is rebuilt once; its serving call is not retried
SCORER_RETRIES = 1
SCORE_CHUNK = 8 * SCORER_BATCH  # SQL rows per scorer task


def shared_spec(cfg: ExperimentConfig, labels: Mapping[str, Path | None]) -> EngineSpec:
    """The engine that serves the base model and every adapter in `labels` (adapter name = label)."""
    from tradeoff_ray.infer.adapters import adapter_rank, check_adapter_dir
    from tradeoff_ray.models import resolve_model

    base = resolve_model(cfg.model)
    adapters = tuple({"name": label, "path": str(check_adapter_dir(d)), "rank": adapter_rank(d)}
                     for label, d in labels.items() if d is not None)
    return EngineSpec(kind="vllm", model_path=base.path, dtype=cfg.model.dtype, revision=base.revision,
                      adapters=adapters, vllm=cfg.eval.vllm.model_dump())


class EnginePool:
    """One long-lived `EngineActor` per GPU (`eval.generation_actors` of them), named after the stage."""

    def __init__(self, cfg: ExperimentConfig, spec: EngineSpec, *, stage: str = "eval") -> None:
        import ray

        actor = ray.remote(EngineActor)
        tag = uuid.uuid4().hex[:6]
        gpus = cfg.eval.gpus_per_generation_actor if spec.kind == "vllm" else 0  # an HF pool is the CPU check
        self.names = [f"{stage}-engine-{i}-{tag}" for i in range(cfg.eval.generation_actors)]
        self.actors = [actor.options(name=self.names[i], num_gpus=gpus,
                                     num_cpus=cfg.eval.cpus_per_generation_actor, max_restarts=ENGINE_RESTARTS,
                                     max_task_retries=0).remote(spec.as_dict())
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
                    spider: SpiderData | None = None, mmlu: MmluData | None = None, tasks: Sequence[str] = TASKS,
                    stage: str = "eval", pool: EnginePool | None = None, engine: Any = None) -> dict[str, dict]:
    """Score every label (label -> adapter dir, None = the base model) on `tasks`; return label -> summary.

    vLLM with `eval.adapters` lora/auto: one engine per GPU serves them all. With merged: each adapter is
    merged into a cached model copy and served by its own engine (one start per label). `pool`: an
    already started `EnginePool` to reuse; `engine`: an engine object run in this process, no Ray (tests).
    The HF engine and label 'gold' go through `pipeline.evaluate`, one label at a time.
    """
    bad = sorted(set(tasks) - set(TASKS))
    if bad:
        raise UserError(f"unknown evaluation tasks {bad}; choose from {list(TASKS)}")
    out: dict[str, dict] = {}
    rest = dict(labels)
    if GOLD in rest:
        out[GOLD] = evaluate(cfg, label=GOLD, out_dir=out_dir, adapter_dir=rest.pop(GOLD), spider=spider, tasks=tasks)
    if not rest:
        return out
    if pool is None and engine is None and not serves_shared(cfg):
        for label, adapter in rest.items():
            out[label] = evaluate(cfg, label=label, out_dir=out_dir, adapter_dir=adapter, spider=spider, mmlu=mmlu,
                                  tasks=tasks)
        return out
    if "sql" in tasks and spider is None:
        from tradeoff_ray.data.spider import load_spider

        spider = load_spider(cfg.data)
    if "mmlu" in tasks and mmlu is None:
        from tradeoff_ray.data.mmlu import load_mmlu

        mmlu = load_mmlu(cfg.data)
    from tradeoff_ray.infer.adapters import is_full_model_dir

    merged = pool is None and engine is None and cfg.eval.adapters == "merged"
    # fully fine-tuned models are whole models: each is served by its own engine, never as a LoRA
    full = {} if engine is not None else {label: a for label, a in rest.items() if a is not None and is_full_model_dir(a)}
    lora = {label: a for label, a in rest.items() if label not in full}
    if merged:
        groups = [({label: adapter}, merged_spec(cfg, adapter), True) for label, adapter in rest.items()]
    else:
        groups = [({label: a}, merged_spec(cfg, a), True) for label, a in full.items()]
        if lora:
            groups.insert(0, (lora, pool.spec if pool is not None else (None if engine is not None
                                                                        else shared_spec(cfg, lora)), False))
    for group, spec, own_engine in groups:
        out.update(_serve_group(cfg, group, spec=spec, merged=own_engine, out_dir=out_dir, spider=spider, mmlu=mmlu,
                                tasks=tasks, stage=stage, pool=None if own_engine else pool, engine=engine))
    return out


def merged_spec(cfg: ExperimentConfig, adapter: Path | None) -> EngineSpec:
    """An engine over the base with `adapter` merged in (cached), serving no adapters."""
    from tradeoff_ray.infer.pipeline import _merge
    from tradeoff_ray.models import cache_root, resolve_model

    base = resolve_model(cfg.model)
    served = base if adapter is None else _merge(base, Path(adapter), cache_root(cfg.model))
    return EngineSpec(kind="vllm", model_path=served.path, dtype=cfg.model.dtype, revision=served.revision,
                      vllm=cfg.eval.vllm.model_dump())


def _serve_group(cfg: ExperimentConfig, labels: Mapping[str, Path | None], *, spec: EngineSpec | None, merged: bool,
                 out_dir: Path, spider: SpiderData | None, mmlu: MmluData | None, tasks: Sequence[str], stage: str,
                 pool: EnginePool | None, engine: Any) -> dict[str, dict]:
    """The labels' rows through one pool (or one in-process engine); their result files and summaries."""
    tokenizer = _tokenizer(spec, engine)
    rows, missing = stage_rows(cfg, labels, tokenizer=tokenizer, spider=spider, mmlu=mmlu, tasks=tasks,
                               unmerged=not merged)
    partial = {label: eval_dir(out_dir, label) for label in labels}
    print(f"[{stage}] {len(labels)} label(s) x {list(tasks)}: {len(rows)} rows, one engine per GPU", flush=True)
    t0 = time.perf_counter()
    if engine is not None:
        done, info = _serve_here(cfg, engine, rows), [{"served": engine.describe(), "engine_start_s": None}]
    else:
        own = pool is None
        pool = pool or EnginePool(cfg, spec, stage=stage)
        try:
            done = _serve_ray(cfg, pool, rows, stage=stage, partial=partial)
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
                                  missing=missing.get(label, []), served=info[0]["served"], shared=shared,
                                  merged=merged, spider=spider, mmlu=mmlu, tasks=tasks)
        for task in ("sql", "mmlu"):
            (partial[label] / f"{task}.partial.jsonl").unlink(missing_ok=True)
    return out


def stage_rows(cfg: ExperimentConfig, labels: Mapping[str, Path | None], *, tokenizer: Any,
               spider: SpiderData | None, mmlu: MmluData | None, tasks: Sequence[str],
               unmerged: bool = True) -> tuple[list[Row], dict[str, list[SqlResult]]]:
    """Every label's rows (prompts rendered once), tagged with task, label and adapter (the label's name
    when it has an unmerged adapter, else None), and each label's unscorable Spider questions."""
    rows: list[Row] = []
    missing: dict[str, list[SqlResult]] = {}
    sql_base, mmlu_base = [], []
    if "sql" in tasks:
        sql_base, _ = sql_rows(cfg, spider, tokenizer, label="")
    if "mmlu" in tasks:
        mmlu_base = mmlu_rows(cfg, mmlu, tokenizer)
    for label, adapter in labels.items():
        name = label if adapter is not None and unmerged else None
        if "sql" in tasks:
            missing[label] = _missing_for(cfg, spider, label)
        rows += [{**r, "task": "sql", "label": label, "adapter": name} for r in sql_base]
        rows += [{**r, "task": "mmlu", "label": label, "adapter": name} for r in mmlu_base]
    return rows, missing


def _missing_for(cfg: ExperimentConfig, spider: SpiderData, label: str) -> list[SqlResult]:
    """The label's Spider questions whose database is missing (no prompt needed for them)."""
    from tradeoff_ray.infer.tasks import select_dev

    absent = [ex for ex in select_dev(cfg, spider) if ex.db_id not in spider.db_paths]
    return sql_rows(cfg, spider, None, label=label, examples=absent)[1]


def _tokenizer(spec: EngineSpec | None, engine: Any) -> Any:
    if engine is not None:
        return engine.tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.model_path, revision=spec.revision)


def _serve_here(cfg: ExperimentConfig, engine: Any, rows: list[Row]) -> list[Row]:
    from tradeoff_ray.score.sql_score import SqlScorer

    done = [r for chunk in serve_rows(engine, rows, max_new_tokens=cfg.eval.max_new_tokens,
                                      mmlu_mode=cfg.eval.mmlu_mode) for r in chunk]
    scorer = SqlScorer(timeout_s=cfg.eval.sql_timeout_s, max_rows=cfg.eval.max_rows,
                       keep_distinct=cfg.eval.keep_distinct)
    try:
        sql = stages.score_sql_rows(scorer, [r for r in done if r["task"] == "sql"])
    finally:
        scorer.close()
    return [r for r in done if r["task"] != "sql"] + sql


def score_sql_chunk(rows: list[Row], timeout_s: float, max_rows: int, keep_distinct: bool) -> list[Row]:
    """Ray task: score generated SQL rows (read-only SQLite, per-query timeout)."""
    from tradeoff_ray.score.sql_score import SqlScorer

    scorer = SqlScorer(timeout_s=timeout_s, max_rows=max_rows, keep_distinct=keep_distinct)
    try:
        return stages.score_sql_rows(scorer, rows)
    finally:
        scorer.close()


def _serve_ray(cfg: ExperimentConfig, pool: EnginePool, rows: list[Row], *, stage: str,
               partial: dict[str, Path]) -> list[Row]:
    """Rows spread over the pool's engines; finished chunks streamed back (one thread per engine), SQL
    chunks handed to scorer tasks at once, every finished row appended to its label's partial file."""
    import ray

    score = ray.remote(score_sql_chunk).options(name=f"{stage}-score-sql", num_cpus=cfg.eval.cpus_per_scorer_actor,
                                                max_retries=SCORER_RETRIES)
    streams = [a.serve.options(num_returns="streaming").remote(share, cfg.eval.max_new_tokens, cfg.eval.mmlu_mode)
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
    sinks = {}
    for path in partial.values():
        path.mkdir(parents=True, exist_ok=True)
    done: list[Row] = []
    scoring: list[Any] = []
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
            sql = [r for r in chunk if r["task"] == "sql"]
            other = [r for r in chunk if r["task"] != "sql"]
            for i in range(0, len(sql), SCORE_CHUNK):
                scoring.append(score.remote(sql[i:i + SCORE_CHUNK], cfg.eval.sql_timeout_s, cfg.eval.max_rows,
                                            cfg.eval.keep_distinct))
            _append(sinks, partial, other)
            done += other
            now = time.perf_counter()
            if now - last >= 10.0:
                last = now
                print(progress_line(stage, len(done) + SCORE_CHUNK * len(scoring), len(rows), now - t0),
                      file=sys.stderr, flush=True)
        for ref in scoring:
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
        key = (r["label"], r["task"])
        if key not in sinks:
            sinks[key] = open(partial[r["label"]] / f"{r['task']}.partial.jsonl", "a", encoding="utf-8")
        sinks[key].write(json.dumps(r, default=str, ensure_ascii=False) + "\n")
    for f in sinks.values():
        f.flush()


def _write_label(cfg: ExperimentConfig, label: str, adapter: Path | None, *, out_dir: Path, rows: list[Row],
                 missing: list[SqlResult], served: str, shared: dict, merged: bool, spider: SpiderData | None,
                 mmlu: MmluData | None, tasks: Sequence[str]) -> dict[str, Any]:
    """The label's result files and summary, as `pipeline.evaluate` writes them."""
    from tradeoff_ray.infer.adapters import is_full_model_dir, weights_hash
    from tradeoff_ray.models import resolve_model

    target = eval_dir(out_dir, label)
    base = resolve_model(cfg.model)
    how = "" if adapter is None else (f" = fully fine-tuned {adapter}" if is_full_model_dir(adapter) else
                                       f" = base + merged LoRA {adapter}" if merged else
                                       f" + unmerged LoRA {adapter} (adapter '{label}')")
    summary: dict[str, Any] = {
        "label": label, "engine": "vllm", "engine_reason": f"vLLM, eval.adapters={cfg.eval.adapters}",
        "served": served + how, "model": base.description or base.path,
        "adapter": None if adapter is None else str(adapter),
        "adapter_hash": None if adapter is None else weights_hash(adapter),
        "merged": merged and adapter is not None and not is_full_model_dir(adapter),
        "config_hash": cfg.section_hash("model", "data", "prompt", "eval"),
        "eval_config": cfg.eval.model_dump(mode="json"), "timing": {"shared": shared}}
    if "sql" in tasks:
        sql = [r for r in rows if r["task"] == "sql"]
        results = sorted([stages.sql_result(r, label) for r in sql] + missing, key=lambda r: r.example_id)
        write_jsonl(target / "sql.jsonl", results)
        summary["sql"] = sql_summary(results)
        summary["sql"]["source"] = spider.source
        summary["timing"]["sql"] = {"rows": len(sql), "engine_s": round(sum(r["gen_s"] for r in sql), 3)}
    if "mmlu" in tasks:
        mm = [r for r in rows if r["task"] == "mmlu"]
        results = sorted((stages.mmlu_result(r, label) for r in mm), key=lambda r: (r.shots, r.example_id))
        for shots in cfg.eval.mmlu_shots:
            write_jsonl(target / mmlu_file(shots), [r for r in results if r.shots == shots])
        summary["mmlu"] = mmlu_summary(results)
        summary["mmlu_source"] = mmlu.source
        summary["timing"]["mmlu"] = {"rows": len(mm), "engine_s": round(sum(r["gen_s"] for r in mm), 3)}
    write_json(target / "summary.json", summary)
    return summary
