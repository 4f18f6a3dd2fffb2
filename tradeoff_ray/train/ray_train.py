"""Fine-tune one LoRA variant with Ray Train and write its adapters and result.json into the run dir.

The driver side of training (the caller has started Ray): build the records once (`dataset.py`),
hand them to a `TorchTrainer` running `loop.train_loop_per_worker` on `training.num_workers`
workers, then export what Ray kept into the run-dir layout of `records.py`:

    train/<variant>/checkpoints/step-<N>/   adapter_model.safetensors + adapter_config.json (every save_steps)
    train/<variant>/adapter/                the final adapter (`method: full`: model/, a whole HF model directory)
    train/<variant>/train_split.json        example ids used, and those dropped as over-length
    train/<variant>/result.json             status, losses and grad norms, steps, over-length counts, tokens/s,
                                            wall time, paths

A variant whose loss or gradient norm became NaN/inf (`health.py`) stops at that step; its result.json
says `status: "diverged"` with the step, the last finite loss and checkpoint, and what to change, and it
gets no `adapter/`: nothing downstream can mistake it for a trained model.

Ray's own run lives at `<ray.storage_path or run_dir/ray>/<run dir name>-<variant>`. Train V2
restores a run from that name and storage path: calling `train_variant` again with the same run
dir after a crash or kill resumes from the newest checkpoint (`--resume` relies on this). Within one
call, a worker that dies is restarted `training.max_failures` times (auto: 2 on a cluster, 0 on one
machine), resuming from the newest checkpoint.

The run dir is on the driver's disk; evaluation may run on another node. With `ray.storage_path` set,
the final weights and each exported checkpoint are uploaded to
`<storage>/artifacts/<run dir name>/train/<variant>/{adapter|model, checkpoints/step-<N>}` and result.json
records those URIs (`adapter_uri`, `checkpoints[].uri`): what evaluation fetches on its own node.
Without it they are the run-dir paths (one machine).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from tradeoff_ray.config import ExperimentConfig, LoraVariant, TrainingConfig, cache_root
from tradeoff_ray.data.types import SpiderData
from tradeoff_ray.records import write_json
from tradeoff_ray.train.checks import check_can_train
from tradeoff_ray.train.dataset import SftData, build_sft_data, describe_drops, write_split_manifest
from tradeoff_ray.train.health import DIVERGED, TRAINED, Divergence, fmt_value
from tradeoff_ray.train.loop import JOB_KEY, WorkerJob, steps_for, train_loop_per_worker

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
# what an HF checkpoint holds besides the weights (optimizer, schedule, RNG): not copied into the run dir
TRAINER_STATE_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin")
HF_CHECKPOINT_NAME = "checkpoint"  # RayTrainReportCallback.CHECKPOINT_NAME (kept here to avoid importing Ray)
META_FILE = "tradeoff_ray.json"  # written next to every exported adapter: what made it


def weights_dirname(variant: LoraVariant) -> str:
    """`adapter` (a peft adapter) or `model` (a fully fine-tuned HF model directory)."""
    return "model" if variant.method == "full" else "adapter"


def variant_dir(run_dir: Path, variant: str) -> Path:
    return Path(run_dir) / "train" / variant


def step_dir(run_dir: Path, variant: str, step: int) -> Path:
    return variant_dir(run_dir, variant) / "checkpoints" / f"step-{step}"


def ray_run_name(run_dir: Path, variant: str) -> str:
    """Unique per run dir and variant: the key Ray Train restores a killed run by."""
    return f"{Path(run_dir).name}-{variant}"


def resolve_max_failures(cfg: TrainingConfig, *, cluster: bool) -> int:
    """`max_failures: auto` = 2 restarts on a cluster (nodes are preempted or lost), 0 on one machine."""
    if cfg.max_failures != "auto":
        return int(cfg.max_failures)
    return 2 if cluster else 0


def artifact_uri(storage_path: str, run_dir: Path, rel: str) -> str:
    """Where the run-dir folder `rel` (train/<variant>/adapter, ...) is handed off in the run's storage: the
    run dir's layout under `<storage>/artifacts/<run dir name>/`, so labels read from the path stay the same."""
    return "/".join([storage_path.rstrip("/"), "artifacts", Path(run_dir).name, rel])


def resolve_use_gpu(cfg: TrainingConfig) -> bool:
    """`use_gpu: auto` = train on GPUs when the Ray cluster has any."""
    if cfg.use_gpu != "auto":
        return bool(cfg.use_gpu)
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def train_variant(
    cfg: ExperimentConfig,
    variant: LoraVariant,
    *,
    run_dir: Path,
    spider: SpiderData | None = None,
    callbacks: Sequence[Any] = (),
    placement_group_file: Path | None = None,
    fail_at_step: int | None = None,
) -> dict[str, Any]:
    """Train `variant` through Ray Train and return the content of train/<variant>/result.json.

    `callbacks`: Ray Train `UserCallback`s (a Tune trial passes one that relays every report to it, `sweep.py`).
    `placement_group_file`: the first worker writes its placement group id there (`sweep.py` frees it when
    it stops a trial early).
    `fail_at_step`: raise inside the worker at that step of a fresh (not resumed) run — for tests.
    """
    wall0 = time.perf_counter()
    check_can_train(cfg, [variant])
    from transformers import AutoTokenizer

    from tradeoff_ray.models import resolve_model

    run_dir = Path(run_dir)
    model = resolve_model(cfg.model)
    if spider is None:
        from tradeoff_ray.data.spider import load_spider

        spider = load_spider(cfg.data, cache=cache_root(cfg.model))
    tokenizer = AutoTokenizer.from_pretrained(model.path, revision=model.revision)
    data = build_sft_data(spider, cfg, tokenizer=tokenizer, max_length=variant.max_length)
    out = variant_dir(run_dir, variant.name)
    write_split_manifest(out / "train_split.json", data, cfg, variant=variant.name)
    drops = describe_drops(data)
    if drops:
        print(f"[train {variant.name}] {drops}", flush=True)

    use_gpu = resolve_use_gpu(cfg.training)
    workers = cfg.training.num_workers
    max_steps = steps_for(variant, train_examples=len(data.train), num_workers=workers)
    print(f"[train {variant.name}] {len(data.train)} train / {len(data.validation)} validation examples "
          f"({len(data.validation_dbs)} held-out databases), {max_steps} steps on {workers} "
          f"{'GPU' if use_gpu else 'CPU'} worker(s), model {model.description or model.path}", flush=True)

    result = _fit(cfg, variant, run_dir=run_dir, data=data, model_path=model.path, revision=model.revision,
                  use_gpu=use_gpu, max_steps=max_steps, callbacks=callbacks, fail_at_step=fail_at_step,
                  placement_group_file=placement_group_file)
    checkpoints = export_checkpoints(result, run_dir=run_dir, variant=variant, model_key=model.key)
    for c in checkpoints:
        c["uri"] = hand_off(cfg, Path(c["path"]), run_dir=run_dir)
    worker = result.return_value or {}
    summary = summarize(worker, data=data, variant=variant, max_steps=max_steps)
    summary.update({
        "model": model.description or model.path, "model_key": model.key,
        "num_workers": workers, "use_gpu": use_gpu, "checkpoints": checkpoints, "ray_run_path": result.path,
    })
    if worker.get("divergence"):
        divergence = Divergence.from_dict(worker["divergence"])
        finite = [c for c in checkpoints if c["step"] < divergence.step]
        divergence.checkpoint = finite[-1]["path"] if finite else None
        shutil.rmtree(out / weights_dirname(variant), ignore_errors=True)  # nothing of it may look like a result
        summary.update({"status": DIVERGED, "adapter_dir": None, "divergence": divergence.to_dict(),
                        "message": divergence.message(variant.model_dump())})
        print(f"[train {variant.name}] ERROR: {summary['message']}", flush=True)
    else:
        if not checkpoints:
            raise RuntimeError(f"Ray Train finished variant {variant.name} without a checkpoint ({result.path})")
        final = checkpoints[-1]
        adapter = copy_weights(Path(final["path"]), out / weights_dirname(variant), variant=variant,
                               meta={**_meta(variant, model.key), "step": final["step"], "final": True})
        summary.update({"status": TRAINED, "adapter_dir": str(adapter),
                        "adapter_uri": hand_off(cfg, adapter, run_dir=run_dir)})
    summary["wall_time_s"] = round(time.perf_counter() - wall0, 2)
    write_json(out / "result.json", summary)
    return summary


def hand_off(cfg: ExperimentConfig, weights: Path, *, run_dir: Path) -> str:
    """The URI evaluation fetches `weights` (a folder under train/<variant>/) from: uploaded to the run's
    storage when `ray.storage_path` is set, else the folder itself (one machine)."""
    if cfg.ray.storage_path is None:
        return str(weights)
    from tradeoff_ray.storage import upload_dir

    rel = Path(weights).relative_to(run_dir).as_posix()
    return upload_dir(weights, artifact_uri(cfg.ray.storage_path, run_dir, rel))


def _fit(cfg: ExperimentConfig, variant: LoraVariant, *, run_dir: Path, data: SftData, model_path: str,
         revision: str | None, use_gpu: bool, max_steps: int, callbacks: Sequence[Any], fail_at_step: int | None,
         placement_group_file: Path | None):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    t = cfg.training
    from tradeoff_ray.ray_session import on_cluster

    resources = {**t.worker_resources, "CPU": t.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = t.gpus_per_worker
    job = WorkerJob(model_path=model_path, revision=revision, model=cfg.model, training=t, variant=variant,
                    max_steps=max_steps, train_records=data.train.records,
                    validation_records=data.validation.records, fail_at_step=fail_at_step or None,
                    placement_group_file=None if placement_group_file is None else str(placement_group_file))
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={JOB_KEY: job},
        scaling_config=ScalingConfig(num_workers=t.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(
            name=ray_run_name(run_dir, variant.name),
            storage_path=cfg.ray.storage_path or str(Path(run_dir).resolve() / "ray"),
            checkpoint_config=CheckpointConfig(num_to_keep=t.checkpoints_to_keep),
            failure_config=FailureConfig(max_failures=resolve_max_failures(t, cluster=on_cluster(cfg.ray))),
            callbacks=list(callbacks),
            # Train V2 re-routes print() into its logger, which also catches output that libraries capture
            # on purpose (dill disassembles functions into a captured stdout when `datasets` hashes them).
            worker_runtime_env={"env_vars": {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}},
        ),
    )
    return trainer.fit()


# ---------------------------------------------------------------- export and summary


def _meta(variant: LoraVariant, model_key: str) -> dict[str, Any]:
    return {"variant": variant.model_dump(mode="json"), "base_model_key": model_key}


def copy_weights(src: Path, dest: Path, *, variant: LoraVariant, meta: dict[str, Any] | None = None) -> Path:
    """The trained weights of an HF checkpoint dir at `dest`: the adapter files, or (full) the model directory."""
    if variant.method == "lora":
        return copy_adapter(src, dest, meta=meta)
    if not (src / "config.json").is_file() or not any(src.glob("*.safetensors")):
        raise RuntimeError(f"checkpoint {src} lacks config.json or *.safetensors; it is not a full model checkpoint")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=lambda _d, names: [n for n in names if n in TRAINER_STATE_FILES
                                                         or n.startswith("rng_state")])
    if meta is not None:
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=str) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def copy_adapter(src: Path, dest: Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Copy the peft adapter files of an HF checkpoint dir to `dest` (replaced atomically)."""
    missing = [f for f in ADAPTER_FILES if not (src / f).is_file()]
    if missing:
        raise RuntimeError(f"checkpoint {src} lacks {missing}; it is not a peft adapter checkpoint")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for f in ADAPTER_FILES:
        shutil.copy2(src / f, tmp / f)
    if meta is not None:
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=str) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def export_checkpoints(result: Any, *, run_dir: Path, variant: LoraVariant, model_key: str) -> list[dict[str, Any]]:
    """Copy every checkpoint Ray kept into train/<variant>/checkpoints/step-<N>/; sorted by step."""
    pairs = list(result.best_checkpoints or [])
    if not pairs and result.checkpoint is not None:
        pairs = [(result.checkpoint, result.metrics or {})]
    exported: dict[int, dict[str, Any]] = {}
    for checkpoint, metrics in pairs:
        with checkpoint.as_directory() as d:
            hf_dir = Path(d) / HF_CHECKPOINT_NAME
            step = _checkpoint_step(hf_dir, metrics)
            dest = copy_weights(hf_dir, step_dir(run_dir, variant.name, step), variant=variant,
                                meta={**_meta(variant, model_key), "step": step, "metrics": _plain(metrics)})
        exported[step] = {"step": step, "path": str(dest), "eval_loss": (metrics or {}).get("eval_loss"),
                          "loss": (metrics or {}).get("loss")}
    return [exported[s] for s in sorted(exported)]


def _checkpoint_step(hf_dir: Path, metrics: dict[str, Any] | None) -> int:
    state = hf_dir / "trainer_state.json"
    if state.is_file():
        return int(json.loads(state.read_text())["global_step"])
    return int((metrics or {})["step"])


def _plain(metrics: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float, str, bool)) or v is None}


def summarize(worker: dict[str, Any], *, data: SftData, variant: LoraVariant, max_steps: int) -> dict[str, Any]:
    """result.json fields from the rank-0 worker's return value and the data summary."""
    history = worker.get("log_history") or []
    train_loss = [{"step": h["step"], "loss": h["loss"], "grad_norm": h.get("grad_norm")}
                  for h in history if "loss" in h and "step" in h]
    eval_loss = [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in history if "eval_loss" in h]
    end = next((h for h in reversed(history) if "train_loss" in h), {})
    seconds = worker.get("session_seconds") or 0.0
    tokens = worker.get("session_tokens") or 0
    steps_done = (worker.get("global_step") or 0) - (worker.get("resumed_from_step") or 0)
    return {
        "variant": variant.name,
        "settings": variant.model_dump(mode="json"),
        "steps": worker.get("global_step"),
        "max_steps": max_steps,
        "data": data.summary(),
        "over_length_dropped": len(data.train.over_length_ids) + len(data.validation.over_length_ids),
        "train_loss": train_loss,
        "eval_loss": eval_loss,
        "first_train_loss": train_loss[0]["loss"] if train_loss else None,
        "last_train_loss": train_loss[-1]["loss"] if train_loss else None,
        "last_grad_norm": train_loss[-1]["grad_norm"] if train_loss else None,
        "mean_train_loss": end.get("train_loss"),
        "initial_eval_loss": eval_loss[0]["eval_loss"] if eval_loss and eval_loss[0]["step"] == 0 else None,
        "final_eval_loss": eval_loss[-1]["eval_loss"] if eval_loss else None,
        "tokens_seen": worker.get("tokens_seen"),
        # rates of this session's steps only (a resumed run counts the steps it ran itself)
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 and steps_done > 0 else None,
        "steps_per_s": round(steps_done / seconds, 4) if seconds > 0 and steps_done > 0 else None,
        "train_seconds": round(seconds, 2),
        "resumed_from_step": worker.get("resumed_from_step"),
        "trainable_params": worker.get("trainable_params"),
        "device": worker.get("device"),
        "world_size": worker.get("world_size"),
    }


def diverged(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results whose training stopped at a non-finite loss or gradient norm."""
    return [r for r in results if r.get("status") == DIVERGED]


def format_results(results: list[dict[str, Any]]) -> str:
    """The summary table `tradeoff-ray train` prints: one line per variant (NaN/inf printed as such)."""
    def outcome(r: dict[str, Any]) -> str:
        if r.get("status") == DIVERGED:
            return f"DIVERGED at step {r['divergence']['step']} (no adapter)"
        return str(r["adapter_dir"])

    head = ["variant", "steps", "first loss", "last loss", "last grad_norm", "eval loss (start -> end)", "dropped",
            "steps/s", "wall", "adapter"]
    body = [[r["variant"], f"{r['steps']}/{r['max_steps']}", fmt_value(r["first_train_loss"]),
             fmt_value(r["last_train_loss"]), fmt_value(r.get("last_grad_norm"), 3),
             f"{fmt_value(r.get('initial_eval_loss'))} -> {fmt_value(r['final_eval_loss'])}",
             str(r["over_length_dropped"]), fmt_value(r.get("steps_per_s"), 3), f"{r['wall_time_s']:.0f}s",
             outcome(r)] for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)) for line in [head, *body])
