"""The one model interface every evaluation stage talks to, and the choice of engine behind it.

Two engines implement `Engine`: `HfEngine` (transformers; CPU and GPU) and `VllmEngine` (vLLM; GPU).
Stages only call `generate` (greedy, with stop strings) and `loglikelihood` (sum of log-probs of a
continuation given a context), so SQL generation and MMLU scoring are the same code on a laptop and
on a GPU cluster.

Whitespace convention (as lm-evaluation-harness): the word-boundary space belongs to the
continuation, e.g. `("...Answer:", " A")`. Both engines tokenize a pair the same way
(`encode_pair`): the context alone, and context+continuation whole, the continuation's tokens being
what the whole adds after the context's tokens — so a tokenizer that merges across the boundary
is still scored on the text it would really see.

This module imports neither torch nor vLLM (they are loaded only by the engine that needs them).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

from tradeoff_ray.config import EvalConfig


@dataclass(frozen=True)
class Generation:
    """One greedy completion. `seconds` is the batch's wall time shared equally among its prompts."""

    text: str
    n_new_tokens: int
    seconds: float


@dataclass(frozen=True)
class GenerateRequest:
    """A greedy completion of `prompt` by the base model (`adapter` None) or a registered adapter."""

    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    adapter: str | None = None


@dataclass(frozen=True)
class ChoiceRequest:
    """Log-likelihood of each continuation given one context (an MMLU question and ' A'..' D')."""

    context: str
    continuations: tuple[str, ...]
    adapter: str | None = None


@dataclass(frozen=True)
class Choice:
    """Continuation log-probs of one `ChoiceRequest`; `seconds` is the engine time it is charged with."""

    logprobs: list[float]
    seconds: float


@dataclass(frozen=True)
class Failed:
    """A request the engine refused or could not run (e.g. longer than the model's context): the row
    becomes an error row and the other requests go on."""

    error: str
    seconds: float = 0.0


@runtime_checkable
class Engine(Protocol):
    """What evaluation needs from a model, whatever runs it."""

    def generate(self, prompts: list[str], *, max_new_tokens: int, stop: list[str]) -> list[Generation]:
        """Greedy completions, in the order of `prompts`; text cut before the first stop string."""
        ...

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        """Sum of log-probabilities of each continuation given its context (same order)."""
        ...

    def describe(self) -> str:
        """One line: engine, model, device, dtype (printed in summaries and saved with results)."""
        ...


@runtime_checkable
class StreamingEngine(Protocol):
    """An engine that takes every request of a stage at once (all labels and tasks) and schedules them
    itself, handing back each result as it finishes (vLLM's continuous batching)."""

    def stream(self, requests: Sequence[GenerateRequest | ChoiceRequest]) -> Iterator[
            tuple[int, Generation | Choice | Failed]]:
        """(index into `requests`, result) pairs in completion order, one per request."""
        ...

    def describe(self) -> str:
        ...


# ---------------------------------------------------------------------------------------------- engine choice

def _vllm_importable() -> tuple[bool, str]:
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed"
    try:
        import vllm  # noqa: F401  (import can fail on CPU-only or mismatched torch builds)
    except Exception as err:  # pragma: no cover - depends on the machine
        return False, f"vllm is installed but does not import ({type(err).__name__}: {err})"
    return True, "vllm imports"


def gpu_present() -> tuple[bool, str]:
    try:
        import torch

        if torch.cuda.is_available():
            return True, f"CUDA GPU visible here ({torch.cuda.get_device_name(0)})"
    except Exception:  # pragma: no cover
        pass
    try:  # a CPU-only driver of a GPU cluster: look at what Ray can schedule
        import ray

        if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0:
            return True, f"the Ray cluster has {ray.cluster_resources()['GPU']:g} GPU(s)"
    except Exception:  # pragma: no cover
        pass
    return False, "no GPU (torch.cuda.is_available() is False and Ray reports no GPU)"


def select_engine(cfg: EvalConfig, *, gpu: bool | None = None, vllm_ok: bool | None = None) -> tuple[str, str]:
    """('hf' | 'vllm', why). `auto` = vLLM when it imports and a GPU is present, else HF.

    `gpu` / `vllm_ok` override the probes (tests). An explicit `engine: vllm` without a GPU or
    without vLLM is a UserError naming the fix, not a silent fallback.
    """
    from tradeoff_ray.errors import UserError

    if cfg.engine == "hf":
        return "hf", "eval.engine is 'hf'"
    if gpu is None:
        gpu, gpu_why = gpu_present()
    else:
        gpu_why = "GPU present" if gpu else "no GPU"
    if cfg.engine == "vllm":
        if not gpu:
            raise UserError(f"eval.engine is 'vllm' but {gpu_why}; set eval.engine=hf (or auto) on this machine")
        ok, why = _vllm_importable() if vllm_ok is None else (vllm_ok, "vllm imports" if vllm_ok else "no vllm")
        if not ok:
            raise UserError(f"eval.engine is 'vllm' but {why}; `pip install vllm` matching your torch, "
                            "or set eval.engine=hf")
        return "vllm", f"eval.engine is 'vllm' ({gpu_why})"
    if not gpu:
        return "hf", f"auto: {gpu_why}"
    ok, why = _vllm_importable() if vllm_ok is None else (vllm_ok, "vllm imports" if vllm_ok else "no vllm")
    if ok:
        return "vllm", f"auto: {gpu_why} and {why}"
    return "hf", f"auto: {gpu_why} but {why}"


# ------------------------------------------------------------------------------------ shared token helpers

def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt: the tokenizer's special tokens are added unless the text already starts
    with its BOS (chat templates write it themselves), so no prompt ever gets two BOS tokens."""
    bos = getattr(tokenizer, "bos_token", None)
    add = not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=add)["input_ids"])


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) such that ctx + cont is how the tokenizer reads the joined text."""
    ctx = encode_text(tokenizer, context)
    whole = encode_text(tokenizer, context + continuation)
    if whole[: len(ctx)] == ctx and len(whole) > len(ctx):
        return ctx, whole[len(ctx):]
    # the joined text tokenizes differently at the boundary: score the continuation tokenized alone
    cont = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    return ctx, cont


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """`encode_text` of many texts in batched tokenizer calls (a fast tokenizer runs them in parallel)."""
    bos = getattr(tokenizer, "bos_token", None)
    out: list[list[int] | None] = [None] * len(texts)
    for add in (True, False):
        idx = [i for i, t in enumerate(texts) if (not (bos and t.startswith(bos))) == add]
        if idx:
            ids = tokenizer([texts[i] for i in idx], add_special_tokens=add)["input_ids"]
            for i, row in zip(idx, ids):
                out[i] = list(row)
    return out  # type: ignore[return-value]


def encode_pairs(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """`encode_pair` of many (context, continuation) pairs, each distinct text tokenized once."""
    texts = sorted({c for c, _ in pairs} | {c + x for c, x in pairs})
    ids = dict(zip(texts, encode_texts(tokenizer, texts)))
    out = []
    for context, continuation in pairs:
        ctx, whole = ids[context], ids[context + continuation]
        if whole[: len(ctx)] == ctx and len(whole) > len(ctx):
            out.append((ctx, whole[len(ctx):]))
        else:
            out.append((ctx, list(tokenizer(continuation, add_special_tokens=False)["input_ids"])))
    return out


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Text before the earliest stop string (the stop string itself is dropped, as vLLM does)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
