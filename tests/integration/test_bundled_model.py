"""The embedded default model: found in the pip package, converted once, cached, and it answers."""
import time

import pytest

from tradeoff_ray.config import ModelConfig
from tradeoff_ray.models import ModelNotFoundError, find_bundled_gguf, resolve_model

pytestmark = pytest.mark.integration


def test_bundled_model_converts_once_and_generates() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert find_bundled_gguf().suffix == ".gguf"
    first = resolve_model(ModelConfig())
    t = time.time()
    again = resolve_model(ModelConfig())
    assert again.path == first.path and time.time() - t < 5, "second resolve must reuse the cache"
    tok = AutoTokenizer.from_pretrained(first.path)
    model = AutoModelForCausalLM.from_pretrained(first.path, dtype=torch.float32)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])


def test_unknown_sources_fail_clearly(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="only bundled model"):
        resolve_model(ModelConfig(name="bundled:llama"))
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(ModelConfig(name=str(tmp_path)))
    with pytest.raises(ModelNotFoundError, match="neither"):
        resolve_model(ModelConfig(name="not a model"))
