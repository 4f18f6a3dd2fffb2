"""The vLLM engine's own logic (requests built, prompt log-probs summed) against a stand-in `vllm` module.

vLLM itself does not run on this CPU machine; the GPU check is `benchmarks/eval_throughput.py` (c).
The stand-in follows vLLM's documented offline API: `LLM(...)`, `LLM.generate(prompts, params,
use_tqdm=, lora_request=)` returning outputs with `.outputs[0].text/.token_ids` and `.prompt_logprobs`
(None for the first token, then {token_id: Logprob(logprob=...)} per prompt token).
"""
from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass

import pytest

from tradeoff_ray.config import VllmConfig
from tradeoff_ray.errors import UserError


@dataclass
class _Logprob:
    logprob: float


class _Params:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class _LLM:
    last_kwargs: dict = {}

    def __init__(self, **kwargs):
        _LLM.last_kwargs = kwargs
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(kwargs["model"])
        self.calls = []

    def get_tokenizer(self):
        return self.tok

    def generate(self, prompts, params, *, use_tqdm, lora_request):
        self.calls.append((prompts, params, lora_request))
        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            # the log-prob of token t at position j is -(t % 7 + j % 3 + 1): known, position-dependent
            plp = [None] + [{t: _Logprob(-(t % 7 + j % 3 + 1)), t + 1: _Logprob(-50.0)} for j, t in enumerate(ids)
                            if j > 0]
            outs.append(types.SimpleNamespace(prompt_logprobs=plp, outputs=[
                types.SimpleNamespace(text="SELECT 1", token_ids=[5, 6, 7])]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = _LLM, _Params
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, id_, path: types.SimpleNamespace(lora_name=name, lora_int_id=id_, lora_path=path)
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    return vllm


def test_generate_and_loglikelihood_requests(fake_vllm, tiny_model_dir):
    from tradeoff_ray.infer.engine import encode_pair, encode_text
    from tradeoff_ray.infer.vllm_engine import VllmEngine

    engine = VllmEngine(str(tiny_model_dir), cfg=VllmConfig(), for_loglikelihood=True)
    assert _LLM.last_kwargs["dtype"] == "bfloat16" and _LLM.last_kwargs["enable_prefix_caching"] is False
    gens = engine.generate(["SELECT count(*) FROM", "abc"], max_new_tokens=9, stop=[";"])
    prompts, params, lora = engine.llm.calls[-1]
    assert [p["prompt_token_ids"] for p in prompts] == [encode_text(engine.tokenizer, "SELECT count(*) FROM"),
                                                       encode_text(engine.tokenizer, "abc")]
    assert (params.temperature, params.max_tokens, params.stop, lora) == (0.0, 9, [";"], None)
    assert gens[0].text == "SELECT 1" and gens[0].n_new_tokens == 3

    requests = [("Question: How many singers?\nAnswer:", " A"), ("abc", " singer table")]
    got = engine.loglikelihood(requests)
    _, params, _ = engine.llm.calls[-1]
    assert params.prompt_logprobs == 1 and params.max_tokens == 1
    for (ctx_text, cont_text), value in zip(requests, got):
        ctx, cont = encode_pair(engine.tokenizer, ctx_text, cont_text)
        ids = ctx + cont
        expected = sum(-(ids[j] % 7 + j % 3 + 1) for j in range(len(ctx), len(ids)))
        assert value == pytest.approx(expected) and math.isfinite(value)


def test_unmerged_lora_checks_rank(fake_vllm, tiny_model_dir):
    from tradeoff_ray.infer.vllm_engine import VllmEngine

    with pytest.raises(UserError, match="max_lora_rank=128"):
        VllmEngine(str(tiny_model_dir), cfg=VllmConfig(max_lora_rank=64), lora_path="/x", lora_rank=128)
    engine = VllmEngine(str(tiny_model_dir), cfg=VllmConfig(max_lora_rank=64), lora_path="/x", lora_rank=16)
    assert _LLM.last_kwargs["enable_lora"] is True and _LLM.last_kwargs["max_lora_rank"] == 64
    engine.generate(["abc"], max_new_tokens=4, stop=[])
    assert engine.llm.calls[-1][2].lora_path == "/x"
    assert "unmerged LoRA /x" in engine.describe()
