"""Adapters: identified by content, merged once and cached, and the merged model is the adapted model."""
from __future__ import annotations

import shutil

import pytest

from tradeoff_ray.infer import adapters
from tradeoff_ray.infer.adapters import AdapterError, adapter_hash, adapter_rank, merged_model_dir
from tradeoff_ray.models import ResolvedModel

PROMPTS = ["SELECT count(*) FROM", "Question: How many singers are there?", "abc",
           "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT"]


@pytest.fixture(scope="module")
def merged(tiny_model_dir, lora_adapter_dir, tmp_path_factory):
    base = ResolvedModel(str(tiny_model_dir), key="tiny-test")
    return merged_model_dir(base, lora_adapter_dir, cache_root=tmp_path_factory.mktemp("cache"))


def test_hash_is_content_and_rank_is_read(lora_adapter_dir, tmp_path):
    h = adapter_hash(lora_adapter_dir)
    copy = shutil.copytree(lora_adapter_dir, tmp_path / "copy")
    assert adapter_hash(copy) == h  # same bytes elsewhere: same adapter
    with open(copy / "adapter_model.safetensors", "ab") as f:
        f.write(b"\0")
    assert adapter_hash(copy) != h
    assert adapter_rank(lora_adapter_dir) == 4


def test_incomplete_adapter_dir_is_a_user_error(tmp_path):
    with pytest.raises(AdapterError, match="does not exist"):
        adapter_hash(tmp_path / "nope")
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(AdapterError, match="adapter_model.safetensors"):
        adapter_hash(tmp_path)


def test_merged_model_is_cached_by_adapter_hash(merged, tiny_model_dir, lora_adapter_dir, monkeypatch):
    assert merged.path.endswith(f"tiny-test-{adapter_hash(lora_adapter_dir)}")
    assert merged.key == f"tiny-test+lora-{adapter_hash(lora_adapter_dir)}"
    monkeypatch.setattr(adapters, "_merge", lambda *a, **k: pytest.fail("merged again instead of reusing"))
    from pathlib import Path

    again = merged_model_dir(ResolvedModel(str(tiny_model_dir), key="tiny-test"), lora_adapter_dir,
                             cache_root=Path(merged.path).parents[1])
    assert again == merged


def test_merged_equals_unmerged_and_differs_from_base(merged, tiny_model_dir, lora_adapter_dir):
    """Parity (merge_and_unload keeps the adapter's function) and the guard (the adapter really acts)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tradeoff_ray.infer.hf_engine import HfEngine

    base_engine = HfEngine(str(tiny_model_dir), batch_size=4)
    merged_engine = HfEngine(merged.path, batch_size=4)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(lora_adapter_dir))
    unmerged_engine = HfEngine(str(tiny_model_dir), batch_size=4, model=peft_model, tokenizer=base_engine.tokenizer)

    ids = base_engine.tokenizer(PROMPTS[1], return_tensors="pt").input_ids
    with torch.inference_mode():
        logits_merged = merged_engine.model(ids).logits
        logits_unmerged = unmerged_engine.model(ids).logits
        logits_base = base_engine.model(ids).logits
    assert torch.allclose(logits_merged, logits_unmerged, atol=1e-4)
    assert (logits_merged - logits_base).abs().max() > 1e-2

    gen = {name: [g.text for g in e.generate(PROMPTS, max_new_tokens=10, stop=[])]
           for name, e in (("base", base_engine), ("merged", merged_engine), ("unmerged", unmerged_engine))}
    assert gen["merged"] == gen["unmerged"]
    assert gen["merged"] != gen["base"]
    requests = [(p, " A") for p in PROMPTS]
    assert merged_engine.loglikelihood(requests) == pytest.approx(unmerged_engine.loglikelihood(requests), abs=1e-4)


def test_engine_node_fetches_the_adapter_from_storage_and_merges_in_its_own_cache(tiny_model_dir, lora_adapter_dir,
                                                                                  tmp_path):
    """On a cluster the serving node shares no disk with the trainer: it reads the adapter from storage only,
    and the driver's plan (which renders prompts) points at the base model, not at a merged copy."""
    import json
    from pathlib import Path

    from tradeoff_ray.config import ExperimentConfig
    from tradeoff_ray.infer.plan import plan_serving
    from tradeoff_ray.infer.stages import on_this_node
    from tradeoff_ray.storage import upload_dir

    uri = upload_dir(lora_adapter_dir, f"file://{tmp_path}/store/train/v/adapter")
    cfg = ExperimentConfig(model={"name": str(tiny_model_dir), "cache_dir": str(tmp_path / "node")},
                           eval={"engine": "hf"})
    plan = plan_serving(cfg, label="v", adapter_dir=uri)
    assert plan.spec.model_path == str(tiny_model_dir) and plan.spec.weights == uri
    assert plan.merged and plan.adapter_hash == adapter_hash(lora_adapter_dir)
    assert not list((tmp_path / "node").glob("merged/*")), "the driver merges nothing"

    spec = on_this_node(plan.spec)  # what the engine actor does on its node
    assert Path(spec.model_path).is_relative_to(tmp_path / "node" / "merged")
    meta = json.loads((Path(spec.model_path) / "merged_from.json").read_text())
    assert Path(meta["adapter"]).is_relative_to(tmp_path / "node" / "fetched")
    assert meta["adapter_hash"] == adapter_hash(lora_adapter_dir)


def test_missing_adapter_names_the_path_and_the_fix(tiny_model_dir, tmp_path):
    from tradeoff_ray.config import ModelConfig

    with pytest.raises(AdapterError, match="adapter_uri"):
        adapters.fetch_weights(tmp_path / "gone" / "adapter", ModelConfig(name=str(tiny_model_dir)))
