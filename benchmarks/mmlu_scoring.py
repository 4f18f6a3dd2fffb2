"""Benchmark: MMLU letter scoring in one forward pass per question vs one per answer letter.

    MMLU_DIR=/path/to/mmlu python benchmarks/mmlu_scoring.py [--per-category 50] [--shots 0] [--model NAME]

One pass: the prompt (ending in 'Answer:') is run once and the log-probs of the four answer-letter
tokens are read from its next-token distribution (`HfEngine.loglikelihood`, which groups the four
single-token continuations of a question by their shared context). Four passes: each
(prompt, ' X') pair is scored on its own, the way a generic context+continuation scorer does it
(`HfEngine.loglikelihood_full`). Both run on the same balanced subset, in the same process; the
script reports rows/s of each, the speed-up, and how often the two pick the same letter.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

from tradeoff_ray.config import config_from_dict
from tradeoff_ray.infer.hf_engine import HfEngine
from tradeoff_ray.tasks import get_task
from tradeoff_ray.models import resolve_model
from tradeoff_ray.score.mmlu_score import choose_letter


def _letters(scores: list[float], n: int) -> list[tuple[str | None, list[float]]]:
    return [(choose_letter(scores[4 * i:4 * i + 4]), scores[4 * i:4 * i + 4]) for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmlu-dir", default=os.environ.get("MMLU_DIR"), help="MMLU root (or MMLU_DIR).")
    parser.add_argument("--per-category", type=int, default=50, help="Questions per category (balanced subset).")
    parser.add_argument("--shots", type=int, default=0, help="Few-shot exemplars per prompt.")
    parser.add_argument("--model", default=None, help="model.name (default: the bundled SmolLM2-135M-Instruct).")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    if not args.mmlu_dir:
        parser.error("pass --mmlu-dir or set MMLU_DIR")
    overrides = {"data": {"mmlu_dir": args.mmlu_dir, "mmlu_per_category": args.per_category},
                 "eval": {"mmlu_shots": [args.shots]}}
    if args.model:
        overrides["model"] = {"name": args.model}
    cfg = config_from_dict(overrides, source="benchmarks/mmlu_scoring.py")
    model = resolve_model(cfg.model)
    engine = HfEngine(model.path, dtype=cfg.model.dtype, batch_size=args.batch_size)
    task = get_task("mmlu")
    data = task.load(cfg)
    rows, _ = task.rows(cfg, data, task.select(cfg, data), engine.tokenizer)
    requests = [(r["prompt"], c) for r in rows for c in r["continuations"]]
    print(f"{len(rows)} MMLU rows ({args.shots}-shot), {engine.describe()}", flush=True)

    timings, picks = {}, {}
    for name, fn in (("one_pass", engine.loglikelihood), ("four_passes", engine.loglikelihood_full)):
        t0 = time.perf_counter()
        scores = fn(requests)
        timings[name] = time.perf_counter() - t0
        picks[name] = _letters(scores, len(rows))
        print(f"  {name:12s} {timings[name]:7.1f} s  {len(rows) / timings[name]:6.2f} rows/s", flush=True)

    same = sum(a[0] == b[0] for a, b in zip(picks["one_pass"], picks["four_passes"]))
    max_diff = max(abs(x - y) for a, b in zip(picks["one_pass"], picks["four_passes"]) for x, y in zip(a[1], b[1]))
    correct = {k: sum(p[0] == r["answer"] for p, r in zip(v, rows)) for k, v in picks.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {os.cpu_count()} CPUs",
        "model": model.description, "rows": len(rows), "shots": args.shots,
        "seconds": timings, "rows_per_s": {k: len(rows) / v for k, v in timings.items()},
        "speedup": timings["four_passes"] / timings["one_pass"],
        "same_letter": same, "same_letter_pct": 100.0 * same / len(rows), "max_abs_logprob_diff": max_diff,
        "accuracy_pct": {k: 100.0 * v / len(rows) for k, v in correct.items()},
    }
    print(f"same letter on {same}/{len(rows)} ({result['same_letter_pct']:.1f}%), max |Δ log-prob| "
          f"{max_diff:.2e}; one pass is {result['speedup']:.2f}x faster")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
