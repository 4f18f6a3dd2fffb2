"""The HF engine: batching must not change results (left padding), stops cut text, log-likelihood is exact."""
from __future__ import annotations

import math

import pytest

from tradeoff_ray.infer.engine import Engine, encode_pair

PROMPTS = [
    "SELECT count(*) FROM",
    "The following are multiple choice questions (with answers) about high school physics.\nAnswer:",
    "abc",
    "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, age INTEGER",
    "Question: How many singers are there?",
    "You are a careful data analyst.",
]


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    from tradeoff_ray.infer.hf_engine import HfEngine

    return HfEngine(str(tiny_model_dir), batch_size=4), HfEngine(str(tiny_model_dir), batch_size=1)


def test_is_an_engine(engines):
    assert isinstance(engines[0], Engine)
    assert "float32" in engines[0].describe() and "cpu" in engines[0].describe()


def test_batched_generation_equals_one_by_one(engines):
    batched, single = engines
    a = batched.generate(PROMPTS, max_new_tokens=12, stop=[])
    b = single.generate(PROMPTS, max_new_tokens=12, stop=[])
    assert [g.text for g in a] == [g.text for g in b]
    assert all(0 < g.n_new_tokens <= 12 for g in a)
    # order is the caller's, not the length-sorted batch order
    alone = single.generate([PROMPTS[2]], max_new_tokens=12, stop=[])[0].text
    assert a[2].text == alone


def test_stop_string_cuts_the_text(engines):
    engine = engines[0]
    free = engine.generate(PROMPTS, max_new_tokens=16, stop=[])
    row = max(range(len(PROMPTS)), key=lambda i: len(set(free[i].text)))  # the most varied completion
    text = free[row].text
    stop = text[len(text) // 2:len(text) // 2 + 2]
    stopped = engine.generate([PROMPTS[row]], max_new_tokens=16, stop=[stop])[0]
    assert stop not in stopped.text
    assert stopped.text == text[:text.find(stop)]
    assert stopped.n_new_tokens <= free[row].n_new_tokens


def _reference_loglikelihood(engine, context: str, continuation: str) -> float:
    """Unpadded, unbatched forward pass over context+continuation: the definition being implemented."""
    import torch

    ctx, cont = encode_pair(engine.tokenizer, context, continuation)
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logprobs = torch.log_softmax(engine.model(ids).logits[0].float(), dim=-1)
    return sum(float(logprobs[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def test_loglikelihood_matches_the_definition(engines):
    engine = engines[0]
    requests = [(p, c) for p in PROMPTS for c in (" A", " B", " singer table", " SELECT name FROM singer")]
    got = engine.loglikelihood(requests)
    for (ctx, cont), value in zip(requests, got):
        assert value == pytest.approx(_reference_loglikelihood(engine, ctx, cont), abs=1e-4)
        assert value < 0


def test_one_token_fast_path_equals_full_scoring(engines):
    engine = engines[0]
    letters = (" A", " B", " C", " D")
    requests = [(p, c) for p in PROMPTS for c in letters]
    n_tokens = {c: len(encode_pair(engine.tokenizer, PROMPTS[0], c)[1]) for c in letters}
    # the tiny tokenizer has " A", " B", " D" as one token and " C" as two: both paths run in one call
    assert sorted(n_tokens.values()) == [1, 1, 1, 2], n_tokens
    fast = engine.loglikelihood(requests)
    full = engine.loglikelihood_full(requests)
    assert fast == pytest.approx(full, abs=1e-4)
    assert all(math.isfinite(x) for x in fast)


def test_batched_loglikelihood_equals_one_by_one(engines):
    batched, single = engines
    requests = [(p, c) for p in PROMPTS for c in (" A", " D", " singer table")]
    assert batched.loglikelihood(requests) == pytest.approx(single.loglikelihood(requests), abs=1e-4)


SHARED = ("You are a careful data analyst. Given a SQLite database schema and a question, reply with one query.\n"
          "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, age INTEGER, country TEXT);\nQuestion: ")
SHARED_PROMPTS = [SHARED + q for q in ("How many singers are there?", "abc", "Which singers are older than 20?",
                                       "List the names ORDER BY name LIMIT 3", "count")]


def test_shared_prefix_reuse_changes_nothing(tiny_model_dir):
    """Running a batch's common prefix once (KV cache repeated per row) gives the same answers and scores."""
    from tradeoff_ray.infer.hf_engine import MIN_SHARED_PREFIX, HfEngine

    reuse = HfEngine(str(tiny_model_dir), batch_size=8, reuse_prefix=True)
    plain = HfEngine(str(tiny_model_dir), batch_size=8, reuse_prefix=False)
    alone = HfEngine(str(tiny_model_dir), batch_size=1, reuse_prefix=False)
    seqs = [reuse.tokenizer(p).input_ids for p in SHARED_PROMPTS]
    assert reuse._shared_prefix(seqs) >= MIN_SHARED_PREFIX  # the reuse path really runs
    gens = [[g.text for g in e.generate(SHARED_PROMPTS, max_new_tokens=10, stop=[])] for e in (reuse, plain, alone)]
    assert gens[0] == gens[1] == gens[2]
    requests = [(p, c) for p in SHARED_PROMPTS for c in (" A", " B", " D")]
    assert reuse.loglikelihood(requests) == pytest.approx(alone.loglikelihood(requests), abs=1e-4)
    assert reuse.loglikelihood(requests) == pytest.approx(
        [_reference_loglikelihood(alone, c, x) for c, x in requests], abs=1e-4)


def test_greedy_loop_that_drops_finished_rows_matches_generate(engines):
    """The CPU loop removes ended rows from the batch: without stops every row gets the text and count that
    `generate` gives; a stop string ends its row early (the text is the free run's text before the stop)
    while the other rows of the batch go on unchanged."""
    from tradeoff_ray.infer.engine import encode_text

    engine = engines[0]
    seqs = [encode_text(engine.tokenizer, p) for p in PROMPTS[:4]]
    free = engine._texts(engine._hf_generate(seqs, 12, []), [])
    assert engine._texts(engine._greedy_dropping_finished(seqs, 12, []), []) == free
    row = max(range(4), key=lambda i: len(set(free[0][i])))  # the most varied completion
    stop = [free[0][row][len(free[0][row]) // 2:len(free[0][row]) // 2 + 2]]
    texts, counts = engine._texts(engine._greedy_dropping_finished(seqs, 12, stop), stop)
    assert texts == [t[:t.find(stop[0])] if stop[0] in t else t for t in free[0]]
    assert counts[row] < 12
    assert [c for i, c in enumerate(counts) if stop[0] not in free[0][i]] == [
        c for i, c in enumerate(free[1]) if stop[0] not in free[0][i]]
