r"""Score one model as a Ray job: the base model, or a LoRA adapter, on Spider dev and the MMLU subset.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env cluster/runtime_env.yaml -- \
        python jobs/evaluate.py --config configs/seed1_llama3_8b.yaml \
            --adapter s3://BUCKET/tradeoff-ray/ray/artifacts/<run>/train/lora-1/adapter \
            --set data.spider_dir=/home/ray/data/spider --set data.mmlu_dir=/home/ray/data/mmlu --set data.gsm8k_dir=/home/ray/data/gsm8k \
            --set eval.engine=vllm \
            --storage s3://BUCKET/tradeoff-ray

Same work as `tradeoff-ray eval`. --adapter may be a local folder or a storage URI (a training's
`adapter_uri`, or a run uploaded with --include-weights); it is fetched first, keeping its last path
parts so the label ('<variant>' or '<variant>@step<N>') is the same as in the run that trained it.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path, PurePosixPath

import _job
from tradeoff_ray.commands import eval as eval_command
from tradeoff_ray.storage import fetch_dir


def local_adapter(adapter: str | None) -> Path | None:
    """The adapter as a local folder: fetched from storage when it is a URI (s3://, gs://, file://)."""
    if adapter is None or "://" not in adapter:
        return Path(adapter) if adapter else None
    tail = PurePosixPath(adapter.split("://", 1)[1].rstrip("/")).parts[-3:]  # e.g. train/lora-1/adapter
    dest = Path(tempfile.mkdtemp(prefix="adapter-")).joinpath(*tail)
    _job.log.info("fetching adapter %s -> %s", adapter, dest)
    return fetch_dir(adapter, dest)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _job.parser(__doc__)
    parser.add_argument("--adapter", default=None, metavar="PATH_OR_URI",
                        help="LoRA adapter folder or storage URI (default: the base model).")
    parser.add_argument("--out", type=Path, default=None, help="Run dir to write into (default: a new one).")
    return parser.parse_args(argv)


def main() -> int | None:
    args = parse_args()
    cfg = _job.load(args, "evaluate")
    out = args.out or _job.new_run_path(cfg, "eval")
    with _job.publishing(args, cfg, lambda: out if out.is_dir() else None):
        adapter = local_adapter(args.adapter)
        _job.log.info("evaluating %s into %s", adapter or f"the base model {cfg.model.name}", out)
        return eval_command.main(config=args.config, adapter=adapter, out=out, overrides=args.overrides)


if __name__ == "__main__":
    _job.exit_with(main)
