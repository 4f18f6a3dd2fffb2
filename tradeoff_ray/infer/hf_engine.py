"""`HfEngine`: the transformers implementation of `Engine` (any machine; the only one on CPU).

Throughput comes from the usual four things, each of which the source studies' loop lacked:
batching, left padding (every row's next token is at the last position), the KV cache (one token
per step instead of the whole sequence), and `torch.inference_mode` — plus shared-prefix reuse:
prompts are batched in token order, so a batch's prompts share a long prefix (Spider: system
prompt + schema of one database; k-shot MMLU: header + exemplars of one subject), which is run
once and its KV cache repeated over the batch; only the rest (the question) is run per row. On a
CPU, where the prompt's forward pass is most of the cost, that is several times faster. On CPU,
greedy decoding is the engine's own loop, which drops a row from the batch once it has ended
(transformers' `generate` decodes finished rows until the batch's longest one ends). fp32 on CPU
(about 4x faster than bf16 there), bf16 on GPU.

Log-likelihood: when a continuation is one token (" A".." D" for MMLU with most tokenizers) the
context is run once and the next-token log-probs of all its continuations are read off the last
position — one forward pass per prompt, batched. Otherwise context+continuation is run and the
continuation tokens' log-probs are summed. Padding is on the left (between the shared prefix and a
row's own tokens when a prefix is reused) with position ids counted over real tokens only, so a
row's numbers do not depend on what it was batched with.
"""
from __future__ import annotations

import inspect
import time
from typing import Any, Sequence

from tradeoff_ray.infer.engine import Generation, encode_pair, encode_text, truncate_at_stop
from tradeoff_ray.models import resolve_dtype

MIN_SHARED_PREFIX = 16  # tokens; a shorter common prefix is not worth a separate forward pass


def resolve_device_dtype(dtype: str, device: str | None = None) -> tuple[str, Any]:
    """('cuda' | 'cpu', torch dtype): the GPU when there is one, and `models.resolve_dtype` for it."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return device, resolve_dtype(dtype, on_gpu=device.startswith("cuda"))


class HfEngine:
    """Greedy generation and log-likelihood scoring with a transformers causal LM."""

    def __init__(self, model_path: str, *, dtype: str = "auto", device: str | None = None, batch_size: int = 32,
                 threads: int | None = None, revision: str | None = None, model: Any = None,
                 tokenizer: Any = None, reuse_prefix: bool = True) -> None:
        """Load `model_path` (or use the given `model`/`tokenizer`, e.g. an unmerged PeftModel in tests).

        `threads`: torch intra-op threads on CPU (None = keep torch's default, which is the cores
        this process may use; Ray actors pass their CPU reservation so they do not oversubscribe).
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device, self.dtype = resolve_device_dtype(dtype, device)
        if threads and self.device == "cpu":
            torch.set_num_threads(max(1, int(threads)))
        self.model_path = model_path
        self.batch_size = batch_size
        # Prefix reuse saves prefill compute, which is what costs on CPU; on a GPU the decode steps cost
        # (launch-bound), and prefix groups (one per database) would multiply the number of batches.
        self.reuse_prefix = reuse_prefix and self.device == "cpu"
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_path, revision=revision)
        if self.tokenizer.pad_token_id is None:  # many causal LMs ship without one; eos is the convention
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model if model is not None else AutoModelForCausalLM.from_pretrained(
            model_path, dtype=self.dtype, revision=revision)
        self.model.to(self.device).eval()
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_ids = eos

    def describe(self) -> str:
        import torch

        threads = f", {torch.get_num_threads()} threads" if self.device == "cpu" else ""
        dtype = str(self.dtype).removeprefix("torch.")
        prefix = ", shared-prefix reuse" if self.reuse_prefix else ""
        return f"hf transformers ({self.model_path}, {self.device}, {dtype}{threads}, batch {self.batch_size}{prefix})"

    def _batches(self, seqs: list[list[int]]) -> list[list[int]]:
        """Index batches. With prefix reuse: runs of prompts (in token order) that share most of their
        tokens form their own batches (a database's questions; a subject's k-shot questions); prompts
        that share little with their neighbours are pooled. Pooled or without reuse: longest first
        (similar lengths, little padding)."""
        def by_length(idx):
            return sorted(idx, key=lambda i: -len(seqs[i]))

        def chunk(idx):
            return [idx[s:s + self.batch_size] for s in range(0, len(idx), self.batch_size)]

        if not self.reuse_prefix or len(seqs) < 2:
            return chunk(by_length(range(len(seqs))))
        order = sorted(range(len(seqs)), key=lambda i: seqs[i])
        runs, current = [], [order[0]]
        for prev, i in zip(order, order[1:]):
            shared = _common_prefix(seqs[prev], seqs[i])
            if shared >= MIN_SHARED_PREFIX and 2 * shared >= min(len(seqs[prev]), len(seqs[i])):
                current.append(i)
            else:
                runs.append(current)
                current = [i]
        runs.append(current)
        batches = [b for run in runs if len(run) > 1 for b in chunk(run)]
        pooled = [i for run in runs if len(run) == 1 for i in run]
        return batches + chunk(by_length(pooled))

    def _shared_prefix(self, seqs: list[list[int]]) -> int:
        """Length of the prefix all rows share, leaving each row at least one token of its own."""
        if not self.reuse_prefix or not seqs:
            return 0
        n = min(len(s) for s in seqs) - 1
        for s in seqs[1:]:
            n = min(n, _common_prefix(seqs[0], s))
        return n if n >= MIN_SHARED_PREFIX else 0

    def _prefix_inputs(self, seqs: list[list[int]]):
        """(input_ids, attention_mask, cache or None, prefix length) for a batch: the shared prefix run once,
        its KV cache repeated per row, each row's own tokens left-padded after it."""
        import torch

        p = self._shared_prefix(seqs)
        if not p:
            ids, mask = self._left_pad(seqs)
            return ids, mask, None, 0
        prefix = torch.tensor([seqs[0][:p]], dtype=torch.long, device=self.device)
        kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
        with torch.inference_mode():
            cache = self.model(input_ids=prefix, use_cache=True, **kwargs).past_key_values
        if not hasattr(cache, "batch_repeat_interleave"):  # a cache type that cannot be shared: run rows whole
            ids, mask = self._left_pad(seqs)
            return ids, mask, None, 0
        cache.batch_repeat_interleave(len(seqs))
        ids, mask = self._left_pad([s[p:] for s in seqs])
        ids = torch.cat([prefix.expand(len(seqs), p), ids], dim=1)
        mask = torch.cat([torch.ones((len(seqs), p), dtype=mask.dtype, device=mask.device), mask], dim=1)
        return ids, mask, cache, p

    # ---------------------------------------------------------------------------------------- generation

    def generate(self, prompts: list[str], *, max_new_tokens: int, stop: list[str]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(prompts)
        encoded = [encode_text(self.tokenizer, p) for p in prompts]
        for idx in self._batches(encoded):
            t0 = time.perf_counter()
            texts, counts = self._generate_batch([encoded[i] for i in idx], max_new_tokens, list(stop))
            share = (time.perf_counter() - t0) / len(idx)
            for i, text, n in zip(idx, texts, counts):
                out[i] = Generation(text=text, n_new_tokens=n, seconds=share)
        return out  # type: ignore[return-value]

    def _generate_batch(self, seqs: list[list[int]], max_new_tokens: int,
                        stop: list[str]) -> tuple[list[str], list[int]]:
        new = (self._greedy_dropping_finished(seqs, max_new_tokens, stop) if self.device == "cpu"
               else self._hf_generate(seqs, max_new_tokens, stop))
        return self._texts(new, stop)

    def _texts(self, new: list[list[int]], stop: list[str]) -> tuple[list[str], list[int]]:
        """(text, tokens generated) per row: up to and including an end-of-turn token, cut at a stop string."""
        texts, counts = [], []
        ends = set(self.eos_ids)
        for row in new:
            n = len(row)
            for j, tok in enumerate(row):
                if tok in ends:
                    n = j + 1  # the end-of-turn token was generated
                    break
                if tok == self.tokenizer.pad_token_id:
                    n = j  # padding after a stop string finished this row
                    break
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            texts.append(truncate_at_stop(text, stop))
            counts.append(n)
        return texts, counts

    def _hf_generate(self, seqs: list[list[int]], max_new_tokens: int, stop: list[str]) -> list[list[int]]:
        """transformers' `generate` (GPU): finished rows ride along padded, which costs little there."""
        import torch
        from transformers import GenerationConfig

        input_ids, attention, cache, _ = self._prefix_inputs(seqs)
        gen_cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
                                   eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
                                   stop_strings=stop or None)
        with torch.inference_mode():
            seq = self.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=gen_cfg,
                                      past_key_values=cache, tokenizer=self.tokenizer if stop else None)
        return seq[:, input_ids.shape[1]:].tolist()

    def _greedy_dropping_finished(self, seqs: list[list[int]], max_new_tokens: int,
                                  stop: list[str]) -> list[list[int]]:
        """Greedy decoding that removes a row from the batch (and its KV cache) once it has ended.

        On a CPU every decode step costs in proportion to the rows in it; `generate` keeps finished rows
        until the longest one ends, so a batch of SQL answers of 20 to 128 tokens paid for 128 steps of
        every row. A row ends at an end-of-turn token, at a stop string, or at the budget — the same
        tokens `generate` produces (tests compare them)."""
        import torch

        input_ids, attention, cache, p = self._prefix_inputs(seqs)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        ids, pos = input_ids[:, p:], positions[:, p:]
        ends = set(self.eos_ids)
        out: list[list[int]] = [[] for _ in seqs]
        live = list(range(len(seqs)))  # original row of each batch row still decoding
        kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
        with torch.inference_mode():
            for _ in range(max_new_tokens):
                res = self.model(input_ids=ids, attention_mask=attention, position_ids=pos, past_key_values=cache,
                                 use_cache=True, **kwargs)
                cache = res.past_key_values
                tokens = res.logits[:, -1, :].argmax(-1).tolist()
                keep = []
                for j, tok in enumerate(tokens):
                    row = out[live[j]]
                    row.append(tok)
                    if tok in ends or (stop and _ends_with_stop(self.tokenizer, row, stop)):
                        continue
                    keep.append(j)
                if not keep:
                    break
                if len(keep) < len(live):
                    index = torch.tensor(keep, device=attention.device)
                    cache.batch_select_indices(index)
                    attention, pos = attention[index], pos[index]
                    live = [live[j] for j in keep]
                    tokens = [tokens[j] for j in keep]
                ids = torch.tensor([[t] for t in tokens], dtype=torch.long, device=attention.device)
                pos = pos[:, -1:] + 1
                attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        return out

    # ---------------------------------------------------------------------------------------- log-likelihood

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        pairs = [encode_pair(self.tokenizer, c, x) for c, x in requests]
        out = [0.0] * len(requests)
        single: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        multi: list[int] = []
        for i, (ctx, cont) in enumerate(pairs):
            if len(cont) == 1 and ctx:
                single.setdefault(tuple(ctx), []).append((i, cont[0]))
            else:
                multi.append(i)
        if single:
            self._score_next_token(single, out)
        if multi:
            self._score_full(pairs, multi, out)
        return out

    def loglikelihood_full(self, requests: list[tuple[str, str]]) -> list[float]:
        """Always the context+continuation path (tests check the one-token path against it)."""
        pairs = [encode_pair(self.tokenizer, c, x) for c, x in requests]
        out = [0.0] * len(requests)
        self._score_full(pairs, list(range(len(pairs))), out)
        return out

    def _score_next_token(self, groups: dict[tuple[int, ...], list[tuple[int, int]]], out: list[float]) -> None:
        contexts = list(groups)
        for idx in self._batches([list(c) for c in contexts]):
            chunk = [contexts[i] for i in idx]
            logprobs = self._next_token_logprobs([list(c) for c in chunk])
            for row, ctx in enumerate(chunk):
                for i, tok in groups[ctx]:
                    out[i] = float(logprobs[row, -1, tok])

    def _score_full(self, pairs: list[tuple[list[int], list[int]]], which: list[int], out: list[float]) -> None:
        bos = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.eos_ids[0]
        seqs = {i: ((pairs[i][0] or [bos]) + pairs[i][1]) for i in which}
        order = sorted(which, key=lambda i: -len(seqs[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            keep = max(len(pairs[i][1]) for i in idx)
            logprobs = self._last_logprobs([seqs[i][:-1] for i in idx], keep=keep)
            for row, i in enumerate(idx):
                cont = pairs[i][1]
                lp = logprobs[row, keep - len(cont):, :]
                out[i] = float(sum(lp[j, t] for j, t in enumerate(cont)))

    def _next_token_logprobs(self, seqs: list[list[int]]):
        """Log-softmax (fp32) of the next token after each sequence, reusing a shared prefix: [rows, 1, vocab]."""
        import torch

        input_ids, attention, cache, p = self._prefix_inputs(seqs)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)[:, p:]
        kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids[:, p:], attention_mask=attention, position_ids=positions,
                                past_key_values=cache, use_cache=cache is not None, **kwargs).logits
        return torch.log_softmax(logits[:, -1:, :].float(), dim=-1).cpu()

    def _last_logprobs(self, seqs: list[list[int]], *, keep: int):
        """Log-softmax (fp32) over the vocabulary at the last `keep` positions of each left-padded row."""
        import torch

        input_ids, attention = self._left_pad(seqs)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        kwargs = {"logits_to_keep": keep} if self._keeps_logits else {}
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                                use_cache=False, **kwargs).logits
        return torch.log_softmax(logits[:, -keep:, :].float(), dim=-1).cpu()

    def _left_pad(self, seqs: Sequence[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if s:
                ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
                mask[r, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)


def _ends_with_stop(tokenizer: Any, row: list[int], stop: list[str]) -> bool:
    """Whether the decoded row holds a stop string (decoding the last few tokens is enough: the stop string
    must end in the newest one, earlier tokens were checked before)."""
    tail = tokenizer.decode(row[-(max(len(s) for s in stop) + 1):], skip_special_tokens=True)
    return any(s and s in tail for s in stop)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
