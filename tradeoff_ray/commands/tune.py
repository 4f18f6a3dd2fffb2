"""`tradeoff-ray tune CONFIG [--out DIR] [--set k=v]`: explore LoRA settings with Ray Tune.

Every trial trains `tune.base` with the sampled `tune.space` settings, is scored on Spider EX and
MMLU (`tune.evaluate_trials`), and lands in <run dir>/tune/trials.csv with a Pareto column.
"""
from __future__ import annotations

from pathlib import Path

from tradeoff_ray.config import load_config


def main(config: Path | None = None, out: Path | None = None, overrides: list[str] | None = None) -> int:
    from tradeoff_ray.ray_session import describe_target, decides_gpus, ray_session
    from tradeoff_ray.rundir import new_run_dir
    from tradeoff_ray.sweep import check_tune_config, check_tune_hardware, run_tune

    cfg = load_config(config, overrides)
    check_tune_config(cfg)
    check_tune_hardware(cfg)  # QLoRA in the base or the space needs CUDA + bitsandbytes: fail before Ray starts
    run_dir = new_run_dir(cfg, out=out)
    print(f"[tune] run dir {run_dir}; {describe_target(cfg.ray)}", flush=True)
    with ray_session(cfg.ray, wants_gpus=decides_gpus(cfg)):
        run_tune(cfg, run_dir=run_dir)
    return 0
