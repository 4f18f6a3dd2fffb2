"""Engine choice and the token conventions both engines share."""
from __future__ import annotations

import pytest

from tradeoff_ray.config import EvalConfig
from tradeoff_ray.errors import UserError
from tradeoff_ray.infer.engine import encode_pair, encode_text, select_engine, truncate_at_stop


def test_auto_picks_vllm_only_with_gpu_and_vllm():
    cfg = EvalConfig(engine="auto")
    assert select_engine(cfg, gpu=True, vllm_ok=True)[0] == "vllm"
    name, why = select_engine(cfg, gpu=True, vllm_ok=False)
    assert name == "hf" and "vllm" in why
    name, why = select_engine(cfg, gpu=False, vllm_ok=True)
    assert name == "hf" and "GPU" in why


def test_auto_on_this_machine_says_why():
    name, why = select_engine(EvalConfig(engine="auto"))
    assert name in {"hf", "vllm"} and why.startswith("auto:")


def test_explicit_vllm_without_gpu_is_a_user_error_naming_the_fix():
    with pytest.raises(UserError, match="eval.engine=hf"):
        select_engine(EvalConfig(engine="vllm"), gpu=False)
    with pytest.raises(UserError, match="pip install vllm"):
        select_engine(EvalConfig(engine="vllm"), gpu=True, vllm_ok=False)
    assert select_engine(EvalConfig(engine="hf"), gpu=True, vllm_ok=True)[0] == "hf"


def test_truncate_at_earliest_stop():
    assert truncate_at_stop("SELECT a FROM t; SELECT b", [";"]) == "SELECT a FROM t"
    assert truncate_at_stop("x<end>y;z", [";", "<end>"]) == "x"
    assert truncate_at_stop("no stop here", [";"]) == "no stop here"
    assert truncate_at_stop("abc", []) == "abc"


def test_continuation_keeps_its_leading_space(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    context = "Question: How many singers are there?\nAnswer:"
    ctx, cont = encode_pair(tok, context, " A")
    assert ctx == encode_text(tok, context)
    assert tok.decode(cont) == " A"
    assert ctx + cont == encode_text(tok, context + " A")


def test_chat_prompt_gets_no_second_bos(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    ids = encode_text(tok, text)
    assert ids.count(tok.bos_token_id) == text.count(tok.bos_token)
