"""Training throughput: bare TRL SFTTrainer vs the same trainer through Ray Train (1 worker), one run.

    python benchmarks/train_throughput.py --model bundled --steps 8 --batch 4 --seq-len 256          # CPU laptop
    python benchmarks/train_throughput.py --model random-llama-8b --steps 30 --batch 4 --seq-len 1024  # GPU, LoRA
    python benchmarks/train_throughput.py --model random-llama-8b --quantization nf4 --steps 30          # GPU, QLoRA

Both runs build the trainer with `tradeoff_ray.train.loop.build_trainer` (same model, LoRA settings,
optimizer, batch) on the same pre-tokenized data: `--batch` sequences of exactly `--seq-len` random
tokens per step, the second half of each labelled (the "completion"), so every step does the same work.
The Ray run adds what real training adds: `prepare_trainer`, `RayTrainReportCallback`, a TorchTrainer
worker and its process group. Timing: tokens/s over the steps after `--warmup` (first steps pay for
allocation and kernel selection), measured by a callback at step boundaries inside the training process;
wall time end to end (including model load and, for Ray, worker start) is reported separately.

Model FLOP utilization (GPU only) uses FLOPs per token = 4·N_frozen + 6·N_trainable + 12·L·s·d:
the frozen matmul weights (N_frozen, every Linear incl. lm_head, 4-bit weights counted at their logical
size) cost a forward (2N) and an activation-gradient backward (2N) but no weight gradient; the LoRA
weights (N_trainable) cost the full 6N; attention scores cost 12·L·s·d (L layers, s = seq len, d =
hidden size; causal masking not discounted, as in PaLM's MFU). Recomputation by gradient checkpointing
is not counted (that would be hardware FLOP utilization). Peak: dense bf16 tensor-core FLOP/s of the GPU
(H100/H200 SXM 989 TFLOP/s; A100 312) or --peak-tflops.

`--model random-llama-8b` saves a randomly initialised Llama-3-8B-shaped model (hidden 4096, 32 layers,
32 heads / 8 KV heads, MLP 14336, vocab 128256) once under --cache and loads it like any model dir.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "GH200": 989.0, "A100": 312.0, "L40S": 362.0}
LLAMA3_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
                 tie_word_embeddings=False)


# ---------------------------------------------------------------- model and data


def resolve_model_dir(name: str, cache: Path) -> str:
    """'bundled' -> the cached SmolLM2-135M-Instruct dir; 'random-llama-8b' -> a random 8B dir; else a path."""
    if name == "bundled":
        from tradeoff_ray.config import ModelConfig
        from tradeoff_ray.models import resolve_model

        return resolve_model(ModelConfig()).path
    if name == "random-llama-8b":
        return str(make_random_llama(cache / "random-llama-8b"))
    return name


def make_random_llama(dest: Path) -> Path:
    """Random-weight Llama-3-8B shape in bf16 with the bundled tokenizer (used for padding only)."""
    if (dest / "config.json").exists():
        return dest
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tradeoff_ray.config import ModelConfig
    from tradeoff_ray.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(ModelConfig()).path)
    config = LlamaConfig(**LLAMA3_8B, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id)
    print(f"[bench] initialising a random 8B Llama into {dest} (once)", flush=True)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    tmp = Path(tempfile.mkdtemp(prefix="random-llama-", dir=dest.parent if dest.parent.exists() else None))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    del model
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)
    return dest


def synthetic_records(*, n: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Pre-tokenized sequences of exactly `seq_len` tokens; loss on the second half (like a completion)."""
    import random

    rng = random.Random(seed)
    half = seq_len // 2
    out = []
    for _ in range(n):
        ids = [rng.randrange(100, vocab) for _ in range(seq_len)]
        out.append({"input_ids": ids, "labels": [-100] * half + ids[half:]})
    return out


# ---------------------------------------------------------------- measurement


def _timer_class():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time of each optimizer step, taken at step boundaries (CUDA synchronized)."""

        def __init__(self):
            self.ends: list[float] = []
            self.start = 0.0

        def _now(self) -> float:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = self._now()

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(self._now())

    return StepTimer


def flops_per_token(model: Any, *, seq_len: int) -> dict[str, float]:
    """4·N_frozen + 6·N_trainable + 12·L·s·d (see the module docstring)."""
    import torch

    frozen = trainable = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            n = module.in_features * module.out_features
            if module.weight.requires_grad:
                trainable += n
            else:
                frozen += n
    cfg = model.config
    layers, hidden = cfg.num_hidden_layers, cfg.hidden_size
    total = 4 * frozen + 6 * trainable + 12 * layers * seq_len * hidden
    return {"n_frozen_matmul": frozen, "n_trainable": trainable, "flops_per_token": float(total)}


def measure(trainer: Any, timer: Any, *, tokens_per_step: int, warmup: int, seq_len: int) -> dict[str, Any]:
    import torch

    t0 = time.perf_counter()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    train_s = time.perf_counter() - t0
    ends = timer.ends
    timed = ends[warmup:]
    steps = len(timed) - 1
    seconds = timed[-1] - timed[0] if steps > 0 else float("nan")
    out = {
        "steps": len(ends), "timed_steps": steps, "timed_seconds": round(seconds, 3),
        "tokens_per_s": round(steps * tokens_per_step / seconds, 1) if steps > 0 else None,
        "s_per_step": round(seconds / steps, 4) if steps > 0 else None,
        "train_call_s": round(train_s, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
    }
    if torch.cuda.is_available():
        out["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["gpu"] = torch.cuda.get_device_name(0)
    out.update(flops_per_token(trainer.model, seq_len=seq_len))
    return out


def run_once(spec: dict[str, Any], *, under_ray: bool) -> dict[str, Any]:
    """Build the trainer and time it; the same function runs bare and inside the Ray Train worker."""
    import torch

    from tradeoff_ray.config import LoraVariant
    from tradeoff_ray.train.loop import build_trainer

    torch.set_num_threads(spec["threads"])
    variant = LoraVariant.model_validate(spec["variant"])
    callbacks: list = []
    if under_ray:
        import ray.train.torch
        from ray.train.huggingface.transformers import RayTrainReportCallback

        device = ray.train.torch.get_device()
        callbacks.append(RayTrainReportCallback())
    else:
        device = torch.device("cuda" if spec["gpu"] else "cpu")
    timer = _timer_class()()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        trainer = build_trainer(model_path=spec["model_path"], variant=variant, train_records=spec["records"],
                                validation_records=[], output_dir=scratch, max_steps=spec["steps"],
                                device=device, callbacks=callbacks + [timer], logging_steps=spec["steps"])
        if under_ray:
            from ray.train.huggingface.transformers import prepare_trainer

            trainer = prepare_trainer(trainer)
        return measure(trainer, timer, tokens_per_step=spec["tokens_per_step"], warmup=spec["warmup"],
                       seq_len=spec["seq_len"])


def _ray_worker(spec: dict[str, Any]) -> dict[str, Any]:
    return run_once(spec, under_ray=True)


def run_ray(spec: dict[str, Any], *, storage: Path) -> dict[str, Any]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from tradeoff_ray.config import RayConfig
    from tradeoff_ray.ray_session import ray_session

    with ray_session(RayConfig()):
        resources = {"CPU": 1, "GPU": 1} if spec["gpu"] else {"CPU": 1}
        trainer = TorchTrainer(_ray_worker, train_loop_config=spec,
                               scaling_config=ScalingConfig(num_workers=1, use_gpu=spec["gpu"],
                                                            resources_per_worker=resources),
                               run_config=RunConfig(name=f"bench-{int(time.time())}", storage_path=str(storage)))
        result = trainer.fit()
    return result.return_value


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundled", help="model dir, 'bundled' (SmolLM2-135M) or 'random-llama-8b'")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of tokens/s")
    parser.add_argument("--batch", type=int, default=4, help="sequences per step")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--quantization", choices=["none", "nf4"], default="none")
    parser.add_argument("--r", type=int, default=16, help="LoRA rank (all 7 projections)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="GPU peak bf16 TFLOP/s for MFU")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "tradeoff_ray" / "bench")
    parser.add_argument("--skip-ray", action="store_true", help="bare trainer only")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    import torch

    gpu = torch.cuda.is_available()
    if args.quantization == "nf4" and not gpu:
        sys.exit("--quantization nf4 needs a CUDA GPU (bitsandbytes 4-bit)")
    model_path = resolve_model_dir(args.model, args.cache)
    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(model_path).vocab_size
    variant = {"name": "bench", "r": args.r, "alpha": 2 * args.r, "dropout": 0.0, "learning_rate": 1e-4,
               "max_steps": args.steps, "per_device_batch_size": args.batch, "max_length": args.seq_len,
               "warmup_ratio": 0.0, "lr_scheduler": "constant", "quantization": args.quantization,
               "gradient_checkpointing": args.gradient_checkpointing}
    spec = {"model_path": model_path, "variant": variant, "steps": args.steps, "warmup": args.warmup,
            "seq_len": args.seq_len, "tokens_per_step": args.batch * args.seq_len, "threads": args.threads,
            "gpu": gpu, "records": synthetic_records(n=args.steps * args.batch, seq_len=args.seq_len, vocab=vocab)}
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "model_path": model_path,
                              "steps": args.steps, "warmup": args.warmup, "batch": args.batch,
                              "seq_len": args.seq_len, "quantization": args.quantization, "r": args.r,
                              "threads": args.threads, "device": torch.cuda.get_device_name(0) if gpu else "cpu"}
    t0 = time.perf_counter()
    report["bare"] = run_once(spec, under_ray=False)
    report["bare"]["wall_s"] = round(time.perf_counter() - t0, 2)
    _print_run("bare TRL", report["bare"])
    if not args.skip_ray:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as storage:
            t0 = time.perf_counter()
            report["ray"] = run_ray(spec, storage=Path(storage))
            report["ray"]["wall_s"] = round(time.perf_counter() - t0, 2)
        _print_run("Ray Train", report["ray"])
        bare, ray_ = report["bare"]["tokens_per_s"], report["ray"]["tokens_per_s"]
        if bare and ray_:
            report["ray_overhead_pct"] = round(100 * (bare - ray_) / bare, 2)
            report["wall_overhead_s"] = round(report["ray"]["wall_s"] - report["bare"]["wall_s"], 2)
            print(f"Ray Train overhead: {report['ray_overhead_pct']:+.2f}% tokens/s "
                  f"(wall {report['wall_overhead_s']:+.1f}s incl. worker start)")
    if gpu:
        peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in report["device"]), None)
        for name in ("bare", "ray"):
            run = report.get(name)
            if run and run.get("tokens_per_s") and peak:
                run["mfu_pct"] = round(100 * run["tokens_per_s"] * run["flops_per_token"] / (peak * 1e12), 2)
                print(f"{name}: MFU {run['mfu_pct']:.1f}% of {peak:.0f} TFLOP/s "
                      f"(4·N_frozen + 6·N_trainable + 12·L·s·d per token)")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1))
    return report


def _print_run(name: str, run: dict[str, Any]) -> None:
    mem = f"peak GPU {run['peak_gpu_gb']} GB" if "peak_gpu_gb" in run else f"peak RSS {run['peak_rss_gb']} GB"
    print(f"{name:10s} {run['tokens_per_s']} tokens/s  {run['s_per_step']} s/step over {run['timed_steps']} steps  "
          f"{mem}  wall {run['wall_s']}s  loss {run['final_loss']}", flush=True)


if __name__ == "__main__":
    main()
