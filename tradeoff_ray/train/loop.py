"""The training run on one worker: TRL `SFTTrainer` + peft LoRA (QLoRA on CUDA), reporting to Ray Train.

`train_loop_per_worker` is what `ray.train.torch.TorchTrainer` runs on every worker; the builders
above it (`load_model`, `lora_config`, `sft_config`, `build_trainer`) are plain functions that unit
tests and `benchmarks/train_throughput.py` call without Ray.

- Loss on the completion only: TRL tokenizes the conversational prompt (chat template,
  add_generation_prompt=True) and prompt+completion; prompt tokens get label -100. The chat
  template closes the assistant turn with its end-of-turn token (SmolLM2: <|im_end|>), which is the
  tokenizer's EOS, so EOS is trained exactly once and TRL adds none (it only appends EOS to
  non-conversational text).
- Every `save_steps` the HF checkpoint (peft adapter + optimizer/scheduler/RNG state) goes to Ray
  through `RayTrainReportCallback` with the logged metrics (train loss, eval loss). A restarted run
  (worker failure with `max_failures`, or the same RunConfig name/storage path after a kill)
  gets it back from `ray.train.get_checkpoint()` and HF resumes: weights, optimizer, data order and
  RNG, so the end result equals an uninterrupted run's.
- QLoRA (`quantization: nf4`): 4-bit NF4 base with double quantization and bf16 compute, placed on
  this worker's GPU, prepared with peft's `prepare_model_for_kbit_training`, gradient
  checkpointing with use_reentrant=False (reentrant checkpointing breaks DDP with frozen weights).
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tradeoff_ray.config import LoraVariant, ModelConfig, TrainingConfig
from tradeoff_ray.models import resolve_dtype
from tradeoff_ray.train.health import check_log, divergence_watch_class, fmt_value

JOB_KEY = "job"  # the one key of TorchTrainer's train_loop_config (a dict by Ray's API): the WorkerJob


@dataclass(frozen=True)
class WorkerJob:
    """What every Ray Train worker of one variant trains: the config objects themselves (Ray pickles them), the
    resolved model, the step budget and the tokenized records."""

    model_path: str  # the resolved local directory or hub id (models.resolve_model)
    revision: str | None
    model: ModelConfig  # dtype
    training: TrainingConfig  # torch_threads, cpus_per_worker
    variant: LoraVariant
    max_steps: int
    train_records: list[dict]
    validation_records: list[dict]
    fail_at_step: int | None = None  # fault injection for the resume tests; never set by configs
    placement_group_file: str | None = None  # Tune trials: where rank 0 writes its worker group's PG id

    def torch_threads(self) -> int:
        """torch intra-op threads on a CPU worker: training.torch_threads, else the CPUs Ray reserved for it."""
        return self.training.torch_threads or max(1, int(self.training.cpus_per_worker))


# ---------------------------------------------------------------- builders (no Ray)


def weights_dtype(variant: LoraVariant, dtype: str, *, on_gpu: bool):
    """The dtype the trained weights are held in. LoRA: the frozen base in the compute dtype. Full fine-tuning
    with `dtype: auto`: fp32 master weights (bf16 autocast on GPU), since an update of ~1e-5 of a weight is
    below bf16's resolution and would be rounded away."""
    import torch

    if variant.method == "full" and dtype == "auto":
        return torch.float32
    return resolve_dtype(dtype, on_gpu=on_gpu)


def load_model(model_path: str, variant: LoraVariant, *, device: Any, dtype: str = "auto", revision: str | None = None):
    """The base model for `variant`: 4-bit NF4 for QLoRA, else plain weights (see `weights_dtype`)."""
    import torch
    from transformers import AutoModelForCausalLM

    on_gpu = getattr(device, "type", str(device)) == "cuda"
    if variant.quantization == "nf4":
        if not on_gpu:
            from tradeoff_ray.train.checks import QuantizationUnavailable

            raise QuantizationUnavailable(
                f"variant {variant.name!r} asks for quantization: nf4 but this worker has no GPU ({device}); "
                "set training.use_gpu: true on a CUDA machine, or quantization: none"
            )
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(model_path, revision=revision, quantization_config=bnb,
                                                     dtype=torch.bfloat16, device_map={"": device})
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                               gradient_checkpointing_kwargs={"use_reentrant": False})
    model = AutoModelForCausalLM.from_pretrained(model_path, revision=revision,
                                                 dtype=weights_dtype(variant, dtype, on_gpu=on_gpu))
    return model.to(device)


def lora_config(variant: LoraVariant):
    """peft LoRA settings of `variant` (a causal LM; adapters on `target_modules`)."""
    from peft import LoraConfig

    targets: Any = variant.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(r=variant.r, lora_alpha=variant.alpha, lora_dropout=variant.dropout,
                      target_modules=targets, task_type="CAUSAL_LM", bias="none")


def uses_gradient_checkpointing(variant: LoraVariant) -> bool:
    """QLoRA and full fine-tuning always checkpoint activations (both are about fitting in memory)."""
    return variant.gradient_checkpointing or variant.quantization == "nf4" or variant.method == "full"


def precision_args(variant: LoraVariant, *, on_gpu: bool, dtype: str = "auto") -> dict[str, Any]:
    """Mixed precision, device and activation checkpointing arguments of the trainer (pure, testable on CPU)."""
    import torch

    weights = weights_dtype(variant, dtype, on_gpu=on_gpu)
    gc = uses_gradient_checkpointing(variant)
    master = variant.method == "full" and weights == torch.float32  # fp32 master weights, bf16 autocast on GPU
    return {
        # TRL defaults bf16=True and gradient_checkpointing=True; on CPU fp32 is ~4x faster than bf16.
        # QLoRA computes in bf16 (bnb_4bit_compute_dtype) whatever the weights dtype says.
        "bf16": on_gpu and (weights == torch.bfloat16 or variant.quantization == "nf4" or master),
        "fp16": on_gpu and weights == torch.float16 and variant.quantization == "none",
        "use_cpu": not on_gpu,
        # use_reentrant=False: reentrant checkpointing breaks DDP when most weights are frozen
        **checkpointing_args(gc),
    }


def checkpointing_args(enabled: bool) -> dict[str, Any]:
    """Activation checkpointing settings under the name this transformers knows.

    transformers renamed `gradient_checkpointing` to `activation_checkpointing` (5.2x; the old name then
    warns); the GPU image runs 5.17, which knows only the old name."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: enabled, f"{key}_kwargs": {"use_reentrant": False} if enabled else None}


def sft_config(
    variant: LoraVariant,
    *,
    output_dir: str,
    max_steps: int,
    on_gpu: bool,
    dtype: str = "auto",
    has_validation: bool = True,
    logging_steps: int | None = None,
    eval_on_start: bool = True,
):
    """TRL `SFTConfig` for `variant`; every TRL default that differs from what we want is set here.

    `eval_on_start`: validation loss of the untrained adapter first (the baseline the curve falls from);
    off when resuming, where it was measured by the first attempt."""
    from trl import SFTConfig

    save_steps = variant.save_steps or max_steps
    eval_steps = variant.eval_steps or save_steps
    return SFTConfig(
        output_dir=output_dir,
        seed=variant.seed,
        data_seed=variant.seed,
        max_steps=max_steps,  # fixed in the driver (also for num_epochs) so progress and ETA are exact
        per_device_train_batch_size=variant.per_device_batch_size,
        per_device_eval_batch_size=variant.per_device_batch_size,
        gradient_accumulation_steps=variant.gradient_accumulation_steps,
        learning_rate=variant.learning_rate,
        lr_scheduler_type=variant.lr_scheduler,
        warmup_steps=math.ceil(variant.warmup_ratio * max_steps),
        weight_decay=variant.weight_decay,
        max_grad_norm=variant.max_grad_norm,
        **precision_args(variant, on_gpu=on_gpu, dtype=dtype),
        ddp_find_unused_parameters=False,  # every trained weight (LoRA or full) gets a gradient
        # data: prompt/completion records; loss on the completion; drop, never truncate (done in the driver)
        max_length=variant.max_length,
        packing=False,
        completion_only_loss=True,
        assistant_only_loss=False,
        dataset_num_proc=None,
        # logging, evaluation, checkpoints: Ray gets a checkpoint + metrics at every save
        # every step's loss and grad norm: health.DivergenceWatch stops at the first non-finite one, before it
        # is saved; NaN/inf are logged as they are (the filter would log a NaN loss as 0.0 or an old average)
        logging_steps=logging_steps or 1,
        logging_first_step=True,
        logging_nan_inf_filter=False,
        eval_strategy="steps" if has_validation else "no",
        eval_on_start=has_validation and eval_on_start,
        eval_steps=eval_steps if has_validation else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,  # local scratch only; Ray keeps the reported checkpoints
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
        dataloader_num_workers=0,
    )


def build_trainer(
    *,
    model_path: str,
    variant: LoraVariant,
    train_records: list[dict],
    validation_records: list[dict],
    output_dir: str,
    max_steps: int,
    device: Any = "cpu",
    dtype: str = "auto",
    revision: str | None = None,
    callbacks: list | None = None,
    logging_steps: int | None = None,
    eval_on_start: bool = True,
):
    """An `SFTTrainer` with a fresh LoRA adapter on the base model (or, `method: full`, the model itself)."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    on_gpu = getattr(device, "type", str(device)) == "cuda"
    tokenizer = AutoTokenizer.from_pretrained(model_path, revision=revision)
    model = load_model(model_path, variant, device=device, dtype=dtype, revision=revision)
    args = sft_config(variant, output_dir=output_dir, max_steps=max_steps, on_gpu=on_gpu, dtype=dtype,
                      has_validation=bool(validation_records), logging_steps=logging_steps,
                      eval_on_start=eval_on_start)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_records),
        eval_dataset=Dataset.from_list(validation_records) if validation_records else None,
        processing_class=tokenizer,
        peft_config=lora_config(variant) if variant.method == "lora" else None,
        callbacks=callbacks,
    )
    check_not_truncated(trainer, variant.max_length)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts; ProgressPrinter prints one line per log
    return trainer


def check_not_truncated(trainer: Any, max_length: int) -> None:
    """The driver dropped over-length examples; if TRL still had to cut one, its length count differs from ours."""
    for name, ds in (("train", trainer.train_dataset), ("validation", trainer.eval_dataset)):
        if ds is None:
            continue
        longest = max((len(ids) for ids in ds["input_ids"]), default=0)
        if longest > max_length:  # pragma: no cover - would be a bug in record_lengths
            raise RuntimeError(f"{name} example of {longest} tokens reached TRL with max_length={max_length}")


def steps_for(variant: LoraVariant, *, train_examples: int, num_workers: int) -> int:
    """Optimizer steps of a run: `max_steps`, or `num_epochs` over the data split across workers."""
    if variant.max_steps is not None:
        return variant.max_steps
    per_worker = math.ceil(train_examples / num_workers)
    batches = math.ceil(per_worker / variant.per_device_batch_size)
    per_epoch = max(1, batches // variant.gradient_accumulation_steps)
    return max(1, math.ceil(per_epoch * float(variant.num_epochs)))


# ---------------------------------------------------------------- callbacks


def _say(line: str) -> None:
    """One progress line on stdout (not print: Ray Train V2 patches print to also log, doubling lines)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _progress_callback_class():
    from transformers import TrainerCallback

    class ProgressPrinter(TrainerCallback):
        """Prints `step k/N loss … grad_norm … eta …` on the first worker every `every` steps (and at any
        step with a non-finite value), and eval loss."""

        def __init__(self, label: str, every: int = 1):
            self.label = label
            self.every = max(1, every)
            self.t0 = time.perf_counter()
            self.start_step = 0
            self.start_tokens = 0
            self.tokens = 0
            self.seconds = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()
            self.start_step = state.global_step
            self.start_tokens = state.num_input_tokens_seen
            if state.global_step and state.is_world_process_zero:
                _say(f"[train {self.label}] resumed at step {state.global_step}/{state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            step, total = state.global_step, state.max_steps
            elapsed = time.perf_counter() - self.t0
            done = step - self.start_step
            if "loss" in logs and (step % self.every == 0 or step in (1, total) or check_log(logs)):
                eta = elapsed / done * (total - step) if done else float("nan")
                rate = f"{done / elapsed:.2f} steps/s" if elapsed > 0 and done else "-"
                eta_s = _duration(eta) if eta == eta else "-"
                _say(f"[train {self.label}] step {step}/{total} loss {fmt_value(logs['loss'])} "
                     f"grad_norm {fmt_value(logs.get('grad_norm'), 3)} "
                     f"lr {logs.get('learning_rate', 0):.2e} {rate} eta {eta_s}")
            if "eval_loss" in logs:
                _say(f"[train {self.label}] step {step}/{total} eval_loss {fmt_value(logs['eval_loss'])}")

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.t0
            self.tokens = state.num_input_tokens_seen - self.start_tokens

    return ProgressPrinter


def _fail_callback_class():
    from transformers import TrainerCallback

    class FailAtStep(TrainerCallback):
        """Raises at the end of step k in a run that did not resume (tests of resume-after-kill)."""

        def __init__(self, step: int):
            self.step = step

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == self.step:
                raise RuntimeError(f"injected failure at step {self.step} (fault-injection test)")

    return FailAtStep


# ---------------------------------------------------------------- the Ray Train worker


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Train one variant on this worker; rank 0 returns a summary (log history, tokens, timing).

    `config` (built by `ray_train.train_variant`) holds the `WorkerJob` under JOB_KEY.
    """
    import ray.train
    import ray.train.torch
    import torch
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    job: WorkerJob = config[JOB_KEY]
    ctx = ray.train.get_context()
    if job.placement_group_file and ctx.get_world_rank() == 0:
        _record_placement_group(job.placement_group_file)
    variant = job.variant
    device = ray.train.torch.get_device()
    if device.type == "cpu":
        # Default: as many threads as CPUs Ray reserved for this worker. More threads than free cores
        # (Ray's own processes, evaluation actors, other workers) make OpenMP barriers crawl: measured on
        # 2 busy cores, SmolLM2-135M steps took 26 s with 2 threads and 5.7 s with 1.
        torch.set_num_threads(job.torch_threads())
    checkpoint = ray.train.get_checkpoint()
    max_steps = job.max_steps
    progress = _progress_callback_class()(variant.name, every=max_steps // 50)
    watch = divergence_watch_class()(variant.name)
    # at a non-finite step the watch cancels that step's save: Ray is never handed a checkpoint of NaN weights
    callbacks = [watch, RayTrainReportCallback(), progress]
    if job.fail_at_step and checkpoint is None:
        callbacks.append(_fail_callback_class()(job.fail_at_step))
    with tempfile.TemporaryDirectory(prefix=f"hf-{variant.name}-") as scratch:
        trainer = build_trainer(
            model_path=job.model_path, revision=job.revision, dtype=job.model.dtype,
            variant=variant, train_records=job.train_records,
            validation_records=job.validation_records, output_dir=scratch,
            max_steps=max_steps, device=device, callbacks=callbacks,
            eval_on_start=checkpoint is None,
        )
        trainer = prepare_trainer(trainer)
        resumed_from = None
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt_dir:
                hf_dir = os.path.join(ckpt_dir, RayTrainReportCallback.CHECKPOINT_NAME)
                resumed_from = _step_of(hf_dir)
                trainer.train(resume_from_checkpoint=hf_dir)
        else:
            trainer.train()
        state = trainer.state
    return {
        "log_history": state.log_history,
        "global_step": state.global_step,
        "resumed_from_step": resumed_from,
        "session_tokens": progress.tokens,
        "session_seconds": progress.seconds,
        "tokens_seen": state.num_input_tokens_seen,
        "device": str(device),
        "world_size": ctx.get_world_size(),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "divergence": watch.divergence.to_dict() if watch.divergence else None,
    }


def _record_placement_group(path: str) -> None:
    """Write the id of the placement group this worker runs in, so a Tune driver can free it if the trial is
    stopped early (Train V2 frees it itself only through the State API, which a local Ray without the
    dashboard lacks: ray-project/ray#54305)."""
    from ray.util import get_current_placement_group

    pg = get_current_placement_group()
    if pg is not None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write(pg.id.hex() + "\n")


def _step_of(hf_checkpoint_dir: str) -> int | None:
    import json

    try:
        with open(os.path.join(hf_checkpoint_dir, "trainer_state.json")) as f:
            return int(json.load(f)["global_step"])
    except (OSError, KeyError, ValueError):
        return None
