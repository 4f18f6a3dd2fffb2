r"""The whole experiment as a Ray job: baseline eval -> train variants -> eval variants -> analysis -> report.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env cluster/runtime_env.yaml -- \
        python jobs/run_experiment.py --config configs/seed1_llama3_8b.yaml \
            --set data.spider_dir=/home/ray/data/spider --set data.mmlu_dir=/home/ray/data/mmlu --set data.gsm8k_dir=/home/ray/data/gsm8k \
            --set output_dir=/home/ray/runs --set eval.engine=vllm --set training.use_gpu=true \
            --storage s3://BUCKET/tradeoff-ray

    python jobs/run_experiment.py --resume /home/ray/runs/seed1-llama3-8b-20260101-120000   # after a stop

Same work as `tradeoff-ray run`; the driver joins the cluster through RAY_ADDRESS (set by
`ray job submit`) and its log is `ray job logs JOB_ID`. At the end (and after a failure) the run
dir's results, not its weights, are copied to --storage or ray.storage_path. --storage is also the
run's storage (ray.storage_path = <URI>/ray): trained adapters reach the evaluating node through it,
and a multi-node cluster refuses to start without one every node reaches.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import _job
from tradeoff_ray.commands import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _job.parser(__doc__)
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="Continue this run dir; finished stages are reused, not recomputed.")
    return parser.parse_args(argv)


def main() -> int | None:
    args = parse_args()
    cfg = _job.load(args, "run_experiment")
    started = time.time()
    run_dir = lambda: args.resume or _job.newest_run_dir(cfg, since=started)  # noqa: E731
    with _job.publishing(args, cfg, run_dir):
        _job.log.info("running the experiment %r (%s)", cfg.name,
                      f"resuming {args.resume}" if args.resume else f"new run dir under {cfg.output_dir}")
        return run.main(config=args.config, resume=args.resume, overrides=args.overrides)


if __name__ == "__main__":
    _job.exit_with(main)
