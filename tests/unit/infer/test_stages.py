"""Engines are built from a typed spec through the kind registry; an unknown kind names the known ones."""
from __future__ import annotations

import pickle

import pytest

from tradeoff_ray.config import VllmConfig
from tradeoff_ray.infer.stages import ENGINES, EngineSpec, PresetEngine, build_engine
from tradeoff_ray.infer.vllm_engine import AdapterRef


def test_preset_spec_builds_the_preset_engine():
    engine = build_engine(EngineSpec(kind="preset", model_path="", presets={"q": "SELECT 1"}))
    assert isinstance(engine, PresetEngine)
    assert engine.generate(["q"], max_new_tokens=8, stop=[])[0].text == "SELECT 1"


def test_unknown_engine_kind_names_the_registered_ones():
    with pytest.raises(ValueError, match=r"'tgi'.*\['hf', 'preset', 'vllm'\]"):
        build_engine(EngineSpec(kind="tgi", model_path="m"))
    assert set(ENGINES) == {"hf", "preset", "vllm"}


def test_spec_carries_config_objects_through_pickling():
    """Ray ships the spec to engine actors by pickling it: the typed objects arrive intact."""
    spec = EngineSpec(kind="vllm", model_path="m", vllm=VllmConfig(max_lora_rank=16),
                      adapters=(AdapterRef(name="a", path="/a", rank=8),))
    back = pickle.loads(pickle.dumps(spec))
    assert back == spec and isinstance(back.vllm, VllmConfig) and back.vllm.max_lora_rank == 16
    assert back.adapters[0].rank == 8
