"""On a GPU: check that vLLM runs here and agrees with the HF engine before a run relies on it.

    python scripts/vllm_parity.py [--model bundled:smollm2-135m-instruct]

Greedy SQL generations of a few demo prompts and MMLU-style letter log-likelihoods, from `VllmEngine`
and `HfEngine` (both bf16) on the same token ids. Exit 0 when vLLM runs and its letter choices match
HF's (generations are printed side by side: bf16 kernels differ, so a late token may differ).
"""
from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bundled:smollm2-135m-instruct")
    args = parser.parse_args()

    from tradeoff_ray.config import ModelConfig, VllmConfig, load_config
    from tradeoff_ray.infer.hf_engine import HfEngine
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.tasks import get_task

    model = resolve_model(ModelConfig(name=args.model))
    cfg = load_config(None)
    hf = HfEngine(model.path, dtype="bfloat16", batch_size=8)
    spider_task = get_task("spider")
    data = spider_task.load(cfg)
    rows = spider_task.rows(cfg, data, spider_task.select(cfg, data), hf.tokenizer)[0][:6]
    prompts = [r["prompt"] for r in rows]
    letters = [(f"Question {i}: which letter?\nA. x\nB. y\nC. z\nD. w\nAnswer:", f" {c}")
               for i in range(3) for c in "ABCD"]

    t0 = time.perf_counter()
    from tradeoff_ray.infer.vllm_engine import VllmEngine

    vl = VllmEngine(model.path, cfg=VllmConfig(enforce_eager=True, gpu_memory_utilization=0.3, max_model_len=4096))
    print(f"vLLM engine up in {time.perf_counter() - t0:.1f}s: {vl.describe()}", flush=True)
    gen_v = vl.generate(prompts, max_new_tokens=64, stop=[";"])
    gen_h = hf.generate(prompts, max_new_tokens=64, stop=[";"])
    same = 0
    for v, h in zip(gen_v, gen_h):
        same += v.text == h.text
        print(f"vllm: {v.text[:100]!r}\nhf:   {h.text[:100]!r}\n")
    ll_v = vl.loglikelihood(letters)
    ll_h = hf.loglikelihood(letters)
    worst = max(abs(a - b) for a, b in zip(ll_v, ll_h))
    pick_v = [max(range(4), key=lambda j: ll_v[4 * q + j]) for q in range(3)]
    pick_h = [max(range(4), key=lambda j: ll_h[4 * q + j]) for q in range(3)]
    print(f"generations identical: {same}/{len(prompts)}; letter log-likelihood max |vllm-hf| = {worst:.4f}; "
          f"choices vllm {pick_v} hf {pick_h}")
    return 0 if pick_v == pick_h and worst < 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
