"""Cluster checks made when a command joins Ray: storage every node can reach, GPUs before an 'auto' choice,
and how many restarts training gets."""
from __future__ import annotations

import pytest

from tradeoff_ray.config import RayConfig, TrainingConfig
from tradeoff_ray.errors import UserError
from tradeoff_ray.ray_session import check_storage, on_cluster, wait_for_gpus
from tradeoff_ray.train.ray_train import resolve_max_failures


@pytest.mark.parametrize("storage", [None, "/home/ray/runs/ray", "file:///home/ray/runs/ray"])
def test_multi_node_cluster_refuses_node_local_storage(storage) -> None:
    with pytest.raises(UserError, match="3 nodes") as err:
        check_storage(RayConfig(storage_path=storage), nodes=3)
    assert "--storage s3://" in str(err.value) and "ray.shared_storage=true" in str(err.value)


@pytest.mark.parametrize("cfg", [RayConfig(storage_path="s3://b/p"), RayConfig(storage_path="gs://b/p"),
                                 RayConfig(storage_path="/mnt/nfs/ray", shared_storage=True)])
def test_shared_storage_is_accepted_on_a_cluster(cfg) -> None:
    check_storage(cfg, nodes=3)


def test_one_node_needs_no_shared_storage() -> None:
    check_storage(RayConfig(), nodes=1)


class FakeCluster:
    """ray.cluster_resources and the autoscaler SDK's request_resources: a GPU joins after `join_after` polls."""

    def __init__(self, join_after: int | None):
        self.polls, self.join_after, self.requests = 0, join_after, []

    def resources(self) -> dict:
        self.polls += 1
        joined = self.join_after is not None and self.polls > self.join_after
        return {"CPU": 8.0, **({"GPU": 1.0} if joined else {})}


@pytest.fixture
def fake(monkeypatch):
    import ray
    import ray.autoscaler.sdk as sdk

    def make(join_after):
        cluster = FakeCluster(join_after)
        monkeypatch.setattr(ray, "cluster_resources", cluster.resources)
        monkeypatch.setattr(sdk, "request_resources", lambda **kw: cluster.requests.append(kw))
        return cluster
    return make


def test_auto_waits_for_the_autoscaler_to_add_a_gpu(fake) -> None:
    cluster, said = fake(join_after=3), []
    assert wait_for_gpus(RayConfig(gpu_wait_s=60), say=said.append, poll_s=0.01)
    assert cluster.requests == [{"bundles": [{"GPU": 1}]}, {"bundles": []}]  # asked, then withdrawn
    assert "waiting up to 60 s" in said[0] and "GPU(s) joined" in said[-1]


def test_auto_gives_up_after_the_timeout_and_says_so(fake) -> None:
    cluster, said = fake(join_after=None), []
    assert not wait_for_gpus(RayConfig(gpu_wait_s=0.05), say=said.append, poll_s=0.01)
    assert cluster.requests[-1] == {"bundles": []}
    assert "no GPU joined" in said[-1] and "eval.engine" in said[-1]


def test_no_wait_when_gpus_are_there_or_waiting_is_off(fake) -> None:
    cluster = fake(join_after=0)
    assert wait_for_gpus(RayConfig(gpu_wait_s=60), say=pytest.fail)
    cluster = fake(join_after=None)
    assert not wait_for_gpus(RayConfig(gpu_wait_s=0), say=pytest.fail) and cluster.requests == []


def test_max_failures_auto_restarts_on_a_cluster_only(monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    auto = TrainingConfig()
    assert auto.max_failures == "auto"
    assert resolve_max_failures(auto, cluster=on_cluster(RayConfig(address="10.0.0.1:6379"))) >= 1
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")  # what `ray job submit` sets
    assert resolve_max_failures(auto, cluster=on_cluster(RayConfig())) >= 1
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_max_failures(auto, cluster=on_cluster(RayConfig())) == 0
    assert resolve_max_failures(TrainingConfig(max_failures=5), cluster=False) == 5
    with pytest.raises(ValueError, match="'auto'"):
        TrainingConfig(max_failures=-1)
