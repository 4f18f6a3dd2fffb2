"""The embedded default model: found in the pip package, converted once, cached, and it answers."""
import json
import shutil
import time
from pathlib import Path

import pytest

from tradeoff_ray.config import ModelConfig
from tradeoff_ray.models import ModelNotFoundError, find_bundled_gguf, gguf_digest, resolve_model

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



def test_a_gguf_path_converts_once_keyed_by_content(tmp_path) -> None:
    """model.name may be any .gguf file: converted into the cache once and reused; new bytes = a new key."""
    gguf = tmp_path / "My Model.Q4.gguf"
    shutil.copyfile(find_bundled_gguf(), gguf)
    cache = tmp_path / "cache"
    cfg = ModelConfig(name=str(gguf), cache_dir=str(cache))
    first = resolve_model(cfg)
    path = Path(first.path)
    assert first.key.startswith("gguf-") and path.parent == cache / "models" and path.name.startswith("my-model.q4-")
    assert json.loads((path / "config.json").read_text())["model_type"] == "llama"
    t = time.time()
    assert resolve_model(cfg) == first and time.time() - t < 2, "second resolve must reuse the cache and the digest"
    old = gguf_digest(gguf, cache)
    with open(gguf, "ab") as f:
        f.write(b"\0" * 32)
    assert gguf_digest(gguf, cache) != old, "an edited file must not reuse the old conversion"


def test_a_missing_gguf_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such file"):
        resolve_model(ModelConfig(name=str(tmp_path / "nope.gguf"), cache_dir=str(tmp_path)))
