"""Starting or joining Ray — done only by commands and `jobs/` entrypoints, never by library code.

Order: `ray.address` from the config; else `RAY_ADDRESS` (set by `ray job submit` on a cluster);
else a fresh local Ray (`address="local"`, so a stale `ray start` instance is never joined by
accident) sized by `ray.num_cpus`.

Joining a cluster first checks that its address accepts a TCP connection (CONNECT_TIMEOUT_S):
`ray.init` itself retries an unreachable address without limit, printing warnings. Once joined, a
multi-node cluster is refused when `ray.storage_path` is node-local (`check_storage`: every hand-off
between nodes goes through it), and with `wants_gpus` an autoscaled cluster that has no GPU yet is
asked for one before anything decides "auto" from what is there (`wait_for_gpus`).
"""
from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from tradeoff_ray.config import ExperimentConfig, RayConfig
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


def alive_nodes() -> list[dict[str, Any]]:
    """The nodes of the connected Ray cluster that are alive (`ray.nodes()` keeps dead ones listed)."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def on_cluster(cfg: RayConfig) -> bool:
    """True when work may land on other machines: a cluster address (config or RAY_ADDRESS), or a connected
    Ray with more than one alive node."""
    if cfg.address or os.environ.get("RAY_ADDRESS"):
        return True
    import ray

    return ray.is_initialized() and len(alive_nodes()) > 1


def check_storage(cfg: RayConfig, *, nodes: int) -> None:
    """UserError when a cluster of `nodes` alive nodes would hand weights off through node-local storage."""
    from tradeoff_ray.storage import is_node_local

    if nodes <= 1 or not is_node_local(cfg.storage_path, shared=cfg.shared_storage):
        return
    where = (f"ray.storage_path {cfg.storage_path!r} is a path on one machine's disk" if cfg.storage_path
             else "ray.storage_path is unset (it defaults to <run dir>/ray on the driver's disk)")
    raise UserError(f"this Ray cluster has {nodes} nodes but {where}: trained adapters and checkpoints are handed "
                    "between nodes through it. Pass --storage s3://BUCKET/PREFIX (or gs://...), or set "
                    "ray.storage_path to a shared file system mounted at the same path on every node and declare "
                    "it with --set ray.shared_storage=true")


def decides_gpus(cfg: ExperimentConfig, *, training: bool = True, evaluation: bool = True) -> bool:
    """Whether a command still has an 'auto' GPU choice to make (eval.engine, training.use_gpu)."""
    return (evaluation and cfg.eval.engine == "auto") or (training and cfg.training.use_gpu == "auto")


def wait_for_gpus(cfg: RayConfig, *, say: Callable[[str], None] = print, poll_s: float = 5.0) -> bool:
    """On a cluster without GPUs, ask the autoscaler for one GPU and wait up to `ray.gpu_wait_s` for it to
    join; True once the cluster has a GPU. The request is withdrawn afterwards (the work's own requests
    keep the node busy)."""
    import ray

    def gpus() -> float:
        return ray.cluster_resources().get("GPU", 0)

    if gpus() > 0 or cfg.gpu_wait_s <= 0:
        return gpus() > 0
    from ray.autoscaler.sdk import request_resources

    say(f"[ray] no GPU in the cluster yet; asked the autoscaler for one, waiting up to {cfg.gpu_wait_s:.0f} s "
        "(ray.gpu_wait_s) before deciding eval.engine / training.use_gpu 'auto'")
    request_resources(bundles=[{"GPU": 1}])
    deadline = time.monotonic() + cfg.gpu_wait_s
    try:
        while gpus() <= 0 and time.monotonic() < deadline:
            time.sleep(min(poll_s, max(deadline - time.monotonic(), 0)))
    finally:
        request_resources(bundles=[])
    found = gpus()
    say(f"[ray] {found:g} GPU(s) joined the cluster" if found else
        f"[ray] no GPU joined within {cfg.gpu_wait_s:.0f} s: 'auto' decides for CPU (set eval.engine and "
        "training.use_gpu explicitly, or raise ray.gpu_wait_s, if the cluster should have GPUs)")
    return found > 0


@contextlib.contextmanager
def ray_session(cfg: RayConfig, *, log_to_driver: bool = True, wants_gpus: bool = False) -> Iterator[None]:
    """Connect to (or start) Ray for the duration of a command; shut down only what we started.

    On a cluster: refuse node-local storage with more than one node (`check_storage`), and with `wants_gpus`
    (an 'auto' engine or GPU choice is still to be made) wait for the autoscaler to add a GPU."""
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
        if cfg.address or os.environ.get("RAY_ADDRESS"):
            check_storage(cfg, nodes=len(alive_nodes()))
            if wants_gpus:
                wait_for_gpus(cfg)
        yield
    finally:
        ray.shutdown()
