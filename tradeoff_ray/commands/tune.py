"""`tradeoff-ray tune CONFIG [--out DIR] [--set k=v]`: explore LoRA settings with Ray Tune.

Every trial trains `tune.base` with the sampled `tune.space` settings and is scored on validation sets
(held-out Spider train databases, MMLU val, a GSM8K train slice: `tune.evaluate_trials`); trials land in
<run dir>/tune/trials.csv with a Pareto column. The trial chosen on validation (`tune.select_on`) is then
scored once on the test sets, as label `tuned` in <run dir>/evals/. Run again with the same `--out` to
resume an interrupted sweep.
"""
from __future__ import annotations

from pathlib import Path

from tradeoff_ray.config import load_config


def main(config: Path | None = None, out: Path | None = None, overrides: list[str] | None = None) -> int:
    from tradeoff_ray.infer.pipeline import evaluate
    from tradeoff_ray.ray_session import describe_target, decides_gpus, ray_session
    from tradeoff_ray.records import TUNED
    from tradeoff_ray.rundir import new_run_dir
    from tradeoff_ray.sweep import check_tune_config, check_tune_hardware, read_chosen, run_tune, trial_metrics

    cfg = load_config(config, overrides)
    check_tune_config(cfg)
    check_tune_hardware(cfg)  # QLoRA in the base or the space needs CUDA + bitsandbytes: fail before Ray starts
    run_dir = new_run_dir(cfg, out=out)
    print(f"[tune] run dir {run_dir}; {describe_target(cfg.ray)}", flush=True)
    with ray_session(cfg.ray, wants_gpus=decides_gpus(cfg)):
        run_tune(cfg, run_dir=run_dir)
        chosen = read_chosen(run_dir / "tune")
        if chosen is None:
            print("[tune] no trial completed with validation scores; nothing to evaluate on the test sets")
            return 1
        summary = evaluate(cfg, label=TUNED, out_dir=run_dir, adapter_dir=Path(chosen["adapter_dir"]))
    scores = ", ".join(f"{k} {v:.3f}" for k, v in trial_metrics(summary).items() if v is not None)
    print(f"[tune] test sets, chosen trial {chosen['trial_id']} (label {TUNED}): {scores}")
    return 0
