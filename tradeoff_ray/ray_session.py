"""Starting or joining Ray — done only by commands and `jobs/` entrypoints, never by library code.

Order: `ray.address` from the config; else `RAY_ADDRESS` (set by `ray job submit` on a cluster);
else a fresh local Ray (`address="local"`, so a stale `ray start` instance is never joined by
accident) sized by `ray.num_cpus`.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from tradeoff_ray.config import RayConfig


def describe_target(cfg: RayConfig) -> str:
    if cfg.address:
        return f"Ray at {cfg.address} (config ray.address)"
    if os.environ.get("RAY_ADDRESS"):
        return f"Ray at {os.environ['RAY_ADDRESS']} (RAY_ADDRESS)"
    return f"a local Ray ({cfg.num_cpus or os.cpu_count()} CPUs)"


@contextlib.contextmanager
def ray_session(cfg: RayConfig, *, log_to_driver: bool = True) -> Iterator[None]:
    """Connect to (or start) Ray for the duration of a command; shut down only what we started."""
    import ray

    if ray.is_initialized():
        yield
        return
    # Workers inherit this process's environment; keep tokenizers from forking thread pools.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if cfg.address:
        ray.init(address=cfg.address, log_to_driver=log_to_driver)
    elif os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=log_to_driver)  # a submitted job keeps its own runtime_env
    else:
        ray.init(address="local", num_cpus=cfg.num_cpus, include_dashboard=False,
                 log_to_driver=log_to_driver, runtime_env=runtime_env)
    try:
        yield
    finally:
        ray.shutdown()
