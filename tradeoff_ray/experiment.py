"""The whole experiment as one plan of cached stages: the body of `tradeoff-ray run`.

    data manifests → gold check → baseline eval → train each variant (or a Tune sweep)
    → eval each variant (and its checkpoints) → analysis → report

A variant whose training diverged (NaN/inf loss or gradient norm, `train/health.py`) is not evaluated;
the report lists it as diverged and the other variants go on. Its train stage is cached like any other
(the same settings diverge the same way), and every rerun reports the divergence again.

Each stage's key hashes exactly the inputs that change its outputs (model weights, adapter
weights, the settings of its config section, the data manifests and the contents of every data
file), so a rerun, a resumed run, or a new run that changes only one variant recomputes only what
changed (see `stage_cache.py`).

Stage keys hash the trained weights in this run dir (on the driver); evaluation is handed their URI in
the run's storage (`adapter_uri` in the train result, uploaded when `ray.storage_path` is set), which
each engine actor fetches on its own node (`infer.adapters.node_model`).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from tradeoff_ray.config import SQL_SCORING_FIELDS, ExperimentConfig, LoraVariant, result_settings
from tradeoff_ray.progress import RunEstimate, StageWork, StepTimer, fmt_s
from tradeoff_ray.progress import log as _log
from tradeoff_ray.records import BASELINE, GOLD, TUNED, checkpoint_label, write_json
from tradeoff_ray.stage_cache import Stage, StageCache, file_hash, files_digest, link_tree, stable_hash
from tradeoff_ray.train.health import DIVERGED, Divergence
from tradeoff_ray.train.ray_train import weights_dirname

def eval_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The parts of the config that determine evaluation outputs (RUNTIME_ONLY fields left out)."""
    return {"eval": result_settings(cfg.eval.model_dump(mode="json"), "eval"),
            "prompt": result_settings(cfg.prompt.model_dump(mode="json"), "prompt")}


def data_cache_key(cfg: ExperimentConfig, data: dict[str, Any], items: dict[str, list]) -> str:
    """Cache key of the data evaluation reads: each task's source and chosen items, the data settings,
    and the contents of every file they came from (an in-place edit of dev.json, a database or a CSV
    changes it)."""
    from tradeoff_ray.tasks.base import item_id

    return stable_hash(sorted((name, data[name].source, [item_id(x) for x in items[name]]) for name in items),
                       result_settings(cfg.data.model_dump(mode="json"), "data"),
                       files_digest(sorted({p for name in items for p in data[name].files})))


# Data settings that choose evaluation items only: training never reads them.
_EVAL_DATA_FIELDS = {"dev_limit", "mmlu_dir", "mmlu_split", "mmlu_per_category", "gsm8k_dir", "gsm8k_limit"}


def train_data_key(cfg: ExperimentConfig, spider: Any) -> str:
    """Cache key of what training reads: Spider's train files and databases and the data settings that pick
    training and validation examples (not which dev or MMLU questions are scored)."""
    from tradeoff_ray.data.spider import spider_files

    settings = {k: v for k, v in result_settings(cfg.data.model_dump(mode="json"), "data").items()
                if k not in _EVAL_DATA_FIELDS}
    return stable_hash(spider.source, settings, files_digest(spider_files(spider)))


def weights_files(weights_dir: Path) -> list[Path]:
    """The files that identify trained weights: a peft adapter's, or a full model's config and safetensors."""
    d = Path(weights_dir)
    found = sorted(d.glob("adapter_*"))
    return found or ([d / "config.json", *sorted(d.glob("*.safetensors"))] if (d / "config.json").is_file() else [])


def adapter_digest(adapter_dir: Path) -> str:
    return stable_hash(*(file_hash(p) for p in weights_files(adapter_dir)))


class Experiment:
    """Runs the plan for one config into one run directory."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.cache = StageCache(Path(cfg.output_dir).resolve() / ".cache")
        self.timings: list[dict[str, Any]] = []
        self.diverged: list[str] = []  # variants whose training diverged (not evaluated)
        self.refs: dict[str, str] = {}  # run-dir weights folder -> the storage ref evaluation fetches it from

    # ----------------------------------------------------------------- plan
    def prepare(self, *, data: dict[str, Any] | None = None) -> RunEstimate:
        """Load the data (unless the caller already did), write the manifests and plan the stages (no Ray
        needed); returns the run's estimate."""
        from tradeoff_ray.infer.pipeline import load_data
        from tradeoff_ray.models import resolve_model
        from tradeoff_ray.tasks import configured_tasks, get_task

        cfg = self.cfg
        self.started = time.time()
        self.tasks = configured_tasks(cfg)
        needed = list(self.tasks)
        if cfg.training.variants or cfg.tune.enabled:
            needed += [get_task("spider")] if "spider" not in [t.name for t in needed] else []
        self.data = load_data(cfg, needed, data)
        self.items = {t.name: t.select(cfg, self.data[t.name]) for t in self.tasks}  # what evaluation selects
        for task in self.tasks:
            write_json(self.run_dir / "manifests" / f"{task.name}.json",
                       task.manifest(cfg, self.data[task.name], self.items[task.name]))
        self.data_key = data_cache_key(cfg, self.data, self.items)
        self.model_key = resolve_model(cfg.model).key
        self.spider = self.data["spider"].data if "spider" in self.data else None
        speed, basis = self._machine_speed()
        self.estimate = RunEstimate(self._plan(), speed=speed, basis=basis)
        return self.estimate

    def _eval_counts(self, *, gold: bool = False) -> dict[str, float]:
        """Work counts of one evaluation: generation rows, their token budgets, log-likelihood rows."""
        from tradeoff_ray.infer.pipeline import has_gold
        from tradeoff_ray.tasks import GENERATE

        counts = {"generate": 0.0, "budget_tokens": 0.0, "choice": 0.0}
        for task in self.tasks:
            if gold and not has_gold(task):
                continue
            rows, _ = task.rows(self.cfg, self.data[task.name], self.items[task.name], None)
            for r in rows:
                if r["kind"] == GENERATE:
                    counts["generate"] += 1
                    counts["budget_tokens"] += r["max_new_tokens"]
                else:
                    counts["choice"] += 1
        return {"generate": counts["generate"]} if gold else counts

    def _plan(self) -> list[StageWork]:
        """The counted stages with their work counts, and which of them the cache already holds."""
        cfg = self.cfg
        evals = self._eval_counts()
        one_engine = self.one_engine()
        baseline = StageWork("eval", f"evaluate {BASELINE}", evals, self._cached(self._eval_key(BASELINE, None)))
        plan = [StageWork("gold", f"evaluate {GOLD}", self._eval_counts(gold=True),
                          self._cached(self._eval_key(GOLD, None)))] + ([] if one_engine else [baseline])
        if cfg.tune.enabled:
            plan.append(StageWork("tune", "tune (Ray Tune sweep)"))
            plan.append(StageWork("eval", f"evaluate {TUNED} (the chosen trial, on the test sets)", evals))
        variants = [] if cfg.tune.enabled else cfg.training.variants
        n_train = 0 if not variants else (len(self.spider.train) if cfg.data.train_limit is None
                                          else min(cfg.data.train_limit, len(self.spider.train)))
        n_val = cfg.data.validation_limit or round(n_train * cfg.data.validation_fraction)
        evaluation: list[StageWork] = []  # after each training, or (one engine) after all of them
        for variant in variants:
            train_stage = self._train_stage_id(variant)
            steps = variant.max_steps or 0
            if not steps:
                from tradeoff_ray.train.loop import steps_for

                steps = steps_for(variant, train_examples=n_train, num_workers=cfg.training.num_workers)
            per_step = variant.per_device_batch_size * variant.gradient_accumulation_steps
            validations = 1 + math.ceil(steps / (variant.eval_steps or variant.save_steps or steps))
            trained = self._cached(train_stage)
            plan.append(StageWork("train", f"train {variant.name}",
                                  {"examples": steps * per_step, "validation": n_val * validations}, trained))
            adapter = self.cache.path(train_stage) / "train" / variant.name / weights_dirname(variant)
            (evaluation if one_engine else plan).append(StageWork(
                "eval", f"evaluate {variant.name}", evals,
                trained and self._cached(self._eval_key(variant.name, adapter))))
        plan += ([baseline] if one_engine else []) + evaluation
        plan.append(StageWork("report", "analysis and report", {}))
        return plan

    def _cached(self, stage: Stage) -> bool:
        return self.cache.done(stage) is not None

    def _machine_speed(self) -> tuple[float | None, str]:
        """(this machine's seconds per second of the priors' machine, where that figure comes from): from
        earlier runs here, else a calibration; None on a GPU or a Ray cluster, where the CPU priors say nothing."""
        import os

        from tradeoff_ray.progress import calibrate_speed, history_speed, load_history

        if self.cfg.ray.address or os.environ.get("RAY_ADDRESS"):
            return None, "a Ray cluster"
        import torch

        if torch.cuda.is_available():
            return None, "a GPU"
        measured = history_speed(load_history(self._history_path()))
        if measured is not None:
            return measured, "stage times of earlier runs on this machine"
        return calibrate_speed(), "a quick CPU calibration"

    def _history_path(self) -> Path:
        return self.cache.root / "stage_seconds.json"

    # ----------------------------------------------------------------- plan
    def run(self) -> Path:
        """Run every stage (cached ones are reused) and build the report; returns the run directory."""
        cfg = self.cfg
        if not hasattr(self, "estimate"):
            self.prepare()
        timer = StepTimer(self.estimate, started=self.started)
        self.timer = timer
        _log(f"run dir {self.run_dir}")

        one_engine = self.one_engine()
        self._eval_stage(GOLD, adapter=None)
        if not one_engine:
            self._eval_stage(BASELINE, adapter=None)
        if cfg.tune.enabled:
            self._tune_stage()
        variants = [] if cfg.tune.enabled else cfg.training.variants
        trained = {}
        for variant in variants:
            trained[variant.name] = self._train_stage(variant)
            if not one_engine:
                self._evaluate_variant(variant, trained[variant.name])
        if one_engine:  # every model label on one engine per GPU: trained first, evaluated together
            group = EvalGroup(self, {BASELINE: None, **{label: a for v in variants
                                                        for label, a in self._labels_of(v, trained[v.name]).items()}})
            self._eval_stage(BASELINE, adapter=None, group=group)
            for variant in variants:
                self._evaluate_variant(variant, trained[variant.name], group=group)
        timer.begin("analysis and report")
        from tradeoff_ray.report.build import build_report

        started = time.perf_counter()
        md, html = build_report(self.run_dir)
        timer.end(time.perf_counter() - started, False)
        self.estimate.save(self._history_path())
        _log(f"report: {md}\n                 {html}")
        return self.run_dir

    def one_engine(self) -> bool:
        """Whether every model label is evaluated together on one engine per GPU (vLLM multi-LoRA): then all
        variants train first, and the baseline, the adapters and their checkpoints share one engine start."""
        from tradeoff_ray.infer.plan import serves_shared

        return not self.cfg.tune.enabled and self.cfg.eval.adapters != "merged" and serves_shared(self.cfg)

    def _labels_of(self, variant: LoraVariant, result: dict[str, Any]) -> dict[str, Path]:
        """The labels a trained variant is evaluated under: its final weights, and (eval.evaluate_checkpoints)
        each earlier checkpoint; none for a diverged variant."""
        if result.get("status") == DIVERGED:
            return {}
        labels = {variant.name: Path(result["adapter_path"])}
        if self.cfg.eval.evaluate_checkpoints:
            final = (result.get("checkpoints") or [{}])[-1].get("step")
            for step, ckpt in sorted(self._checkpoints(variant.name).items()):
                if step != final:  # the final checkpoint is the variant's adapter
                    labels[checkpoint_label(variant.name, step)] = ckpt
        return labels

    def _evaluate_variant(self, variant: LoraVariant, result: dict[str, Any], group: "EvalGroup | None" = None) -> None:
        if result.get("status") == DIVERGED:
            self._skip_diverged(variant, result)
            return
        for i, (label, adapter) in enumerate(self._labels_of(variant, result).items()):
            self._eval_stage(label, adapter=adapter, count=i == 0, group=group)

    # --------------------------------------------------------------- stages
    def _record(self, stage: Stage, label: str, marker: dict[str, Any], cached: bool) -> None:
        entry = {"stage": stage.kind, "label": label, "key": stage.key, "cached": cached,
                 "wall_s": marker.get("wall_s"), "finished_at": marker.get("finished_at")}
        write_json(self.run_dir / "stages" / f"{stage.slug}.json", entry)
        note = "cached, 0s now" if cached else f"{fmt_s(marker.get('wall_s') or 0)}"
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

    def _eval_stage(self, label: str, *, adapter: Path | None, count: bool = True,
                    group: "EvalGroup | None" = None) -> None:
        from tradeoff_ray.infer.pipeline import evaluate

        stage = self._eval_key(label, adapter)

        def compute(entry: Path) -> dict[str, Any]:
            if group is not None:
                return group.result(label, entry)
            summary = evaluate(self.cfg, label=label, out_dir=entry, adapter_dir=self.ref(adapter), data=self.data,
                               tasks=self.tasks, items=self.items)
            return {"summary": summary}

        entry, _ = self._timed(f"evaluate {label}", stage, label, compute, count=count)
        link_tree(entry / "evals" / label, self.run_dir / "evals" / label)

    def ref(self, adapter: Path | None) -> str | Path | None:
        """Where evaluation fetches the weights of `adapter` (a folder of this run dir) from."""
        return None if adapter is None else self.refs.get(str(adapter), adapter)

    def _eval_key(self, label: str, adapter: Path | None) -> Stage:
        """The eval stage of `label`: its key hashes the data, model, adapter weights, eval settings and tasks."""
        from tradeoff_ray.infer.pipeline import has_gold

        tasks = [t.name for t in self.tasks if label != GOLD or has_gold(t)]
        if label == GOLD:
            weights = "gold"
        elif adapter is None:
            weights = "base"
        elif not weights_files(adapter):
            weights = "missing"  # not trained yet: a key no finished stage has
        else:
            weights = adapter_digest(adapter)
        settings = eval_settings(self.cfg)
        if label == GOLD:  # the gold check does not depend on the model or the generation settings
            settings = {k: settings["eval"][k] for k in SQL_SCORING_FIELDS}
        key = stable_hash(self.data_key, self.model_key if label != GOLD else "", weights, settings, tasks)
        return Stage(f"eval-{label}", key)

    def _train_stage_id(self, variant: LoraVariant) -> Stage:
        training = result_settings(self.cfg.training.model_dump(mode="json", exclude={"variants"}), "training")
        key = stable_hash(train_data_key(self.cfg, self.spider), self.model_key, variant.model_dump(mode="json"),
                          result_settings(self.cfg.prompt.model_dump(mode="json"), "prompt"), training)
        return Stage(f"train-{variant.name}", key)

    def _train_stage(self, variant: LoraVariant) -> dict[str, Any]:
        from tradeoff_ray.train.ray_train import train_variant

        stage = self._train_stage_id(variant)

        def compute(entry: Path) -> dict[str, Any]:
            return {"result": train_variant(self.cfg, variant, run_dir=entry, spider=self.spider)}

        entry, marker = self._timed(f"train {variant.name}", stage, variant.name, compute)
        link_tree(entry / "train" / variant.name, self.run_dir / "train" / variant.name)
        result = dict(marker["result"])
        diverged = result.get("status") == DIVERGED
        result["adapter_path"] = None if diverged else str(self.run_dir / "train" / variant.name
                                                            / weights_dirname(variant))
        if result.get("adapter_uri") and not diverged:
            self.refs[result["adapter_path"]] = result["adapter_uri"]
        for ckpt in result.get("checkpoints") or []:
            if ckpt.get("uri"):
                self.refs[str(self.run_dir / "train" / variant.name / "checkpoints" / f"step-{ckpt['step']}")] = \
                    ckpt["uri"]
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
            if weights_files(d):
                found[int(d.name.split("-", 1)[1])] = d
        return found

    def _tune_stage(self) -> None:
        from tradeoff_ray.sweep import run_tune

        tune = result_settings(self.cfg.tune.model_dump(mode="json"), "tune")
        key = stable_hash(self.data_key, self.model_key, tune, eval_settings(self.cfg))
        stage = Stage("tune", key)
        entry, _ = self._timed("tune (Ray Tune sweep)", stage, "tune",
                               lambda e: {"trials": str(run_tune(self.cfg, run_dir=e))})
        link_tree(entry / "tune", self.run_dir / "tune")
        self._evaluate_chosen(entry / "tune")

    def _evaluate_chosen(self, tune_dir: Path) -> None:
        """The test sets, scored once: for the trial chosen on the validation sets (label `tuned`), so the report's
        numbers for the sweep come from sets no choice was made on."""
        from tradeoff_ray.sweep import read_chosen

        chosen = read_chosen(tune_dir)
        if chosen is None:
            self.timer.begin(f"evaluate {TUNED}: skipped, no trial of the sweep completed with validation scores")
            self.timer.end(0, True)
            return
        _log(f"chosen trial {chosen['trial_id']} (on validation): evaluated on the test sets as '{TUNED}'")
        self._eval_stage(TUNED, adapter=Path(chosen["adapter_dir"]))


class EvalGroup:
    """The labels of a run evaluated together on one engine per GPU (`infer.shared.evaluate_labels`).

    Each label keeps its own cached eval stage: the first stage that is not cached evaluates every label
    whose stage is not cached, in one call (its wall time is the group's), and each stage then takes its
    label's files from the group's output."""

    def __init__(self, experiment: Experiment, labels: dict[str, Path | None]):
        self.experiment = experiment
        self.pending = {label: adapter for label, adapter in labels.items()
                        if not experiment._cached(experiment._eval_key(label, adapter))}
        self.out = experiment.cache.root / f"eval-group-{stable_hash(sorted(self.pending), time.time())}"
        self.summaries: dict[str, dict[str, Any]] | None = None

    def result(self, label: str, entry: Path) -> dict[str, Any]:
        import shutil

        from tradeoff_ray.infer.shared import evaluate_labels

        exp = self.experiment
        if self.summaries is None:
            _log(f"      one engine per GPU for {len(self.pending)} label(s): {', '.join(self.pending)}")
            self.summaries = evaluate_labels(exp.cfg, labels={lb: exp.ref(a) for lb, a in self.pending.items()},
                                             out_dir=self.out, data=exp.data, tasks=exp.tasks, items=exp.items)
        shutil.copytree(self.out / "evals" / label, entry / "evals" / label, dirs_exist_ok=True)
        if all((exp.cache.path(exp._eval_key(lb, a)) / "evals" / lb).exists() for lb, a in self.pending.items()):
            shutil.rmtree(self.out, ignore_errors=True)
        return {"summary": self.summaries[label], "shared_with": list(self.pending)}
