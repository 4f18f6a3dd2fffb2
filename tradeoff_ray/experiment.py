"""The whole experiment as one plan of cached stages: the body of `tradeoff-ray run`.

    data manifests → gold-vs-gold check → baseline eval → train each variant (or a Tune sweep)
    → eval each variant (and its checkpoints) → analysis → report

A variant whose training diverged (NaN/inf loss or gradient norm, `train/health.py`) is not evaluated;
the report lists it as diverged and the other variants go on. Its train stage is cached like any other
(the same settings diverge the same way), and every rerun reports the divergence again.

Each stage's key hashes exactly the inputs that change its outputs (model weights, adapter
weights, the settings of its config section, the data manifests and the contents of every data
file), so a rerun, a resumed run, or a new run that changes only one variant recomputes only what
changed (see `stages.py`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tradeoff_ray.config import ExperimentConfig, LoraVariant
from tradeoff_ray.records import BASELINE, GOLD, checkpoint_label, read_jsonl, write_json
from tradeoff_ray.stages import Stage, StageCache, file_hash, files_digest, link_tree, stable_hash
from tradeoff_ray.train.health import DIVERGED, Divergence

# Settings that change only how fast evaluation runs, not what it produces.
_EVAL_RESOURCE_FIELDS = {"generation_actors", "scorer_actors", "cpus_per_generation_actor",
                         "gpus_per_generation_actor", "cpus_per_scorer_actor", "evaluate_checkpoints", "batch_size"}


def _log(msg: str) -> None:
    print(f"[run {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class StepTimer:
    """Progress over the plan: step k of n, elapsed, and an ETA from the steps that ran so far."""

    total: int
    done: int = 0
    started: float = field(default_factory=time.time)
    computed_s: list[float] = field(default_factory=list)

    def begin(self, title: str) -> None:
        elapsed = time.time() - self.started
        remaining = self.total - self.done
        eta = ""
        if self.computed_s:
            eta = f", ETA ~{_fmt_s(sum(self.computed_s) / len(self.computed_s) * remaining)}"
        _log(f"[{self.done + 1}/{self.total}] {title} (elapsed {_fmt_s(elapsed)}{eta})")

    def end(self, wall_s: float, cached: bool) -> None:
        self.done += 1
        if not cached:
            self.computed_s.append(wall_s)


def _fmt_s(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s" if s >= 60 else f"{s:.0f}s"


def eval_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The parts of the config that determine evaluation outputs."""
    ev = {k: v for k, v in cfg.eval.model_dump(mode="json").items() if k not in _EVAL_RESOURCE_FIELDS}
    return {"eval": ev, "prompt": cfg.prompt.model_dump(mode="json")}


def data_cache_key(cfg: ExperimentConfig, spider: Any, mmlu: Any, dev: list, mmlu_questions: list) -> str:
    """Cache key of the data every stage reads: the questions chosen, the data settings, and the
    contents of every file they came from (an in-place edit of dev.json, a database or a CSV changes it)."""
    from tradeoff_ray.data.mmlu import mmlu_files
    from tradeoff_ray.data.spider import spider_files

    return stable_hash(spider.source, [e.example_id for e in dev], [q.example_id for q in mmlu_questions],
                       cfg.data.model_dump(mode="json"), files_digest(spider_files(spider) + mmlu_files(mmlu)))


def adapter_digest(adapter_dir: Path) -> str:
    return stable_hash(*(file_hash(p) for p in sorted(Path(adapter_dir).glob("adapter_*"))))


class Experiment:
    """Runs the plan for one config into one run directory."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.cache = StageCache(Path(cfg.output_dir).resolve() / ".cache")
        self.timings: list[dict[str, Any]] = []
        self.diverged: list[str] = []  # variants whose training diverged (not evaluated)

    # ----------------------------------------------------------------- plan
    def run(self) -> Path:
        from tradeoff_ray.data.mmlu import load_mmlu, select_mmlu, write_manifest
        from tradeoff_ray.data.spider import load_spider, missing_databases
        from tradeoff_ray.infer.tasks import select_dev
        from tradeoff_ray.models import resolve_model

        cfg = self.cfg
        n_variants = 0 if cfg.tune.enabled else len(cfg.training.variants)
        timer = StepTimer(total=2 + 2 * n_variants + (1 if cfg.tune.enabled else 0) + 1)
        self.timer = timer

        _log(f"run dir {self.run_dir}")
        spider = load_spider(cfg.data)
        mmlu = load_mmlu(cfg.data)
        dev = select_dev(cfg, spider)  # the same selection evaluation makes
        mmlu_questions = select_mmlu(cfg.data, mmlu)
        manifests = self.run_dir / "manifests"
        write_json(manifests / "spider_dev.json", {
            "source": spider.source, "is_demo": spider.is_demo, "n_total": len(dev),
            "missing_dbs": missing_databases(spider, "dev", examples=dev),
            "example_ids": [e.example_id for e in dev]})
        write_manifest(manifests / "mmlu_subset.json", mmlu_questions)
        data_key = data_cache_key(cfg, spider, mmlu, dev, mmlu_questions)
        model = resolve_model(cfg.model)
        self.model_key = model.key
        self.data_key = data_key
        self.spider, self.mmlu = spider, mmlu

        self._eval_stage(GOLD, adapter=None, tasks=("sql",))
        self._eval_stage(BASELINE, adapter=None)
        if cfg.tune.enabled:
            self._tune_stage()
        for variant in ([] if cfg.tune.enabled else cfg.training.variants):
            result = self._train_stage(variant)
            if result.get("status") == DIVERGED:
                self._skip_diverged(variant, result)
                continue
            adapter = Path(result["adapter_path"])
            self._eval_stage(variant.name, adapter=adapter)
            if cfg.eval.evaluate_checkpoints:
                final = (result.get("checkpoints") or [{}])[-1].get("step")
                for step, ckpt in sorted(self._checkpoints(variant.name).items()):
                    if step != final:  # the final checkpoint is the variant's adapter, scored above
                        self._eval_stage(checkpoint_label(variant.name, step), adapter=ckpt, count=False)
        timer.begin("analysis and report")
        from tradeoff_ray.report.build import build_report

        md, html = build_report(self.run_dir)
        timer.end(0, True)
        _log(f"report: {md}\n                 {html}")
        return self.run_dir

    # --------------------------------------------------------------- stages
    def _record(self, stage: Stage, label: str, marker: dict[str, Any], cached: bool) -> None:
        entry = {"stage": stage.kind, "label": label, "key": stage.key, "cached": cached,
                 "wall_s": marker.get("wall_s"), "finished_at": marker.get("finished_at")}
        write_json(self.run_dir / "stages" / f"{stage.slug}.json", entry)
        note = "cached, 0s now" if cached else f"{_fmt_s(marker.get('wall_s') or 0)}"
        _log(f"    done: {stage.kind} ({note})")

    def _timed(self, title: str, stage: Stage, label: str, compute: Callable[[Path], dict | None],
               count: bool = True) -> tuple[Path, dict[str, Any]]:
        if count:
            self.timer.begin(title)
        else:
            _log(f"      {title}")
        entry, marker, cached = self.cache.run(stage, compute)
        self._record(stage, label, marker, cached)
        if count:
            self.timer.end(marker.get("wall_s") or 0, cached)
        return entry, marker

    def _eval_stage(self, label: str, *, adapter: Path | None, tasks: tuple[str, ...] = ("sql", "mmlu"),
                    count: bool = True) -> None:
        from tradeoff_ray.infer.pipeline import evaluate

        weights = "gold" if label == GOLD else (adapter_digest(adapter) if adapter else "base")
        settings = eval_settings(self.cfg)
        if label == GOLD:  # the gold check does not depend on the model or the generation settings
            settings = {k: settings["eval"][k] for k in ("sql_timeout_s", "max_rows", "keep_distinct")}
        key = stable_hash(self.data_key, self.model_key if label != GOLD else "", weights, settings, tasks)
        stage = Stage(f"eval-{label}", key)

        def compute(entry: Path) -> dict[str, Any]:
            summary = evaluate(self.cfg, label=label, out_dir=entry, adapter_dir=adapter, spider=self.spider,
                               mmlu=self.mmlu, tasks=tasks)
            return {"summary": summary}

        entry, _ = self._timed(f"evaluate {label}", stage, label, compute, count=count)
        link_tree(entry / "evals" / label, self.run_dir / "evals" / label)

    def _train_stage(self, variant: LoraVariant) -> dict[str, Any]:
        from tradeoff_ray.train.ray_train import train_variant

        train_settings = {k: v for k, v in self.cfg.training.model_dump(mode="json").items() if k != "variants"}
        key = stable_hash(self.data_key, self.model_key, variant.model_dump(mode="json"),
                          self.cfg.prompt.model_dump(mode="json"),
                          {k: train_settings[k] for k in ("num_workers",)})
        stage = Stage(f"train-{variant.name}", key)

        def compute(entry: Path) -> dict[str, Any]:
            return {"result": train_variant(self.cfg, variant, run_dir=entry, spider=self.spider)}

        entry, marker = self._timed(f"train {variant.name}", stage, variant.name, compute)
        link_tree(entry / "train" / variant.name, self.run_dir / "train" / variant.name)
        result = dict(marker["result"])
        diverged = result.get("status") == DIVERGED
        result["adapter_path"] = None if diverged else str(self.run_dir / "train" / variant.name / "adapter")
        return result

    def _skip_diverged(self, variant: LoraVariant, result: dict[str, Any]) -> None:
        """A diverged variant is not evaluated; say so every time (a cached divergence is reported again)."""
        divergence = Divergence.from_dict(result["divergence"])
        if divergence.checkpoint:  # the copy in this run dir, not the stage cache's
            divergence.checkpoint = str(self.run_dir / "train" / variant.name / "checkpoints"
                                        / Path(divergence.checkpoint).name)
        self.diverged.append(variant.name)
        _log(f"ERROR: {divergence.message(variant.model_dump())}")
        self.timer.begin(f"evaluate {variant.name}: skipped, its training diverged")
        self.timer.end(0, True)

    def _checkpoints(self, variant: str) -> dict[int, Path]:
        root = self.run_dir / "train" / variant / "checkpoints"
        found = {}
        for d in root.glob("step-*"):
            if (d / "adapter_config.json").exists():
                found[int(d.name.split("-", 1)[1])] = d
        return found

    def _tune_stage(self) -> None:
        from tradeoff_ray.train.tune import run_tune

        key = stable_hash(self.data_key, self.model_key, self.cfg.tune.model_dump(mode="json"),
                          eval_settings(self.cfg))
        stage = Stage("tune", key)
        entry, _ = self._timed("tune (Ray Tune sweep)", stage, "tune",
                               lambda e: {"trials": str(run_tune(self.cfg, run_dir=e))})
        link_tree(entry / "tune", self.run_dir / "tune")


def load_summary(run_dir: Path, label: str) -> dict[str, Any]:
    """Per-example SQL records of a label (for callers that want raw rows)."""
    return {"sql": list(read_jsonl(Path(run_dir) / "evals" / label / "sql.jsonl"))}
