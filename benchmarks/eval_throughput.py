"""Benchmark: Spider dev questions/s of the source studies' eval loop vs this Ray Data pipeline.

    SPIDER_DIR=/path/to/spider python benchmarks/eval_throughput.py [--n 96] [--n-baseline 12]
    python benchmarks/eval_throughput.py --model bundled:smollm2-135m-instruct --n 972 --n-baseline 48  # GPU

In one run, on one machine and one model, with the same prompts (the shared training/eval prompt
builders) and the same 160-token budget, it measures:

  (a) the source studies' loop: HF `generate`, batch 4 in dataset order, `use_cache=False`,
      max 160 new tokens, then scoring — on a seeded subset of `--n-baseline` questions drawn from
      the (b) sample (it recomputes the whole sequence every step, so it is slow: the subset keeps
      the CPU run under an hour);
  (b) this pipeline, `evaluate(..., tasks=("sql",))` with the HF engine on a local Ray: generation
      actor -> scorer actor, wall time including actor start-up;
  (c) on GPU only, the same pipeline with vLLM.

Questions/s of each, the ratios to (a), the machine and its load are printed (and written to
`--json-out`). Issue 4's targets: on CPU (b) >= 5x (a); on one GPU, Spider dev (1034) generation +
scoring in < 30 s with HF and < 10 s with vLLM for the 135M model. Record results in RESULTS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tradeoff_ray.config import BUNDLED_MODEL, load_config


def machine() -> dict:
    import torch

    cpu = "?"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0]}


def loadavg() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def source_loop(model_path: str, rows: list[dict], *, batch: int, max_new_tokens: int, timeout_s: float) -> dict:
    """(a): the loop the source studies ran: fixed batches of 4, no KV cache, then score each answer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tradeoff_ray.infer.hf_engine import resolve_device_dtype
    from tradeoff_ray.score.sql_score import SqlScorer

    device, dtype = resolve_device_dtype("auto")
    tok = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    scorer = SqlScorer(timeout_s=timeout_s)
    t0 = time.perf_counter()
    ex = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        enc = tok([r["prompt"] for r in chunk], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=False,
                                 pad_token_id=tok.pad_token_id)
        texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for r, text in zip(chunk, texts):
            ex.append(scorer.score(r["db_id"], r["db_path"], r["gold_sql"], text, extract=True)["ex"])
        done = i + len(chunk)
        rate = done / (time.perf_counter() - t0)
        print(f"  (a) {done}/{len(rows)} · {rate:.3f} q/s · ETA {(len(rows) - done) / rate:.0f}s", flush=True)
    seconds = time.perf_counter() - t0
    return {"questions": len(rows), "seconds": seconds, "qps": len(rows) / seconds,
            "ex": sum(e or 0 for e in ex) / len(ex)}


def pipeline(cfg, spider_subset, *, label: str) -> dict:
    """(b)/(c): this pipeline on the already-running Ray; wall time includes actor start-up."""
    from tradeoff_ray.infer.pipeline import evaluate

    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        t0 = time.perf_counter()
        summary = evaluate(cfg, label=label, out_dir=Path(tmp), spider=spider_subset, tasks=("sql",))
        seconds = time.perf_counter() - t0
    n = summary["sql"]["scored"]
    return {"questions": n, "seconds": seconds, "qps": n / seconds, "ex": summary["sql"]["ex"]["accuracy"],
            "served": summary["served"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spider-dir", default=os.environ.get("SPIDER_DIR"), help="Spider root (or SPIDER_DIR).")
    parser.add_argument("--model", default=BUNDLED_MODEL, help="model.name (hub id, local dir or the bundled model).")
    parser.add_argument("--n", type=int, default=96, help="Executable dev questions for (b)/(c) (seeded sample; "
                        "972 = all).")
    parser.add_argument("--n-baseline", type=int, default=12, help="Questions for (a), drawn from the (b) sample.")
    parser.add_argument("--batch-size", type=int, default=16, help="eval.batch_size of the pipeline (HF engine).")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="Generation budget of every loop.")
    parser.add_argument("--cpus-per-generation-actor", type=float, default=1.5,
                        help="(b) on CPU: torch threads = ceil of this; the scorer actor takes 0.5.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-baseline", action="store_true", help="Skip (a).")
    parser.add_argument("--vllm-cuda-graphs", action="store_true",
                        help="(c): let vLLM compile and capture CUDA graphs (slower start; default: enforce_eager)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    if not args.spider_dir:
        parser.error("pass --spider-dir or set SPIDER_DIR")

    from transformers import AutoTokenizer

    from tradeoff_ray.data.spider import load_spider_dir
    from tradeoff_ray.infer.engine import select_engine
    from tradeoff_ray.infer.tasks import sql_rows
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.ray_session import ray_session

    common = [f"model.name={args.model}", f"data.spider_dir={args.spider_dir}",
              f"eval.max_new_tokens={args.max_new_tokens}", "eval.cpus_per_scorer_actor=0.5"]
    cfg = load_config(None, common + ["eval.engine=hf", f"eval.batch_size={args.batch_size}",
                                      f"eval.cpus_per_generation_actor={args.cpus_per_generation_actor}"])
    info = machine()
    print(f"machine: {info}", flush=True)
    model = resolve_model(cfg.model)
    spider = load_spider_dir(args.spider_dir)
    executable = spider.executable("dev")
    rng = random.Random(f"eval-bench:{args.seed}")
    sample = sorted(rng.sample(executable, min(args.n, len(executable))), key=lambda e: e.example_id)
    subset = dataclasses.replace(spider, dev=sample)
    tok = AutoTokenizer.from_pretrained(model.path)
    rows, _ = sql_rows(cfg, subset, tok, label="bench")
    base_rows = rng.sample(rows, min(args.n_baseline, len(rows)))
    ntok = lambda rs: statistics.mean(len(tok(r["prompt"]).input_ids) for r in rs)  # noqa: E731
    results: dict = {"machine": info, "model": model.description, "n": len(rows), "n_baseline": len(base_rows),
                     "prompt_tokens_mean": {"b": ntok(rows), "a": ntok(base_rows)},
                     "max_new_tokens": args.max_new_tokens, "load_before": loadavg(), "date": time.strftime("%F")}
    print(f"prompts: (b) {len(rows)} questions, mean {results['prompt_tokens_mean']['b']:.0f} prompt tokens; "
          f"(a) {len(base_rows)} of them, mean {results['prompt_tokens_mean']['a']:.0f}", flush=True)

    with ray_session(cfg.ray):
        print("(b) this pipeline, HF engine", flush=True)
        results["b_pipeline_hf"] = pipeline(cfg, subset, label="bench-hf")
        gpu_engine, why = select_engine(cfg.eval.model_copy(update={"engine": "auto"}))
        if gpu_engine == "vllm":
            print("(c) this pipeline, vLLM engine", flush=True)
            # vLLM schedules its own batches: hand it the whole sample in one call
            vcfg = load_config(None, common + ["eval.engine=vllm", "eval.batch_size=1024",
                                               "eval.cpus_per_generation_actor=1",
                                               f"eval.vllm.enforce_eager={not args.vllm_cuda_graphs}"])
            results["c_pipeline_vllm"] = pipeline(vcfg, subset, label="bench-vllm")
        else:
            results["c_pipeline_vllm"] = f"skipped: {why}"
    if not args.skip_baseline:
        print(f"(a) source loop: batch 4, use_cache=False, max {args.max_new_tokens} new tokens", flush=True)
        results["a_source_loop"] = source_loop(model.path, base_rows, batch=4, max_new_tokens=args.max_new_tokens,
                                               timeout_s=cfg.eval.sql_timeout_s)
    results["load_after"] = loadavg()

    print("\n=== Spider dev generation + scoring throughput ===")
    print(f"machine: {info['cpu']} x{info['cpu_count']} cpus, gpu={info['gpu']}, torch {info['torch']}; "
          f"load avg before {results['load_before']}, after {results['load_after']}")
    print(f"model: {results['model']}; max {args.max_new_tokens} new tokens")
    a = results.get("a_source_loop")
    for key, name in (("a_source_loop", "(a) source loop"), ("b_pipeline_hf", "(b) pipeline, HF"),
                      ("c_pipeline_vllm", "(c) pipeline, vLLM")):
        r = results.get(key)
        if isinstance(r, dict):
            ratio = f"  = {r['qps'] / a['qps']:.1f}x (a)" if a and key != "a_source_loop" else ""
            print(f"{name:22s} {r['questions']:5d} q in {r['seconds']:8.1f}s  {r['qps']:7.3f} q/s  "
                  f"EX {r['ex']:.3f}{ratio}")
        elif r:
            print(f"{name:22s} {r}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
