"""Two Ray nodes on this machine, each with its own cache: an adapter trained on node A is evaluated on node B.

What it guards: on a real cluster the node that trains and the node that serves share no disk. Training
must hand its adapter off through the run's storage (`ray.storage_path`, recorded as `adapter_uri`), and
the engine actor must fetch it into *its own* node's cache and merge it there; the driver renders prompts
with the base model's tokenizer, never a merged copy. Code that reads the adapter by the driver's run-dir
path, or merges it in the driver's cache, fails here: A's run-dir copy is deleted before evaluation, and
node B's cache (TRADEOFF_RAY_CACHE set per raylet) must hold the fetched adapter and the merged model.

The cluster (`ray.cluster_utils.Cluster`: a head = node A, one more raylet = node B, each with a custom
resource) is driven from a subprocess: a test process holds one Ray session (conftest's `local_ray`),
and a Ray driver cannot join a second cluster. The subprocess writes what it saw as JSON.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(spec: dict) -> dict:
    """In the subprocess: start the two-node cluster, train on A, evaluate on B; return what happened."""
    import shutil

    import ray
    from ray.cluster_utils import Cluster

    from tests.unit.infer.helpers import tiny_data, tiny_mmlu
    from tests.unit.train.tiny_spider import make_tiny_spider
    from tradeoff_ray.config import LoraVariant, config_from_dict
    from tradeoff_ray.infer.pipeline import evaluate
    from tradeoff_ray.ray_session import alive_nodes, check_storage
    from tradeoff_ray.train.ray_train import train_variant

    root = Path(spec["root"])
    caches = {name: root / f"cache-{name}" for name in ("a", "b")}
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"node_a": 1}, "gcs_server_port": spec["port"], "include_dashboard": False,
        "env_vars": {"TRADEOFF_RAY_CACHE": str(caches["a"])}})
    cluster.add_node(num_cpus=2, resources={"node_b": 1}, env_vars={"TRADEOFF_RAY_CACHE": str(caches["b"])})
    ray.init(address=cluster.address, log_to_driver=True)
    try:
        cfg = config_from_dict({
            "name": "multinode", "model": {"name": spec["model"]},
            "data": {"validation_fraction": 0.25, "mmlu_per_category": 2, "dev_limit": 4},
            "training": {"use_gpu": False, "worker_resources": {"node_a": 1}},
            "eval": {"engine": "hf", "batch_size": 4, "max_new_tokens": 8, "mmlu_shots": [0],
                     "generation_actors": 1, "cpus_per_generation_actor": 1, "scorer_actors": 1,
                     "cpus_per_scorer_actor": 0.5, "generation_resources": {"node_b": 1}},
            "ray": {"storage_path": str(root / "storage"), "shared_storage": True}})
        nodes = len(alive_nodes())
        check_storage(cfg.ray, nodes=nodes)
        spider = make_tiny_spider(root / "spider", n_dbs=2, repeats=1)
        variant = {"name": "tiny-r4", "r": 4, "alpha": 8, "learning_rate": 1e-2, "max_steps": 2, "save_steps": 2,
                   "per_device_batch_size": 4, "max_length": 1024}
        run_a = root / "run-a"
        result = train_variant(cfg, LoraVariant(**variant), run_dir=run_a, spider=spider)
        shutil.rmtree(run_a / "train")  # the trainer's run-dir copy is gone: only storage holds the adapter
        summary = evaluate(cfg, label="tiny-r4", out_dir=root / "run-b", adapter_dir=result["adapter_uri"],
                           data=tiny_data(spider, tiny_mmlu()))
        return {"nodes": nodes, "result": result, "summary": summary}
    finally:
        ray.shutdown()
        cluster.shutdown()


def _merged_from(cache: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(cache.glob("merged/*/merged_from.json"))]


def test_adapter_trained_on_one_node_is_evaluated_on_another(tiny_model_dir, tmp_path):
    spec = {"root": str(tmp_path), "model": str(tiny_model_dir), "port": _free_port()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TRADEOFF_RAY_CACHE": str(tmp_path / "cache-driver"), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.test_multinode", json.dumps(spec)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the raylets it started, nothing else
        log, _ = proc.communicate()
        pytest.fail(f"the two-node run took over {TIMEOUT_S} s:\n{log[-6000:]}")
    assert proc.returncode == 0, log[-6000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    result, summary = seen["result"], seen["summary"]

    assert seen["nodes"] == 2
    storage = tmp_path / "storage"
    assert result["adapter_uri"].startswith(str(storage)), "training hands its adapter off through storage"
    assert not (tmp_path / "run-a" / "train").exists()
    assert summary["adapter"] == result["adapter_uri"] and summary["merged"]
    assert summary["tasks"]["spider"]["rows"] == 4 and summary["tasks"]["mmlu"]["rows"] > 0

    # node B fetched the adapter from storage into its own cache and merged it there
    (merged,) = _merged_from(tmp_path / "cache-b")
    assert Path(merged["adapter"]).is_relative_to(tmp_path / "cache-b" / "fetched")
    assert merged["adapter_hash"] == summary["adapter_hash"]
    assert not _merged_from(tmp_path / "cache-a"), "node A trained; it must not have served"
    assert not _merged_from(tmp_path / "cache-driver"), "the driver renders prompts; it merges nothing"


if __name__ == "__main__":  # the subprocess of the test above
    _spec = json.loads(sys.argv[1])
    _seen = drive(_spec)
    Path(_spec["root"], "seen.json").write_text(json.dumps(_seen, default=str))
