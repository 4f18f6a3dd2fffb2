"""`VllmEngine`: the vLLM implementation of `Engine` and `StreamingEngine` (GPU; not importable on the CPU dev machine).

One engine serves a whole evaluation stage: the base model and every adapter of the stage through
vLLM multi-LoRA (`enable_lora`, one `LoRARequest` per request, `max_loras` = the adapters served,
`max_lora_rank` = the smallest vLLM slot that holds the largest r), and every task through the same
`stream` call — Spider generations and MMLU letter scores of all labels are queued at once and vLLM's
scheduler batches them (continuous batching: no batch waits for its slowest row, and the GPU never
idles between batches). CUDA graphs stay on unless `eval.vllm.enforce_eager`; prefix caching is on
(the rows of one database or subject share their schema / header tokens).

- Generation: `SamplingParams(temperature=0, max_tokens, stop)`; vLLM drops the stop string from the
  text, as `HfEngine` does.
- Choices (MMLU): one prefill per question. When every continuation is one token (' A'..' D'), the
  context alone is run with `max_tokens=1, logprobs=20` and the continuations' log-probs are read from
  the next-token distribution (vLLM's default `raw_logprobs`: log-softmax of the model's logits, the
  same numbers as the continuation's prompt log-prob). A continuation outside the top 20 (or one of
  several tokens) falls back to context+continuation with `prompt_logprobs` (the lm-evaluation-harness
  recipe); vLLM skips reading the prefix cache for such requests, so their numbers do not depend on
  what ran before.
- Prompts are tokenized by the same `encode_texts` / `encode_pairs` as the HF engine, so both engines
  see identical token ids (no second BOS from a chat template, the same continuation tokens).
- A request vLLM refuses (e.g. longer than `max_model_len`) comes back as `Failed`; the rest go on.

Why not `ray.data.llm.build_processor(vLLMEngineProcessorConfig)`: its processor serves one task
shape per dataset (its own tokenize / detokenize stages and one sampling setup), so Spider and MMLU
would need two processors and two engine starts per GPU; here one engine takes both tasks of every
label, the `Engine` protocol keeps the HF engine (the CPU path and the parity reference) behind the
same stage functions, and tokenization is shared with it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from tradeoff_ray.config import VllmConfig
from tradeoff_ray.errors import UserError
from tradeoff_ray.models import resolve_dtype
from tradeoff_ray.infer.engine import (
    Choice,
    ChoiceRequest,
    Failed,
    Generation,
    GenerateRequest,
    encode_pairs,
    encode_texts,
)

LORA_RANK_SLOTS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM 0.26 accepts
NEXT_TOKEN_LOGPROBS = 20  # top-k log-probs read after the context (vLLM's default max_logprobs)
QUEUE_BLOCK = 4096  # requests tokenized and queued at a time (see `stream`)


@dataclass(frozen=True)
class AdapterRef:
    """An adapter the engine serves: `name` is the label rows use to ask for it."""

    name: str
    path: str
    rank: int


def lora_rank_slot(rank: int, *, limit: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds `rank`; a UserError naming the key when > `limit`."""
    if rank > limit:
        raise UserError(f"an adapter has LoRA rank {rank} > eval.vllm.max_lora_rank={limit}; set "
                        f"eval.vllm.max_lora_rank={rank} or higher")
    for slot in LORA_RANK_SLOTS:
        if slot >= rank:
            return slot
    raise UserError(f"LoRA rank {rank} is above vLLM's largest ({LORA_RANK_SLOTS[-1]}); serve it with "
                    "eval.adapters=merged")


class VllmEngine:
    """Greedy generation and letter scoring with vLLM's offline `LLM`, for the base and every adapter given."""

    def __init__(self, model_path: str, *, cfg: VllmConfig, dtype: str = "auto", adapters: Sequence[AdapterRef] = (),
                 default_adapter: str | None = None, seed: int = 0) -> None:
        """`adapters` are served unmerged (multi-LoRA); `default_adapter` is the one `generate` and
        `loglikelihood` use (the `Engine` protocol has no per-request adapter)."""
        from vllm import LLM  # lazy: vLLM exists only on GPU machines

        self.model_path = model_path
        self.dtype = str(resolve_dtype(dtype, on_gpu=True)).removeprefix("torch.")  # vLLM runs on GPUs only
        kwargs: dict[str, Any] = dict(
            model=model_path, dtype=self.dtype, gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len, enforce_eager=cfg.enforce_eager, seed=seed,
            enable_prefix_caching=True,
        )
        self.loras: dict[str, Any] = {}
        if adapters:
            from vllm.lora.request import LoRARequest

            slot = lora_rank_slot(max(a.rank for a in adapters), limit=cfg.max_lora_rank)
            kwargs.update(enable_lora=True, max_lora_rank=slot, max_loras=len(adapters))
            self.loras = {a.name: LoRARequest(a.name, i + 1, a.path) for i, a in enumerate(adapters)}
        if default_adapter is not None and default_adapter not in self.loras:
            raise ValueError(f"default_adapter {default_adapter!r} is not among the adapters served")
        self.default_adapter = default_adapter
        t0 = time.perf_counter()
        self.llm = LLM(**kwargs)
        self.start_s = time.perf_counter() - t0
        self.tokenizer = self.llm.get_tokenizer()

    def describe(self) -> str:
        lora = f", {len(self.loras)} unmerged LoRA adapters" if self.loras else ""
        return f"vllm ({self.model_path}, cuda, {self.dtype}{lora})"

    def _lora(self, name: str | None) -> Any:
        return None if name is None else self.loras[name]

    # ------------------------------------------------------------------------------------- streaming core

    def stream(self, requests: Sequence[GenerateRequest | ChoiceRequest], *, one_prefill: bool = True) -> Iterator[
            tuple[int, Generation | Choice | Failed]]:
        """Queue every request, then hand back (index, result) as each finishes (see the module docstring).

        Each result's `seconds` is the wall time since the previous result, so they add up to the call's
        wall time. `one_prefill=False` scores every choice by context+continuation prompt log-probs (the
        reference the one-prefill reading is checked against).
        """
        from vllm import SamplingParams

        unknown = sorted({r.adapter for r in requests if r.adapter is not None} - set(self.loras))
        if unknown:  # a whole label would fail: say so at once instead of failing each of its rows
            raise ValueError(f"adapters {unknown} are not served by this engine (serving {sorted(self.loras)})")
        gen_ids: dict[str, list[int]] = {}
        pair_ids: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        pending: dict[str, tuple[int, str, Any]] = {}  # vLLM request id -> (index, kind, what to read)
        partial: dict[int, dict[int, float]] = {}  # choice index -> continuation number -> log-prob
        next_token = SamplingParams(temperature=0.0, max_tokens=1, logprobs=NEXT_TOKEN_LOGPROBS, detokenize=False)
        full = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1, detokenize=False)

        def add(i: int, ids: list[int], params: Any, lora: Any, kind: str, info: Any) -> None:
            rid = self.llm.enqueue([{"prompt_token_ids": ids}], params, lora_request=lora, use_tqdm=False)[0]
            # enqueue returns vLLM's internal id ('<id>-<random suffix>'); outputs carry the id it was given
            pending[rid.split("-", 1)[0]] = (i, kind, info)

        def add_full(i: int, req: ChoiceRequest, lora: Any) -> None:
            partial[i] = {}
            for j, c in enumerate(req.continuations):
                ctx, cont = pair_ids[(req.context, c)]
                add(i, ctx + cont, full, lora, "full", (j, len(ctx), ctx + cont))

        # Tokenized and queued block by block: vLLM's engine core (its own process) starts on the first
        # block while later ones are tokenized, so the GPU does not wait for 80k prompts to be encoded.
        for start in range(0, len(requests), QUEUE_BLOCK):
            block = list(enumerate(requests[start:start + QUEUE_BLOCK], start))
            texts = list(dict.fromkeys(r.prompt for _, r in block if isinstance(r, GenerateRequest)
                                       and r.prompt not in gen_ids))
            gen_ids.update(zip(texts, encode_texts(self.tokenizer, texts)))
            pairs = list(dict.fromkeys((r.context, c) for _, r in block if isinstance(r, ChoiceRequest)
                                       for c in r.continuations if (r.context, c) not in pair_ids))
            pair_ids.update(zip(pairs, encode_pairs(self.tokenizer, pairs)))
            failed: list[tuple[int, Failed]] = []
            for i, req in block:
                try:
                    lora = self._lora(req.adapter)
                    if isinstance(req, GenerateRequest):
                        params = SamplingParams(temperature=0.0, max_tokens=req.max_new_tokens,
                                                stop=list(req.stop) or None)
                        add(i, gen_ids[req.prompt], params, lora, "gen", None)
                    else:
                        encoded = [pair_ids[(req.context, c)] for c in req.continuations]
                        if one_prefill and encoded[0][0] and all(len(cont) == 1 for _, cont in encoded):
                            add(i, encoded[0][0], next_token, lora, "next", [cont[0] for _, cont in encoded])
                        else:
                            add_full(i, req, lora)
                except Exception as err:  # one bad request becomes one error row, never a retry loop
                    failed.append((i, Failed(f"{type(err).__name__}: {err}")))
            yield from failed

        engine = self.llm.llm_engine
        last = time.perf_counter()
        while engine.has_unfinished_requests():
            for out in engine.step():
                if not out.finished or out.request_id not in pending:
                    continue
                i, kind, info = pending.pop(out.request_id)
                now = time.perf_counter()
                if kind == "gen":
                    o = out.outputs[0]
                    yield i, Generation(text=o.text, n_new_tokens=len(o.token_ids), seconds=now - last)
                    last = now
                elif kind == "next":
                    top = out.outputs[0].logprobs[0]  # {token_id: Logprob} of the position after the context
                    if all(t in top for t in info):
                        yield i, Choice(logprobs=[float(top[t].logprob) for t in info], seconds=now - last)
                        last = now
                    else:
                        add_full(i, requests[i], self._lora(requests[i].adapter))
                else:
                    j, start, ids = info
                    per_position = out.prompt_logprobs  # [None, {token_id: Logprob}, ...] one per prompt token
                    partial[i][j] = float(sum(per_position[p][ids[p]].logprob for p in range(start, len(ids))))
                    if len(partial[i]) == len(requests[i].continuations):
                        got = partial.pop(i)
                        yield i, Choice(logprobs=[got[j] for j in range(len(got))], seconds=now - last)
                        last = now

    # ---------------------------------------------------------------------------- the `Engine` protocol

    def generate(self, prompts: list[str], *, max_new_tokens: int, stop: list[str]) -> list[Generation]:
        reqs = [GenerateRequest(p, max_new_tokens, tuple(stop), self.default_adapter) for p in prompts]
        return self._ordered(reqs)

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        """Each pair scored alone, as a choice of one continuation."""
        reqs = [ChoiceRequest(c, (x,), self.default_adapter) for c, x in requests]
        return [r.logprobs[0] for r in self._ordered(reqs)]

    def choices(self, requests: Sequence[ChoiceRequest], *, one_prefill: bool = True) -> list[Choice]:
        return self._ordered(list(requests), one_prefill=one_prefill)

    def _ordered(self, reqs: list, **kwargs: Any) -> list:
        out: list = [None] * len(reqs)
        for i, result in self.stream(reqs, **kwargs):
            if isinstance(result, Failed):
                raise UserError(f"vLLM could not run a request ({result.error}); raise eval.vllm.max_model_len "
                                "if the prompt is too long")
            out[i] = result
        return out
