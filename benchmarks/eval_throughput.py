"""Benchmark: Spider dev questions/s of the source studies' eval loop vs this Ray Data pipeline.

    SPIDER_DIR=/path/to/spider python benchmarks/eval_throughput.py [--n 96] [--n-baseline 12]
    python benchmarks/eval_throughput.py --model bundled:smollm2-135m-instruct --n 972 --n-baseline 48  # GPU

In one run, on one machine and one model, with the same prompts (the shared training/eval prompt
builders) and the same 160-token budget, it measures:

  (a) the source studies' loop: HF `generate`, batch 4 in dataset order, `use_cache=False`,
      max 160 new tokens, then scoring — on a seeded subset of `--n-baseline` questions drawn from
      the (b) sample (it recomputes the whole sequence every step, so it is slow: the subset keeps
      the CPU run under an hour);
  (b) this pipeline, `evaluate(..., tasks=[spider])` with the HF engine on a local Ray: generation
      actor -> scorer actor, wall time including actor start-up;
  (c) on GPU only, the same pipeline with vLLM.

`--engine-limit` (GPU) measures instead the engine-limit row: raw vLLM (one `LLM`, one `generate` call,
no Ray) against this pipeline (`infer.shared`: one engine actor per GPU serving every label and task)
on exactly the same prompts — Spider dev + the full MMLU test split 0-shot (+ GSM8K test with `--gsm8k-dir`)
— for 1 label and for
1 + `--adapters` labels (random-init peft LoRA adapters with small non-zero B), engine start shown
apart; then (`parity`) the merged-vs-LoRA check on the first adapter. Parts run in separate calls
(`--parts raw`, `--parts pipeline,parity`), state kept in `--state-dir`:

    python benchmarks/eval_throughput.py --engine-limit --parts raw --model /root/qwen \
        --spider-dir $SPIDER --mmlu-dir $MMLU --gsm8k-dir $GSM8K --state-dir /root/elim --json-out out/engine_limit.json

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

ADAPTER_WAIT_S = 600  # --engine-limit: how long a part without raw waits for raw's adapters


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
    from tradeoff_ray.score_options import SqlScoringOptions

    device, dtype = resolve_device_dtype("auto")
    tok = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    scorer = SqlScorer(SqlScoringOptions(timeout_s=timeout_s))
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
    from tradeoff_ray.tasks import TaskData, get_task

    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        t0 = time.perf_counter()
        summary = evaluate(cfg, label=label, out_dir=Path(tmp), tasks=[get_task("spider")],
                           data={"spider": TaskData(spider_subset, spider_subset.source)})
        seconds = time.perf_counter() - t0
    ex = summary["tasks"]["spider"]["measures"]["spider"]
    return {"questions": ex["n"], "seconds": seconds, "qps": ex["n"] / seconds, "ex": ex["accuracy_pct"] / 100,
            "served": summary["served"]}


# ------------------------------------------------------------------------------ the engine-limit row (GPU)


def random_adapters(model_path: str, dest: Path, *, n: int, r: int = 16, seed: int = 0) -> list[Path]:
    """`n` peft LoRA adapters (all 7 projections) with random A and small random non-zero B: they change
    the model's outputs a little, as trained adapters do, so every label does real multi-LoRA work."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = [dest / f"lora-{i + 1}" for i in range(n)]
    if (dest / "complete").exists():
        return out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16).to(device)
    for i, path in enumerate(out):
        torch.manual_seed(seed + i)
        peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        with torch.no_grad():
            for name, param in peft.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 2e-3)
        peft.save_pretrained(path)
        model = peft.unload()
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    (dest / "complete").write_text(str(n))
    return out


def raw_engine(cfg, rows: list[dict], *, n_adapters: int, adapters: list[Path], check_rows: int) -> tuple[dict, dict]:
    """vLLM alone (no Ray, no pipeline): the same prompts, sampling settings and adapters, one `generate`
    call for 1 label and one for all labels. Returns (timings, per-row outputs of every label)."""
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from tradeoff_ray.infer.engine import encode_pairs
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.prompts import MMLU_CONTINUATIONS
    from tradeoff_ray.tasks import GENERATE

    model = resolve_model(cfg.model).path
    tok = AutoTokenizer.from_pretrained(model)
    last_mc = next(r for r in reversed(rows) if r["kind"] != GENERATE)
    letters = [encode_pairs(tok, [(last_mc["prompt"], c)])[0][1] for c in MMLU_CONTINUATIONS]
    assert all(len(x) == 1 for x in letters), "letters must be one token each"
    letters = [x[0] for x in letters]
    t0 = time.perf_counter()
    llm = LLM(model=model, dtype="bfloat16", gpu_memory_utilization=cfg.eval.vllm.gpu_memory_utilization,
              max_model_len=cfg.eval.vllm.max_model_len, enable_prefix_caching=True, enable_lora=True,
              max_loras=n_adapters, max_lora_rank=16, seed=0)
    start = time.perf_counter() - t0
    loras = {f"lora-{i + 1}": LoRARequest(f"lora-{i + 1}", i + 1, str(a)) for i, a in enumerate(adapters)}
    mc = SamplingParams(temperature=0.0, max_tokens=1, logprobs=20, detokenize=False)
    gen: dict = {}  # one SamplingParams per (budget, stop strings): Spider's and GSM8K's

    def params(r):
        if r["kind"] != GENERATE:
            return mc
        key = (r["max_new_tokens"], tuple(r["stop"]))
        return gen.setdefault(key, SamplingParams(temperature=0.0, max_tokens=key[0], stop=list(key[1])))

    def run(subset):
        t = time.perf_counter()
        outs = llm.generate([r["prompt"] for r in subset], [params(r) for r in subset],
                            lora_request=[loras.get(r["label"]) for r in subset], use_tqdm=False)
        return time.perf_counter() - t, outs

    print(f"[raw] engine start {start:.1f}s; one label ...", flush=True)
    one_s, _ = run([r for r in rows if r["label"] == "base"])
    print(f"[raw] one label {one_s:.1f}s; all {len(loras) + 1} labels ...", flush=True)
    all_s, outs = run(rows)
    print(f"[raw] all labels {all_s:.1f}s", flush=True)
    per_row, missing_letters, new_tokens = {}, 0, {}
    for r, o in zip(rows, outs):
        key = f"{r['label']}|{r['task']}|{r['example_id']}"
        if r["kind"] == GENERATE:
            per_row[key] = o.outputs[0].text
            new_tokens.setdefault(f"{r['label']}|{r['task']}", []).append(
                (len(o.outputs[0].token_ids), r["max_new_tokens"]))
        else:
            top = o.outputs[0].logprobs[0]
            missing_letters += not all(t in top for t in letters)
            per_row[key] = [top[t].logprob if t in top else None for t in letters]
    # one prefill per question vs the four-prefill recipe (context+letter, prompt log-probs), base label
    mm = [r for r in rows if r["kind"] != GENERATE and r["label"] == "base"][:check_rows]
    pairs = encode_pairs(tok, [(r["prompt"], c) for r in mm for c in MMLU_CONTINUATIONS])
    four = llm.generate([{"prompt_token_ids": c + x} for c, x in pairs],
                        SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1, detokenize=False),
                        use_tqdm=False)
    agree, worst = 0, 0.0
    for q, r in enumerate(mm):
        full = []
        for j in range(4):
            c, x = pairs[4 * q + j]
            full.append(four[4 * q + j].prompt_logprobs[len(c)][x[0]].logprob)
        one = per_row[f"base|mmlu|{r['example_id']}"]
        if None not in one:
            worst = max(worst, max(abs(a - b) for a, b in zip(one, full)))
            agree += max(range(4), key=lambda k: one[k]) == max(range(4), key=lambda k: full[k])
    timings = {"engine_start_s": round(start, 2), "one_label_s": round(one_s, 2), "all_labels_s": round(all_s, 2),
               "letters_outside_top20": missing_letters,
               # mean new tokens and share that ran to the budget, per label and generated task
               "new_tokens": {k: {"mean": round(statistics.mean(n for n, _ in v), 1),
                                  "at_budget": round(sum(n >= budget for n, budget in v) / len(v), 3)}
                              for k, v in new_tokens.items()},
               "one_vs_four_prefill": {"rows": len(mm), "same_letter": agree, "max_abs_logprob_diff": round(worst, 4)}}
    del llm
    return timings, per_row


def pipeline_run(cfg, labels: dict, data: dict, out: Path) -> dict:
    """This pipeline (Ray, one engine actor per GPU): 1 label, then all labels, on one long-lived pool."""
    from tradeoff_ray.infer.shared import EnginePool, evaluate_labels, shared_spec

    t0 = time.perf_counter()
    pool = EnginePool(cfg, shared_spec(cfg, labels), stage="bench")
    start = time.perf_counter() - t0
    try:
        t = time.perf_counter()
        evaluate_labels(cfg, labels={"base": None}, out_dir=out / "one", data=data, pool=pool)
        one_s = time.perf_counter() - t
        t = time.perf_counter()
        summaries = evaluate_labels(cfg, labels=labels, out_dir=out / "all", data=data, pool=pool)
        all_s = time.perf_counter() - t
    finally:
        pool.shutdown()
    return {"engine_start_s": round(start, 2), "actor_engine_start_s": pool.info[0]["engine_start_s"],
            "one_label_s": round(one_s, 2), "all_labels_s": round(all_s, 2),
            "accuracy_pct": {k: {m: b["accuracy_pct"] for t in v["tasks"].values() for m, b in t["measures"].items()}
                             for k, v in summaries.items()}}


def per_example(run_dir: Path, label: str) -> dict:
    from tradeoff_ray.records import read_jsonl

    got = {}
    d = run_dir / "evals" / label
    for r in read_jsonl(d / "spider.jsonl"):
        got[f"spider|{r['example_id']}"] = (r["ex"], r["raw_generation"])
    for r in read_jsonl(d / "mmlu.jsonl"):
        if r["shots"] == 0:
            got[f"mmlu|{r['example_id']}"] = (r["pred"], None)
    if (d / "gsm8k.jsonl").exists():
        for r in read_jsonl(d / "gsm8k.jsonl"):
            got[f"gsm8k|{r['example_id']}"] = (r["correct_flexible"], r["raw_generation"])
    return got


def agreement(a: dict, b: dict) -> dict:
    """Per-example agreement of two runs: Spider EX verdicts (and identical SQL text), MMLU letters, GSM8K
    verdicts (and identical solutions)."""
    out = {}
    for task in ("spider", "mmlu", "gsm8k"):
        keys = sorted(k for k in a if k.startswith(task) and k in b)
        same = [k for k in keys if a[k][0] == b[k][0]]
        out[task] = {"rows": len(keys), "same": len(same), "rate": round(len(same) / max(1, len(keys)), 4),
                     "differ": [k for k in keys if a[k][0] != b[k][0]][:20]}
        if task != "mmlu":
            out[task]["same_text"] = sum(a[k][1] == b[k][1] for k in keys)
    return out


def run_part(part: str, args, cfg, sets, labels, adapters, data, model, results: dict) -> None:
    """One part of the engine-limit run (raw | pipeline | parity); its numbers go into `results`."""
    from tradeoff_ray.infer.pipeline import label_rows
    from tradeoff_ray.infer.serving import serve_order
    from tradeoff_ray.infer.shared import evaluate_labels
    from tradeoff_ray.tasks import configured_tasks

    print(f"=== {part}", flush=True)
    state = args.state_dir
    if part == "raw":
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model.path)
        rows = []
        for label in labels:
            rows += label_rows(cfg, configured_tasks(cfg), data, tok, label=label)[0]
        rows = serve_order(rows)
        results["rows"] = {"total": len(rows), "per_label": len(rows) // len(labels),
                           **{f"{t}_per_label": sum(r["task"] == t for r in rows) // len(labels) for t in data}}
        results["raw"], per_row = raw_engine(cfg, rows, n_adapters=args.adapters, adapters=adapters,
                                             check_rows=args.check_rows)
        (state / "raw_rows.json").write_text(json.dumps(per_row))
    elif part == "pipeline":
        results["pipeline"] = pipeline_run(cfg, labels, data, state / "pipeline")
    elif part == "parity":
        # each adapter merged into a model copy with its own engine: base-speed decoding, one start per label
        merged_cfg = load_config(None, sets + ["eval.adapters=merged"])
        per_label = {}
        for label in [k for k in labels if labels[k] is not None][:args.merged_labels]:
            t = time.perf_counter()
            evaluate_labels(merged_cfg, labels={label: labels[label]}, out_dir=state / "merged", data=data)
            per_label[label] = round(time.perf_counter() - t, 2)
            print(f"[merged] {label}: {per_label[label]} s (merge, engine start, every row)", flush=True)
        results["merged_label_s"] = per_label
    else:
        raise SystemExit(f"unknown part {part!r}: raw, pipeline or parity")


def engine_limit(args) -> int:
    """The engine-limit row: this pipeline vs raw vLLM on the same prompts, 1 label and 1 + N adapters."""
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.ray_session import ray_session
    from tradeoff_ray.tasks import configured_tasks

    state = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    sets = [f"model.name={args.model}", f"model.cache_dir={state / 'cache'}", f"data.spider_dir={args.spider_dir}",
            f"data.mmlu_dir={args.mmlu_dir}", "data.mmlu_per_category=null", "eval.mmlu_shots=[0]",
            "data.dev_limit=null", "eval.mmlu_mode=loglikelihood", "eval.vllm.enforce_eager=false",
            "eval.engine=vllm", f"eval.max_new_tokens={args.max_new_tokens}", "eval.cpus_per_scorer_actor=1",
            f"eval.vllm.gpu_memory_utilization={args.gpu_memory_utilization}", "eval.vllm.max_lora_rank=16"]
    if args.gsm8k_dir:
        sets.append(f"data.gsm8k_dir={args.gsm8k_dir}")
    cfg = load_config(None, sets)
    model = resolve_model(cfg.model)
    parts = args.parts.split(",")
    if "raw" not in parts:  # the raw part (another process, another GPU) writes the adapters: wait for them
        t0 = time.perf_counter()
        while not (state / "adapters" / "complete").exists() and time.perf_counter() - t0 < ADAPTER_WAIT_S:
            time.sleep(2)
    adapters = random_adapters(model.path, state / "adapters", n=args.adapters)
    labels = {"base": None, **{a.name: a for a in adapters}}
    data = {t.name: t.load(cfg) for t in configured_tasks(cfg)}
    common = {"machine": machine(), "model": model.description or model.path, "date": time.strftime("%F"),
              "labels": list(labels), "adapters": "random-init peft LoRA r16 on 7 projections, B ~ N(0, 2e-3)"}

    def run(part: str) -> None:
        results: dict = {"started": time.strftime("%FT%T")}
        run_part(part, args, cfg, sets, labels, adapters, data, model, results)
        (state / f"engine_limit.{part}.json").write_text(json.dumps(results, indent=1, default=str))
        combined = {**common, **combine(state, labels, list(data))}
        text = json.dumps(combined, indent=1, default=str)
        (state / "engine_limit.json").write_text(text)
        if args.json_out:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(text)
        print(json.dumps({k: v for k, v in combined.items() if k != "machine"}, indent=1, default=str), flush=True)

    if parts == ["raw"]:  # raw vLLM needs no Ray (and a second local Ray on the host would be a second cluster)
        run("raw")
        return 0
    # one Ray session for every part of this process (restarting Ray inside one process is not safe)
    with ray_session(cfg.ray):
        for part in parts:
            run(part)
    return 0


def combine(state: Path, labels: dict, tasks: list[str]) -> dict:
    """Every finished part's numbers (engine_limit.<part>.json) and what compares them: the ratios, the
    pipeline's outputs against raw vLLM's, merged against LoRA-served."""
    from tradeoff_ray.records import read_jsonl

    out: dict = {}
    for part in ("raw", "pipeline", "parity"):
        path = state / f"engine_limit.{part}.json"
        if path.exists():
            out.update(json.loads(path.read_text()))
    raw, pipe = out.get("raw"), out.get("pipeline")
    if raw and pipe:
        # with one engine start on each side: the pipeline's (raw's first start also pays vLLM's one-off
        # compile, cached on disk for every later start)
        out["ratio"] = {
            "one_label": round(pipe["one_label_s"] / raw["one_label_s"], 3),
            "all_labels": round(pipe["all_labels_s"] / raw["all_labels_s"], 3),
            "all_labels_plus_one_start": round((pipe["all_labels_s"] + pipe["engine_start_s"])
                                               / (raw["all_labels_s"] + pipe["engine_start_s"]), 3)}
    raw_path, pipe_dir = state / "raw_rows.json", state / "pipeline" / "all" / "evals"
    if raw_path.exists() and pipe_dir.exists():  # the pipeline's SQL texts and MMLU letters against raw vLLM's
        raw_rows = json.loads(raw_path.read_text())
        same = {t: [0, 0] for t in tasks}
        for label in labels:
            for task in tasks:
                path = pipe_dir / label / f"{task}.jsonl"
                for r in read_jsonl(path) if path.exists() else []:
                    got = raw_rows.get(f"{label}|{task}|{r['example_id']}")
                    if task == "mmlu":
                        if r["shots"] == 0 and got and None not in got:
                            same[task][0] += 1
                            same[task][1] += "ABCD"[max(range(4), key=lambda k: got[k])] == r["pred"]
                    elif got is not None:
                        same[task][0] += 1
                        same[task][1] += got == r["raw_generation"]
        out["pipeline_vs_raw"] = {t: {"rows": n, "same_output": k} for t, (n, k) in same.items()}
    if (state / "merged").exists() and pipe_dir.exists():
        out["parity_merged_vs_lora"] = agreement(per_example(state / "merged", "lora-1"),
                                                 per_example(state / "pipeline" / "all", "lora-1"))
    return out


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
    parser.add_argument("--engine-limit", action="store_true",
                        help="GPU: the engine-limit row (this pipeline vs raw vLLM, 1 and 1+N labels) instead")
    parser.add_argument("--parts", default="raw,pipeline,parity", help="--engine-limit: which parts to run now "
                        "(state between calls is kept in --state-dir)")
    parser.add_argument("--mmlu-dir", default=os.environ.get("MMLU_DIR"), help="MMLU root (or MMLU_DIR).")
    parser.add_argument("--gsm8k-dir", default=os.environ.get("GSM8K_DIR"),
                        help="--engine-limit: GSM8K root (or GSM8K_DIR): its test problems join every label's rows")
    parser.add_argument("--adapters", type=int, default=4, help="--engine-limit: random adapters besides the base")
    parser.add_argument("--merged-labels", type=int, default=1, help="--engine-limit parity: adapters also "
                        "evaluated merged (lora-1 first: the parity check; all of them: merged vs multi-LoRA time)")
    parser.add_argument("--check-rows", type=int, default=2000, help="--engine-limit: MMLU rows for the "
                        "one-prefill vs four-prefill check")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.4)
    parser.add_argument("--state-dir", type=Path, default=Path("/tmp/engine_limit"))
    args = parser.parse_args()
    if not args.spider_dir:
        parser.error("pass --spider-dir or set SPIDER_DIR")
    if args.engine_limit:
        return engine_limit(args)

    from transformers import AutoTokenizer

    from tradeoff_ray.data.spider import load_spider_dir
    from tradeoff_ray.infer.engine import select_engine
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.tasks import TaskData, get_task
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
    rows, _ = get_task("spider").rows(cfg, TaskData(subset, subset.source), subset.dev, tok)
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
