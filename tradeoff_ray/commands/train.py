"""`tradeoff-ray train CONFIG [--variant NAME] [--out DIR] [--set k=v]`: fine-tune LoRA variants with Ray Train.

Checks what can be checked before Ray starts (QLoRA needs CUDA + bitsandbytes; the data loads),
then trains each variant (or the one named) into the run dir and prints a summary table. A variant whose
loss or gradient norm became NaN/inf stops there, the others go on, and the command exits 1 naming it.
`--out` an existing run dir continues it: a variant whose Ray Train run was interrupted resumes from
its newest checkpoint.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tradeoff_ray.config import cache_root, load_config
from tradeoff_ray.errors import UserError


def main(config: Path | None = None, variant: str | None = None, out: Path | None = None,
         overrides: list[str] | None = None) -> int:
    from tradeoff_ray.data.spider import load_spider
    from tradeoff_ray.ray_session import describe_target, decides_gpus, ray_session
    from tradeoff_ray.rundir import new_run_dir
    from tradeoff_ray.train.checks import check_can_train
    from tradeoff_ray.train.ray_train import diverged, format_results, train_variant

    cfg = load_config(config, overrides)
    variants = [cfg.variant(variant)] if variant else list(cfg.training.variants)
    if not variants:
        raise UserError(f"config {config or 'configs/quickstart.yaml'} defines no training.variants; add one "
                        "(name, r, alpha, learning_rate, max_steps) under training.variants")
    check_can_train(cfg, variants)
    spider = load_spider(cfg.data, cache=cache_root(cfg.model))
    run_dir = new_run_dir(cfg, out=out)
    print(f"[train] run dir {run_dir}; {len(variants)} variant(s): {[v.name for v in variants]}; "
          f"{describe_target(cfg.ray)}", flush=True)
    results = []
    with ray_session(cfg.ray, wants_gpus=decides_gpus(cfg, evaluation=False)):
        for v in variants:
            results.append(train_variant(cfg, v, run_dir=run_dir, spider=spider))
    print(format_results(results))
    failed = diverged(results)
    for r in failed:
        print(f"[train] ERROR: {r['message']}", file=sys.stderr, flush=True)
    if failed:
        print(f"[train] {len(failed)} of {len(results)} variant(s) diverged: {[r['variant'] for r in failed]}",
              file=sys.stderr, flush=True)
    return 1 if failed else 0
