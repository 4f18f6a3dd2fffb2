"""Cost of the quickstart's SQL generation on this machine: transformers `generate` vs the engine's CPU loop.

    python benchmarks/demo_generation.py --n 32 --budgets 128,80 --threads 1

Generates the first `--n` demo dev questions (in the pipeline's prompt order, batch `--batch-size`) with
the bundled model in fp32 on the CPU, once per loop and token budget, and prints for each: wall and
process CPU seconds, CPU seconds per question, and the generated tokens (mean, max, how many hit the
budget). Both loops produce the same text (tests/unit/infer/test_hf_engine.py); the CPU loop drops a
row from the batch when it ends, `generate` keeps it until the batch's longest row ends. CPU seconds are
the figure to compare on a shared machine: wall time there depends on the other work.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="demo dev questions to generate")
    ap.add_argument("--budgets", default="128,80", help="max_new_tokens values, comma-separated")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    from tradeoff_ray.config import load_config
    from tradeoff_ray.infer.engine import encode_text
    from tradeoff_ray.infer.hf_engine import HfEngine
    from tradeoff_ray.infer.stages import by_prompt
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.tasks import get_task
    from tradeoff_ray.tasks.spider import SQL_STOP

    cfg = load_config(None, [])
    engine = HfEngine(resolve_model(cfg.model).path, threads=args.threads, batch_size=args.batch_size)
    spider_task = get_task("spider")
    data = spider_task.load(cfg)
    rows, _ = spider_task.rows(cfg, data, spider_task.select(cfg, data), engine.tokenizer)
    gold = [len(engine.tokenizer(r["gold_sql"])["input_ids"]) for r in rows]
    print(f"{engine.describe()}; demo gold SQL: max {max(gold)}, mean {statistics.mean(gold):.1f} tokens")
    seqs = [encode_text(engine.tokenizer, r["prompt"]) for r in by_prompt(rows)[:args.n]]
    loops = {"transformers generate": engine._hf_generate, "CPU loop (drops ended rows)": engine._greedy_dropping_finished}
    results = []
    for budget in (int(b) for b in args.budgets.split(",")):
        for name, loop in loops.items():
            wall, cpu = time.perf_counter(), time.process_time()
            counts = []
            for idx in engine._batches(seqs):
                counts += engine._texts(loop([seqs[i] for i in idx], budget, list(SQL_STOP)), list(SQL_STOP))[1]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            res = {"loop": name, "budget": budget, "questions": len(seqs), "wall_s": round(wall, 1),
                   "cpu_s": round(cpu, 1), "cpu_s_per_question": round(cpu / len(seqs), 3),
                   "tokens_mean": round(statistics.mean(counts), 1), "tokens_max": max(counts),
                   "at_budget": sum(c >= budget for c in counts)}
            results.append(res)
            print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
