"""Fixtures of the evaluation tests: the tiny benchmarks of helpers.py and a random-B LoRA adapter."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.infer.helpers import make_lora_adapter, tiny_config, tiny_mmlu, tiny_spider


@pytest.fixture(scope="session")
def tiny_spider_data(tmp_path_factory):
    return tiny_spider(tmp_path_factory.mktemp("tiny_spider"))


@pytest.fixture(scope="session")
def tiny_mmlu_data():
    return tiny_mmlu()


@pytest.fixture(scope="session")
def lora_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return make_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter"))


@pytest.fixture
def tiny_cfg(tiny_model_dir, tmp_path):
    return tiny_config(tiny_model_dir, tmp_path / "cache")
