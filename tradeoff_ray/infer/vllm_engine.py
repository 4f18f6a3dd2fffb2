"""`VllmEngine`: the vLLM implementation of `Engine` (GPU; not importable on the CPU dev machine).

Why vLLM in our own actor pool rather than `ray.data.llm.build_processor(vLLMEngineProcessorConfig)`:
the same `GenerationActor` / `MmluActor` then wrap either engine through the one `Engine` protocol
(one pipeline, one set of tests, the HF engine as the CPU reference), MMLU log-likelihood reads
vLLM's prompt log-probs directly instead of through the processor's row post-processing, and
prompts are tokenized by the same `encode_text` / `encode_pair` as the HF engine, so both engines
see identical token ids (no second BOS from a chat template, the same continuation tokens).

- Generation: `SamplingParams(temperature=0, max_tokens, stop)`; vLLM drops the stop string from
  the text, as `HfEngine` does.
- Log-likelihood: context+continuation as token ids with `prompt_logprobs=1` and `max_tokens=1`
  (the lm-evaluation-harness recipe); the continuation's tokens' log-probs are summed. The engine
  built for log-likelihood turns prefix caching off: prompt log-probs of cached prefix positions
  have been reported wrong/order-dependent with prefix caching on (vllm-project/vllm#42019, open).
- Adapters: a merged model by default; with `eval.vllm.enable_lora`, the base model plus a
  `LoRARequest` on every call (`max_lora_rank` must be >= the adapter's r; checked up front).

Not run on the CPU dev machine: the lead tests it on GPU (vLLM 0.26.0 with torch 2.11).
"""
from __future__ import annotations

import time
from typing import Any

from tradeoff_ray.config import VllmConfig
from tradeoff_ray.errors import UserError
from tradeoff_ray.infer.engine import Generation, encode_pair, encode_text


class VllmEngine:
    """Greedy generation and prompt-log-prob scoring with vLLM's offline `LLM`."""

    def __init__(self, model_path: str, *, cfg: VllmConfig, dtype: str = "auto", lora_path: str | None = None,
                 lora_rank: int | None = None, for_loglikelihood: bool = False, seed: int = 0) -> None:
        from vllm import LLM  # lazy: vLLM exists only on GPU machines

        self.model_path = model_path
        self.dtype = "bfloat16" if dtype == "auto" else dtype
        kwargs: dict[str, Any] = dict(
            model=model_path, dtype=self.dtype, gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager, seed=seed,
            enable_prefix_caching=not for_loglikelihood,
        )
        self.lora = None
        if lora_path:
            if lora_rank and lora_rank > cfg.max_lora_rank:
                raise UserError(f"adapter {lora_path} has LoRA rank {lora_rank} > eval.vllm.max_lora_rank="
                                f"{cfg.max_lora_rank}; set eval.vllm.max_lora_rank={lora_rank} or higher")
            from vllm.lora.request import LoRARequest

            kwargs.update(enable_lora=True, max_lora_rank=cfg.max_lora_rank, max_loras=1)
            self.lora = LoRARequest("adapter", 1, lora_path)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.for_loglikelihood = for_loglikelihood

    def describe(self) -> str:
        lora = f", unmerged LoRA {self.lora.lora_path}" if self.lora is not None else ""
        return f"vllm ({self.model_path}, cuda, {self.dtype}{lora})"

    def generate(self, prompts: list[str], *, max_new_tokens: int, stop: list[str]) -> list[Generation]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop=list(stop) or None)
        inputs = [{"prompt_token_ids": encode_text(self.tokenizer, p)} for p in prompts]
        t0 = time.perf_counter()
        outputs = self.llm.generate(inputs, params, use_tqdm=False, lora_request=self.lora)
        share = (time.perf_counter() - t0) / max(1, len(prompts))
        return [Generation(text=o.outputs[0].text, n_new_tokens=len(o.outputs[0].token_ids), seconds=share)
                for o in outputs]

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1, detokenize=False)
        pairs = [encode_pair(self.tokenizer, c, x) for c, x in requests]
        inputs = [{"prompt_token_ids": ctx + cont} for ctx, cont in pairs]
        outputs = self.llm.generate(inputs, params, use_tqdm=False, lora_request=self.lora)
        scores = []
        for (ctx, cont), out in zip(pairs, outputs):
            ids = ctx + cont
            per_position = out.prompt_logprobs  # [None, {token_id: Logprob}, ...] one entry per prompt token
            scores.append(float(sum(per_position[j][ids[j]].logprob for j in range(len(ctx), len(ids)))))
        return scores
