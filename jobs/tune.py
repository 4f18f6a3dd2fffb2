r"""A Ray Tune sweep of LoRA settings as a Ray job; each trial reports validation loss and its validation scores.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env cluster/runtime_env.yaml -- \
        python jobs/tune.py --config configs/seed1_llama3_8b.yaml \
            --set tune.enabled=true --set 'tune.base={name: sweep, max_steps: 512, quantization: nf4}' \
            --set 'tune.space={r: {grid: [8, 16, 32]}, learning_rate: {grid: [1.0e-5, 2.0e-4]}}' \
            --set eval.engine=vllm --set training.use_gpu=true --storage s3://BUCKET/tradeoff-ray

Same work as `tradeoff-ray tune`: trials are scored on validation sets (held-out Spider train databases, MMLU
val, a GSM8K train slice), the chosen trial once on the test sets (label `tuned` in <run dir>/evals/). The
trials table lands in <run dir>/tune/trials.csv (open it with notebooks/tune_analysis.ipynb); the Tune
ResultGrid, each trial's adapter and each trial's results stay under the Ray storage path (<--storage>/ray),
and submitting again with the same --out resumes an interrupted sweep. On a cluster with more than one
node it must be shared storage (s3://, gs://, or NFS declared with --set ray.shared_storage=true) that
every node can write; the job refuses anything else.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import _job
from tradeoff_ray.commands import tune


def log_pareto(run_dir: Path) -> None:
    """Name the Pareto-optimal trials (on validation) in the job log, so `ray job logs` answers the question."""
    trials = run_dir / "tune" / "trials.csv"
    if not trials.is_file():
        _job.log.warning("no trials table at %s", trials)
        return
    rows = list(csv.DictReader(trials.open()))
    best = [r for r in rows if str(r.get("pareto", "")).lower() in {"true", "1"}]
    _job.log.info("%d trials; %d Pareto-optimal on the objectives: %s", len(rows), len(best), trials)
    settings = ("trial_id", "r", "alpha", "learning_rate", "dropout")
    for r in best:
        scores = {k: v for k, v in r.items() if k not in settings and k.startswith("val_")}
        _job.log.info("  %s", ", ".join(f"{k}={r.get(k)}" for k in (*settings[1:], *scores)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _job.parser(__doc__)
    parser.add_argument("--out", type=Path, default=None, help="Run dir to write into (default: a new one).")
    return parser.parse_args(argv)


def main() -> int | None:
    args = parse_args()
    cfg = _job.load(args, "tune")
    out = args.out or _job.new_run_path(cfg, "tune")
    with _job.publishing(args, cfg, lambda: out if out.is_dir() else None):
        _job.log.info("Tune sweep %r into %s", cfg.tune.base.name if cfg.tune.base else cfg.name, out)
        code = tune.main(config=args.config, out=out, overrides=args.overrides)
        log_pareto(out)
        return code


if __name__ == "__main__":
    _job.exit_with(main)
