"""Evaluate one model (base or merged adapter) on Spider dev and MMLU with Ray Data (the HF engine's path).

With vLLM, `evaluate` hands the label to `infer.shared.evaluate_labels` (long-lived engine actors fed
every row at once; there one engine per GPU serves every label of a stage).

    rows (infer/tasks.py) ── from_items ──> GenerationActor pool ──> SqlScorerActor pool ──> sql.jsonl
                                            (engine: vLLM or HF,      (CPU, read-only SQLite,
                                             num_gpus/num_cpus from    per-query timeout)
                                             eval.*)
    MMLU rows ─────────── from_items ──> MmluActor pool (log-likelihood of ' A'..' D') ──> mmlu_<k>shot.jsonl

Generation and scoring are separate actor pools and Ray Data streams batches between them, so
scoring never blocks generation, and a query that hangs costs its scorer one timeout
(`eval.sql_timeout_s`) while the other rows flow on. Results land in the run-dir layout of
`records.py` (`evals/<label>/sql.jsonl`, `mmlu_<k>shot.jsonl`, `summary.json`).

Library code: it never calls `ray.init` (commands and jobs do, via `ray_session`), so it runs the
same inside a local Ray, on a cluster (`RAY_ADDRESS`) and inside a Ray Tune trial. On a cluster the
model directory (`model.cache_dir`, where merged adapters are cached) must be on storage every
node can read. Inside a Tune trial the actors need cluster resources beyond the trial's own
reservation (Ray Data actors are not placed in the trial's placement group).

`evaluate_rows_local` runs the same stage functions in this process with no Ray (unit tests).
Label 'gold' is the gold-vs-gold sanity check: predictions are the gold SQL, no model is loaded.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.data.types import MmluData, SpiderData
from tradeoff_ray.errors import UserError
from tradeoff_ray.infer import stages
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.infer.summary import mmlu_summary, sql_summary
from tradeoff_ray.infer.tasks import SQL_STOP, Row, by_prompt, mmlu_rows, sql_rows
from tradeoff_ray.records import MmluResult, SqlResult, mmlu_file, write_json, write_jsonl

GOLD = "gold"
TASKS = ("sql", "mmlu")
SCORER_BATCH = 8  # rows per scorer call: small, so results stream out while generation continues
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class ServePlan:
    """What evaluation will run: which engine and why, which weights, which adapter."""

    engine: str  # 'hf' | 'vllm' | 'gold'
    reason: str
    spec: EngineSpec | None
    model: str  # description of the base model
    adapter: str | None = None
    adapter_hash: str | None = None
    merged: bool = False
    gpus_per_actor: float = 0.0

    def describe(self) -> str:
        if self.spec is None:
            return "gold predictions (no model)"
        s = self.spec
        device = "GPU" if self.gpus_per_actor else "CPU"
        how = "" if not self.adapter else (" + merged LoRA" if self.merged else " (its own weights)")
        return f"{s.kind} on {device}: {self.model}{how} [{s.model_path}]"


def serves_shared(cfg: ExperimentConfig) -> bool:
    """True when evaluation runs through `infer.shared` (vLLM: long-lived engine actors fed every row at
    once; with eval.adapters lora/auto one engine per GPU serves all labels, with merged one per label)."""
    from tradeoff_ray.infer.engine import select_engine

    engine, _ = select_engine(cfg.eval)
    if cfg.eval.adapters == "lora" and engine != "vllm":
        raise UserError(f"eval.adapters=lora serves adapters through vLLM multi-LoRA, but the engine here is "
                        f"{engine}; set eval.adapters=merged (or auto)")
    return engine == "vllm"


def eval_dir(run_dir: Path, label: str) -> Path:
    return Path(run_dir) / "evals" / label


def plan_serving(cfg: ExperimentConfig, *, label: str, adapter_dir: Path | None = None) -> ServePlan:
    """Pick the engine (printing which and why), resolve the model, merge the adapter when needed."""
    from tradeoff_ray.infer.engine import gpu_present, select_engine

    if label == GOLD:
        if adapter_dir is not None:
            raise UserError("label 'gold' scores the gold SQL against itself; it takes no adapter")
        return ServePlan(engine=GOLD, reason="label 'gold': predictions are the gold SQL", spec=None, model="none")
    from tradeoff_ray.infer.adapters import check_adapter_dir, is_full_model_dir, weights_hash
    from tradeoff_ray.models import cache_root, resolve_model

    engine, reason = select_engine(cfg.eval)
    print(f"[eval] engine: {engine} ({reason})", flush=True)
    base = resolve_model(cfg.model)
    served, digest, merged = base, None, False
    if adapter_dir is not None:
        adapter = Path(adapter_dir) if is_full_model_dir(adapter_dir) else check_adapter_dir(adapter_dir)
        digest = weights_hash(adapter)
        served, merged = _merge(base, adapter, cache_root(cfg.model)), not is_full_model_dir(adapter)
    gpu = engine == "vllm" or gpu_present()[0]
    gpus = cfg.eval.gpus_per_generation_actor if gpu else 0.0
    if engine == "vllm" and gpus <= 0:
        raise UserError("eval.engine vllm needs a GPU per generation actor; set eval.gpus_per_generation_actor "
                        "to 1 (or a fraction), or eval.engine=hf")
    spec = EngineSpec(kind=engine, model_path=served.path, dtype=cfg.model.dtype, batch_size=cfg.eval.batch_size,
                      threads=max(1, math.ceil(cfg.eval.cpus_per_generation_actor)), revision=served.revision,
                      vllm=cfg.eval.vllm.model_dump())
    return ServePlan(engine=engine, reason=reason, spec=spec, model=base.description or base.path,
                     adapter=None if adapter_dir is None else str(adapter_dir), adapter_hash=digest, merged=merged,
                     gpus_per_actor=gpus)


def _merge(base: Any, adapter: Path, root: Path) -> Any:
    """Merge here, or — when this driver has no GPU but the Ray cluster has — in a one-GPU Ray task, so a
    large base is merged in bf16 on a GPU rather than in fp32 in the driver's memory. The merged copy is
    written under `model.cache_dir`, which on a cluster must be storage every node reads."""
    import torch

    from tradeoff_ray.infer.adapters import is_full_model_dir, merged_model_dir, served_model

    if is_full_model_dir(adapter):
        return served_model(base, adapter, cache_root=root)
    if not torch.cuda.is_available():
        import ray

        if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0:
            remote = ray.remote(num_gpus=1)(merged_model_dir)
            return ray.get(remote.remote(base, adapter, cache_root=root))
    return merged_model_dir(base, adapter, cache_root=root)


def load_tokenizer(plan: ServePlan) -> Any:
    """The served model's tokenizer (renders chat prompts in the driver); None in gold mode."""
    if plan.spec is None:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(plan.spec.model_path, revision=plan.spec.revision)


# ------------------------------------------------------------------------------------------ public entry


def evaluate(cfg: ExperimentConfig, *, label: str, out_dir: Path, adapter_dir: Path | None = None,
             spider: SpiderData | None = None, mmlu: MmluData | None = None, tasks: Sequence[str] = TASKS,
             use_ray: bool = True) -> dict[str, Any]:
    """Score one model on Spider dev (EX) and the MMLU subset; write per-example JSONL; return the summary.

    `out_dir` is the run directory (results go to `evals/<label>/`). `spider`/`mmlu` default to the
    loaders' reading of `cfg.data`. Needs a running Ray (callers start it) unless `use_ray=False`.
    """
    bad = sorted(set(tasks) - set(TASKS))
    if bad:
        raise UserError(f"unknown evaluation tasks {bad}; choose from {list(TASKS)}")
    if label != GOLD and use_ray and serves_shared(cfg):
        from tradeoff_ray.infer.shared import evaluate_labels

        return evaluate_labels(cfg, labels={label: adapter_dir}, out_dir=out_dir, spider=spider, mmlu=mmlu,
                               tasks=tasks)[label]
    if label == GOLD:
        tasks = [t for t in tasks if t == "sql"]
    plan = plan_serving(cfg, label=label, adapter_dir=adapter_dir)
    tokenizer = load_tokenizer(plan)
    target = eval_dir(out_dir, label)
    summary: dict[str, Any] = {"label": label, "engine": plan.engine, "engine_reason": plan.reason,
                               "served": plan.describe(), "model": plan.model, "adapter": plan.adapter,
                               "adapter_hash": plan.adapter_hash, "merged": plan.merged,
                               "config_hash": cfg.section_hash("model", "data", "prompt", "eval"),
                               "eval_config": cfg.eval.model_dump(mode="json"), "timing": {}}
    if "sql" in tasks:
        if spider is None:
            from tradeoff_ray.data.spider import load_spider

            spider = load_spider(cfg.data)
        rows, missing = sql_rows(cfg, spider, tokenizer, label=label)
        t0 = time.perf_counter()
        if use_ray:
            done = run_sql_dataset(rows, cfg=cfg, plan=plan, partial=target / "sql.partial.jsonl",
                                   name=f"eval-{label}-sql")
        else:
            done = run_sql_local(rows, cfg=cfg, plan=plan)
        seconds = time.perf_counter() - t0
        results = sorted([stages.sql_result(r, label) for r in done] + missing, key=lambda r: r.example_id)
        write_jsonl(target / "sql.jsonl", results)
        summary["sql"] = sql_summary(results)
        summary["sql"]["source"] = spider.source
        summary["timing"]["sql"] = _timing(len(rows), seconds)
        _print_done("sql", len(rows), seconds, summary["sql"]["ex"])
    if "mmlu" in tasks:
        if mmlu is None:
            from tradeoff_ray.data.mmlu import load_mmlu

            mmlu = load_mmlu(cfg.data)
        rows = mmlu_rows(cfg, mmlu, tokenizer)
        t0 = time.perf_counter()
        if use_ray:
            done = run_mmlu_dataset(rows, cfg=cfg, plan=plan, partial=target / "mmlu.partial.jsonl",
                                    name=f"eval-{label}-mmlu")
        else:
            done = run_mmlu_local(rows, cfg=cfg, plan=plan)
        seconds = time.perf_counter() - t0
        results = sorted((stages.mmlu_result(r, label) for r in done), key=lambda r: (r.shots, r.example_id))
        for shots in cfg.eval.mmlu_shots:
            write_jsonl(target / mmlu_file(shots), [r for r in results if r.shots == shots])
        summary["mmlu"] = mmlu_summary(results)
        summary["mmlu_source"] = mmlu.source
        summary["timing"]["mmlu"] = _timing(len(rows), seconds)
        _print_done("mmlu", len(rows), seconds, None)
    write_json(target / "summary.json", summary)
    return summary


def _timing(n: int, seconds: float) -> dict[str, float]:
    return {"rows": n, "seconds": round(seconds, 3), "rows_per_s": round(n / seconds, 3) if seconds > 0 else None}


def _print_done(task: str, n: int, seconds: float, ex: dict | None) -> None:
    rate = n / seconds if seconds > 0 else float("inf")
    tail = f", EX {ex['accuracy']:.1%} of {ex['n']} scored" if ex and ex.get("n") else ""
    print(f"[eval {task}] {n} rows in {seconds:.1f}s ({rate:.2f} q/s){tail}", flush=True)


# ------------------------------------------------------------------------------------------ Ray Data runs


def run_sql_dataset(rows: list[Row], *, cfg: ExperimentConfig, plan: ServePlan,
                    preset_column: str | None = None, partial: Path | None = None,
                    name: str | None = None) -> list[Row]:
    """Generation actors -> scorer actors over `rows`; returns the scored rows (any order).

    `preset_column` skips the model: the text in that column is the prediction, scored as SQL
    (gold mode uses 'gold_sql'). Gold mode implies it. `partial`: see `_collect`. `name`: the dataset's
    name on the Ray dashboard (stage and label).
    """
    import ray.data

    if not rows:
        return []
    if preset_column is None and plan.engine == GOLD:
        preset_column = "gold_sql"
    ds = ray.data.from_items(by_prompt(rows))
    if preset_column is not None:
        ds = ds.map_batches(stages.preset_batch, fn_kwargs={"column": preset_column}, batch_format="pandas",
                            batch_size=SCORER_BATCH, num_cpus=cfg.eval.cpus_per_scorer_actor)
    else:
        ds = ds.map_batches(
            stages.GenerationActor,
            fn_constructor_kwargs={"spec": plan.spec.as_dict(), "max_new_tokens": cfg.eval.max_new_tokens,
                                   "stop": SQL_STOP},
            compute=ray.data.ActorPoolStrategy(size=cfg.eval.generation_actors),
            num_cpus=cfg.eval.cpus_per_generation_actor, num_gpus=plan.gpus_per_actor,
            batch_size=cfg.eval.batch_size, batch_format="pandas")
    ds = ds.map_batches(
        stages.SqlScorerActor,
        fn_constructor_kwargs={"timeout_s": cfg.eval.sql_timeout_s, "max_rows": cfg.eval.max_rows,
                               "keep_distinct": cfg.eval.keep_distinct, "extract": preset_column is None},
        compute=ray.data.ActorPoolStrategy(size=cfg.eval.scorer_actors),
        num_cpus=cfg.eval.cpus_per_scorer_actor, batch_size=SCORER_BATCH, batch_format="pandas")
    if name:
        ds.set_name(name)
    return _collect(ds, total=len(rows), task="sql", partial=partial)


def run_mmlu_dataset(rows: list[Row], *, cfg: ExperimentConfig, plan: ServePlan,
                     partial: Path | None = None, name: str | None = None) -> list[Row]:
    """MMLU actors (log-likelihood or generative) over `rows`; returns the scored rows (any order)."""
    import ray.data

    if not rows:
        return []
    if plan.spec is None:
        raise UserError("MMLU needs a model; label 'gold' evaluates Spider only")
    ds = ray.data.from_items(by_prompt(rows)).map_batches(
        stages.MmluActor, fn_constructor_kwargs={"spec": plan.spec.as_dict(), "mode": cfg.eval.mmlu_mode},
        compute=ray.data.ActorPoolStrategy(size=cfg.eval.generation_actors),
        num_cpus=cfg.eval.cpus_per_generation_actor, num_gpus=plan.gpus_per_actor,
        batch_size=cfg.eval.batch_size, batch_format="pandas")
    if name:
        ds.set_name(name)
    return _collect(ds, total=len(rows), task="mmlu", partial=partial)


def _collect(ds: Any, *, total: int, task: str, partial: Path | None = None) -> list[Row]:
    """Stream the dataset's output into rows, printing counts, rate and ETA as they arrive.

    With `partial`, every finished row is also appended there as it arrives (JSONL), so a run that
    dies part-way keeps what it computed; the file is removed once all rows are in.
    """
    import json

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
                print(progress_line(task, len(out), total, now - t0, first=first), file=sys.stderr, flush=True)
    finally:
        if sink is not None:
            sink.close()
    if partial is not None and len(out) == total:
        partial.unlink(missing_ok=True)
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
    return f"[eval {task}] {done}/{total} rows · {rate:.2f} q/s · elapsed {elapsed:.0f}s · ETA {eta_s}"


# ------------------------------------------------------------------------------------------ no-Ray runs


def run_sql_local(rows: list[Row], *, cfg: ExperimentConfig, plan: ServePlan, engine: Any = None,
                  preset_column: str | None = None) -> list[Row]:
    """The SQL stages as plain calls in this process (same functions the actors run)."""
    from tradeoff_ray.score.sql_score import SqlScorer

    if preset_column is None and plan.engine == GOLD:
        preset_column = "gold_sql"
    if preset_column is not None:
        generated = stages.preset_rows(rows, column=preset_column)
    else:
        engine = engine or _local_engine(plan)
        generated = []
        for chunk in _chunks(by_prompt(rows), cfg.eval.batch_size):
            generated += stages.generate_rows(engine, chunk, max_new_tokens=cfg.eval.max_new_tokens, stop=SQL_STOP)
    scorer = SqlScorer(timeout_s=cfg.eval.sql_timeout_s, max_rows=cfg.eval.max_rows,
                       keep_distinct=cfg.eval.keep_distinct)
    try:
        return stages.score_sql_rows(scorer, generated, extract=preset_column is None)
    finally:
        scorer.close()


def run_mmlu_local(rows: list[Row], *, cfg: ExperimentConfig, plan: ServePlan, engine: Any = None) -> list[Row]:
    if engine is None:
        if plan.spec is None:
            raise UserError("MMLU needs a model; label 'gold' evaluates Spider only")
        engine = _local_engine(plan)
    fn = stages.mmlu_generative_rows if cfg.eval.mmlu_mode == "generative" else stages.mmlu_loglikelihood_rows
    out: list[Row] = []
    for chunk in _chunks(by_prompt(rows), cfg.eval.batch_size):
        out += fn(engine, chunk)
    return out


def _local_engine(plan: ServePlan) -> Any:
    """The plan's engine in this process, leaving torch's thread count alone (it is process-wide here)."""
    import dataclasses

    return stages.build_engine(dataclasses.replace(plan.spec, threads=None))


def evaluate_rows_local(cfg: ExperimentConfig, *, label: str, engine: Any = None, sql: list[Row] = (),
                        mmlu: list[Row] = (), preset_column: str | None = None,
                        plan: ServePlan | None = None) -> tuple[list[SqlResult], list[MmluResult]]:
    """Rows -> result records through the same stages, in this process, no Ray (unit tests).

    Give an `engine` (any `Engine`) or a `plan`; `preset_column` scores that column as the SQL.
    """
    plan = plan or ServePlan(engine="given", reason="engine passed in", spec=None, model="given")
    if engine is None and plan.spec is None and preset_column is None and (sql or mmlu):
        raise ValueError("evaluate_rows_local needs an engine, a plan with a spec, or preset_column")
    sql_done = run_sql_local(list(sql), cfg=cfg, plan=plan, engine=engine, preset_column=preset_column) if sql else []
    mmlu_done = run_mmlu_local(list(mmlu), cfg=cfg, plan=plan, engine=engine) if mmlu else []
    return ([stages.sql_result(r, label) for r in sql_done], [stages.mmlu_result(r, label) for r in mmlu_done])


def _chunks(rows: list[Row], n: int) -> Iterable[list[Row]]:
    for i in range(0, len(rows), n):
        yield rows[i:i + n]
