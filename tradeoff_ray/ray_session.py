"""Starting or joining Ray — done only by commands and `jobs/` entrypoints, never by library code.

Order: `ray.address` from the config; else `RAY_ADDRESS` (set by `ray job submit` on a cluster);
else a fresh local Ray (`address="local"`, so a stale `ray start` instance is never joined by
accident) sized by `ray.num_cpus`.

Joining a cluster first checks that its address accepts a TCP connection (CONNECT_TIMEOUT_S):
`ray.init` itself retries an unreachable address without limit, printing warnings.
"""
from __future__ import annotations

import contextlib
import os
import socket
from typing import Iterator
from urllib.parse import urlsplit

from tradeoff_ray.config import RayConfig
from tradeoff_ray.errors import UserError

CONNECT_TIMEOUT_S = 10.0  # a reachable head answers in milliseconds; a firewalled one never does
DEFAULT_GCS_PORT = 6379


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of 'host:port' or 'scheme://host:port' (ray://, http://); None for 'auto' / 'local'."""
    address = address.strip()
    if address in ("auto", "local", ""):
        return None
    parsed = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        port = parsed.port
    except ValueError:
        return None
    default = {"ray": 10001, "http": 80, "https": 443}.get(parsed.scheme, DEFAULT_GCS_PORT)
    return (parsed.hostname, port or default) if parsed.hostname else None


def check_reachable(address: str, source: str) -> None:
    """UserError naming `address`, where it came from and how to change it, unless it accepts a connection."""
    target = _host_port(address)
    if target is None:
        return
    fix = ("unset RAY_ADDRESS (`unset RAY_ADDRESS`) to start a local Ray, or point it at a running cluster's head"
           if source == "RAY_ADDRESS" else "set ray.address to a running cluster's head, or null for a local Ray")
    try:
        with socket.create_connection(target, timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise UserError(f"cannot reach a Ray cluster at {address} (from {source}): {err.strerror or err}; {fix}") \
            from None


def check_target(cfg: RayConfig) -> None:
    """Fail now (UserError) when the configured or RAY_ADDRESS cluster cannot be reached."""
    if cfg.address:
        check_reachable(cfg.address, "config ray.address")
    elif os.environ.get("RAY_ADDRESS"):
        check_reachable(os.environ["RAY_ADDRESS"], "RAY_ADDRESS")


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
    check_target(cfg)
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
