"""Shared fixtures. Real data comes only through SPIDER_DIR / MMLU_DIR; tests using it skip when unset."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures import make_tiny_model_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def spider_dir() -> Path:
    value = os.environ.get("SPIDER_DIR")
    if not value:
        pytest.skip("SPIDER_DIR not set (real Spider copy)")
    return Path(value)


@pytest.fixture(scope="session")
def mmlu_dir() -> Path:
    value = os.environ.get("MMLU_DIR")
    if not value:
        pytest.skip("MMLU_DIR not set (real MMLU copy)")
    return Path(value)


@pytest.fixture(scope="session")
def local_ray():
    """One local 2-CPU Ray for the whole test session, shut down once at its end.

    Starting Ray again in the same process after `ray.shutdown()` can leave native threads of the
    old session pointing at freed state (ray-project/ray#31145): the process then passes every test
    and segfaults at exit. So Ray-using tests share this one session instead of starting their own.
    """
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep converted/merged models of tests out of the user's cache, except the bundled model conversion."""
    monkeypatch.setenv("TRADEOFF_RAY_TEST", "1")
