"""Fixtures of the training tests: a tiny Spider-format benchmark and a config pointing at the tiny model."""
from __future__ import annotations

import pytest

from tests.unit.train.tiny_spider import make_tiny_spider
from tradeoff_ray.config import ExperimentConfig


@pytest.fixture(scope="session")
def tiny_spider(tmp_path_factory):
    return make_tiny_spider(tmp_path_factory.mktemp("tiny_spider"))


@pytest.fixture()
def tiny_cfg(tiny_model_dir) -> ExperimentConfig:
    return ExperimentConfig(model={"name": str(tiny_model_dir)}, data={"validation_fraction": 0.25, "seed": 0})
