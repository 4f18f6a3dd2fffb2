"""The vLLM engine's own logic (requests queued, results read back) against a stand-in `vllm` module.

vLLM itself does not run on this CPU machine; the GPU checks are `scripts/vllm_parity.py` and
`benchmarks/eval_throughput.py --engine-limit`. The stand-in follows vLLM 0.26's offline API:
`LLM(...)`, `LLM.enqueue([prompt], params, lora_request=, use_tqdm=)` returning request ids,
`LLM.llm_engine.has_unfinished_requests()` / `.step()` returning finished outputs (here in scrambled
order) with `.outputs[0].text/.token_ids/.logprobs` and `.prompt_logprobs` (None for the first token,
then {token_id: Logprob(logprob=...)} per prompt token).
"""
from __future__ import annotations

import itertools
import sys
import types
from dataclasses import dataclass

import pytest

from tradeoff_ray.config import VllmConfig
from tradeoff_ray.errors import UserError
from tradeoff_ray.infer.engine import Choice, ChoiceRequest, Failed, Generation, GenerateRequest, encode_pair


@dataclass
class _Logprob:
    logprob: float


class _Params:
    def __init__(self, **kwargs):
        self.__dict__.update({"logprobs": None, "prompt_logprobs": None, **kwargs})


def _lp(token: int, position: int, lora) -> float:
    """The stand-in model's log-prob of `token` at `position` (known, position- and adapter-dependent)."""
    return -(token % 7 + position % 3 + 1) - (0.5 * lora.lora_int_id if lora is not None else 0.0)


class _LLM:
    last: "_LLM | None" = None
    max_prompt = 10_000
    top_tokens: set | None = None  # tokens in the next-token top-k (None = every token asked about)

    def __init__(self, **kwargs):
        from transformers import AutoTokenizer

        _LLM.last = self
        self.kwargs = kwargs
        self.tok = AutoTokenizer.from_pretrained(kwargs["model"])
        self.queue, self.seen = [], []
        self.ids = itertools.count()
        self.llm_engine = self

    def get_tokenizer(self):
        return self.tok

    def enqueue(self, prompts, params, *, lora_request, use_tqdm):
        assert len(prompts) == 1 and use_tqdm is False
        ids = prompts[0]["prompt_token_ids"]
        if len(ids) > self.max_prompt:
            raise ValueError(f"prompt of {len(ids)} tokens is longer than the maximum model length")
        rid = str(next(self.ids))
        self.queue.append((rid, ids, params, lora_request))
        self.seen.append((ids, params, lora_request))
        return [f"{rid}-9f86d081"]  # vLLM returns its internal id; outputs carry the external one

    def has_unfinished_requests(self):
        return bool(self.queue)

    def step(self):
        done, self.queue = self.queue[-3:][::-1], self.queue[:-3]  # finish out of order
        outs = []
        for rid, ids, params, lora in done:
            plp = None
            if params.prompt_logprobs:
                plp = [None] + [{t: _Logprob(_lp(t, j, lora))} for j, t in enumerate(ids) if j > 0]
            logprobs = None
            if params.logprobs:
                top = self.top_tokens if self.top_tokens is not None else set(range(self.tok.vocab_size))
                logprobs = [{t: _Logprob(_lp(t, len(ids), lora)) for t in top}]
            outs.append(types.SimpleNamespace(request_id=rid, finished=True, prompt_logprobs=plp, outputs=[
                types.SimpleNamespace(text=f"SELECT {len(ids)}", token_ids=[5, 6, 7], logprobs=logprobs)]))
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
    monkeypatch.setattr(_LLM, "top_tokens", None)
    return vllm


def _engine(tiny_model_dir, **kwargs):
    from tradeoff_ray.infer.vllm_engine import AdapterRef, VllmEngine

    adapters = [AdapterRef("a1", "/adapters/a1", 8), AdapterRef("a2", "/adapters/a2", 16)]
    return VllmEngine(str(tiny_model_dir), cfg=VllmConfig(**kwargs), adapters=adapters)


def test_one_engine_serves_base_and_adapters(fake_vllm, tiny_model_dir):
    from tradeoff_ray.infer.engine import encode_text

    engine = _engine(tiny_model_dir)
    kw = _LLM.last.kwargs
    assert (kw["enable_lora"], kw["max_loras"], kw["max_lora_rank"]) == (True, 2, 16)
    assert kw["enable_prefix_caching"] is True and kw["enforce_eager"] is False and kw["dtype"] == "bfloat16"
    reqs = [GenerateRequest("SELECT count(*) FROM", 9, (";",), None), GenerateRequest("abc", 4, (), "a2")]
    got = dict(engine.stream(reqs))
    assert set(got) == {0, 1} and all(isinstance(g, Generation) and g.n_new_tokens == 3 for g in got.values())
    (ids0, p0, l0), (ids1, p1, l1) = _LLM.last.seen
    assert ids0 == encode_text(engine.tokenizer, "SELECT count(*) FROM") and l0 is None
    assert (p0.temperature, p0.max_tokens, p0.stop) == (0.0, 9, [";"]) and p1.stop is None
    assert l1.lora_path == "/adapters/a2" and got[1].text == f"SELECT {len(ids1)}"


def test_one_prefill_choice_reads_the_same_numbers_as_four_prefills(fake_vllm, tiny_model_dir):
    engine = _engine(tiny_model_dir)
    reqs = [ChoiceRequest(f"Question {i}: which?\nAnswer:", ("A", "B", "C", "D"), a)
            for i, a in enumerate([None, "a1", "a2"])]
    one = engine.choices(reqs)
    assert len(_LLM.last.seen) == 3 and all(p.logprobs == 20 for _, p, _ in _LLM.last.seen)
    four = engine.choices(reqs, one_prefill=False)
    assert len(_LLM.last.seen) == 3 + 12 and all(p.prompt_logprobs == 1 for _, p, _ in _LLM.last.seen[3:])
    for req, a, b in zip(reqs, one, four):
        assert isinstance(a, Choice) and a.logprobs == pytest.approx(b.logprobs)
        lora = engine.loras.get(req.adapter)
        ctx, cont = encode_pair(engine.tokenizer, req.context, "C")
        assert a.logprobs[2] == pytest.approx(_lp(cont[0], len(ctx), lora))
    assert one[1].logprobs != pytest.approx(one[0].logprobs)  # the adapter is applied per request


def test_a_letter_outside_the_top_k_falls_back_to_prompt_logprobs(fake_vllm, tiny_model_dir):
    engine = _engine(tiny_model_dir)
    req = ChoiceRequest("Question: which?\nAnswer:", ("A", "B", "C", "D"), None)
    letters = [encode_pair(engine.tokenizer, req.context, c)[1][0] for c in req.continuations]
    _LLM.top_tokens = set(letters[:3])  # 'D' is not among the top log-probs
    (choice,) = engine.choices([req])
    assert len(_LLM.last.seen) == 1 + 4
    ctx, _ = encode_pair(engine.tokenizer, req.context, "A")
    assert choice.logprobs == pytest.approx([_lp(t, len(ctx), None) for t in letters])


def test_a_refused_request_fails_alone(fake_vllm, tiny_model_dir):
    engine = _engine(tiny_model_dir)
    _LLM.max_prompt = 8
    try:
        reqs = [GenerateRequest("x " * 40, 4, (), None), GenerateRequest("abc", 4, (), None)]
        got = dict(engine.stream(reqs))
        with pytest.raises(UserError, match="max_model_len"):
            engine.generate(["x " * 40], max_new_tokens=4, stop=[])
    finally:
        _LLM.max_prompt = 10_000
    assert isinstance(got[0], Failed) and "longer than the maximum" in got[0].error
    assert isinstance(got[1], Generation)


def test_lora_rank_slots_and_limit(fake_vllm, tiny_model_dir):
    from tradeoff_ray.infer.vllm_engine import AdapterRef, VllmEngine, lora_rank_slot

    assert [lora_rank_slot(r, limit=512) for r in (1, 2, 8, 9, 33, 300)] == [1, 8, 8, 16, 64, 320]
    with pytest.raises(UserError, match="max_lora_rank=128"):
        VllmEngine(str(tiny_model_dir), cfg=VllmConfig(max_lora_rank=64), adapters=[AdapterRef("x", "/x", 128)])
    with pytest.raises(ValueError, match=r"\['nope'\] are not served"):
        list(_engine(tiny_model_dir).stream([GenerateRequest("abc", 4, (), "nope")]))


def test_requests_are_queued_block_by_block_with_the_same_results(fake_vllm, tiny_model_dir, monkeypatch):
    """The engine gets the first block before later blocks are tokenized (the GPU starts at once), and
    blocking changes no result."""
    from tradeoff_ray.infer import vllm_engine

    reqs = ([GenerateRequest(f"SELECT {i} FROM t", 5, (), "a1" if i % 2 else None) for i in range(5)]
            + [ChoiceRequest(f"Question {i}?\nAnswer:", ("A", "B", "C", "D"), None) for i in range(5)])
    whole = dict(_engine(tiny_model_dir).stream(reqs))
    monkeypatch.setattr(vllm_engine, "QUEUE_BLOCK", 3)
    engine = _engine(tiny_model_dir)
    calls: list[str] = []
    real = vllm_engine.encode_texts
    monkeypatch.setattr(vllm_engine, "encode_texts", lambda tok, texts: calls.append("tokenize") or real(tok, texts))
    enqueue = _LLM.last.enqueue
    monkeypatch.setattr(_LLM.last, "enqueue", lambda *a, **k: calls.append("queue") or enqueue(*a, **k))
    blocked = dict(engine.stream(reqs))
    assert calls.index("queue") < len(calls) - 1 - calls[::-1].index("tokenize")  # queued before the last tokenize
    assert blocked.keys() == whole.keys()
    for i in whole:
        if isinstance(whole[i], Choice):
            assert blocked[i].logprobs == pytest.approx(whole[i].logprobs)
        else:
            assert (blocked[i].text, blocked[i].n_new_tokens) == (whole[i].text, whole[i].n_new_tokens)
