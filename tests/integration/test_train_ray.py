"""Ray Train on the tiny model with 1 CPU worker: loss falls, adapters land in the run dir, a killed
run resumes from its newest checkpoint and ends exactly where an uninterrupted run ends — when the driver
runs again (`--resume`), and within one run when the worker process dies (`training.max_failures`)."""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.unit.train.tiny_spider import make_tiny_spider
from tradeoff_ray.config import ExperimentConfig, LoraVariant
from tradeoff_ray.train.ray_train import train_variant

pytestmark = pytest.mark.integration

VARIANT = LoraVariant(name="tiny-r8", r=8, alpha=16, dropout=0.05, learning_rate=1e-2, max_steps=20,
                      save_steps=10, per_device_batch_size=4, max_length=1024)
RESULT_KEYS = {"variant", "settings", "steps", "max_steps", "data", "over_length_dropped", "train_loss",
               "eval_loss", "first_train_loss", "last_train_loss", "initial_eval_loss", "final_eval_loss",
               "tokens_per_s",
               "steps_per_s", "adapter_dir", "checkpoints", "wall_time_s", "ray_run_path", "model_key"}


@pytest.fixture(scope="module")
def setup(tiny_model_dir, tmp_path_factory):
    spider = make_tiny_spider(tmp_path_factory.mktemp("spider"))
    cfg = ExperimentConfig(model={"name": str(tiny_model_dir)}, data={"validation_fraction": 0.25})
    return cfg, spider


@pytest.fixture(scope="module")
def uninterrupted(local_ray, setup, tmp_path_factory):
    cfg, spider = setup
    run_dir = tmp_path_factory.mktemp("run_a")
    return run_dir, train_variant(cfg, VARIANT, run_dir=run_dir, spider=spider)


def test_training_writes_adapters_and_a_complete_result(uninterrupted, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir, result = uninterrupted
    assert RESULT_KEYS <= set(result)
    assert result["steps"] == 20 and result["resumed_from_step"] is None
    on_disk = json.loads((run_dir / "train" / "tiny-r8" / "result.json").read_text())
    assert on_disk["adapter_dir"] == result["adapter_dir"]
    losses = [p["loss"] for p in result["train_loss"]]
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # loss falls
    assert [p["step"] for p in result["eval_loss"]] == [0, 10, 20]  # the untrained adapter's loss first
    assert result["final_eval_loss"] < result["initial_eval_loss"]
    assert [c["step"] for c in result["checkpoints"]] == [10, 20]
    for path in [result["adapter_dir"], *(c["path"] for c in result["checkpoints"])]:
        names = {p.name for p in (run_dir / path).iterdir()}
        assert {"adapter_model.safetensors", "adapter_config.json"} <= names
    final = load_file(f"{result['adapter_dir']}/adapter_model.safetensors")
    last_ckpt = load_file(f"{result['checkpoints'][-1]['path']}/adapter_model.safetensors")
    assert all(torch.equal(final[k], last_ckpt[k]) for k in final)
    split = json.loads((run_dir / "train" / "tiny-r8" / "train_split.json").read_text())
    assert len(split["train"]) == result["data"]["train"]["examples"]
    # the adapter loads with peft and changes the model's outputs
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()(ids).logits
        tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                          result["adapter_dir"]).eval()(ids).logits
    assert not torch.allclose(base, tuned, atol=1e-4)


def test_a_killed_run_resumes_and_ends_like_an_uninterrupted_one(uninterrupted, setup, tmp_path_factory):
    cfg, spider = setup
    _, expected = uninterrupted
    run_dir = tmp_path_factory.mktemp("run_b")
    with pytest.raises(Exception, match="injected failure at step 13"):
        train_variant(cfg, VARIANT, run_dir=run_dir, spider=spider, fail_at_step=13)
    assert not (run_dir / "train" / "tiny-r8" / "result.json").exists()

    resumed = train_variant(cfg, VARIANT, run_dir=run_dir, spider=spider)  # same run dir: Ray restores by name
    assert resumed["resumed_from_step"] == 10
    assert resumed["steps"] == expected["steps"] == 20
    assert resumed["train_loss"] == expected["train_loss"]
    assert resumed["final_eval_loss"] == expected["final_eval_loss"]
    got = load_file(f"{resumed['adapter_dir']}/adapter_model.safetensors")
    want = load_file(f"{expected['adapter_dir']}/adapter_model.safetensors")
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


def _descendants(pid: int) -> list[int]:
    """Live descendants of `pid` (from /proc)."""
    parents = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    found, frontier = [], {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier and p not in found}
        found += sorted(frontier)
    return found


def _train_workers() -> list[int]:
    """Pids of the Ray Train worker processes of this test session's Ray (children of its own raylet only)."""
    import ray._private.ray_constants as ray_constants
    import ray._private.worker as ray_worker

    raylet = ray_worker._global_node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    out = []
    for pid in _descendants(raylet):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::RayTrainWorker"):
            out.append(pid)
    return out


def _kill_worker_after_first_checkpoint(storage: Path, killed: list[int], stop: threading.Event) -> None:
    """Watch Ray's storage; once Ray Train has registered the first checkpoint (its checkpoint manager's
    snapshot names a checkpoint folder), SIGKILL the training worker process."""
    while not stop.is_set():
        snapshots = [p.read_text(errors="replace") for p in storage.glob("*/checkpoint_manager_snapshot.json")]
        if any(re.search(r"checkpoint_\d{4}-", text) for text in snapshots):
            for pid in _train_workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            if killed:
                return
        time.sleep(0.05)


def test_a_worker_killed_mid_run_is_restarted_from_the_last_checkpoint(uninterrupted, setup, tmp_path):
    """`training.max_failures` (auto: >= 1 on a cluster, where nodes get preempted) restarts a dead worker from
    the newest checkpoint inside the same run; the result is the uninterrupted run's, step for step."""
    cfg, spider = setup
    _, expected = uninterrupted
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update={"max_failures": 1})})
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_worker_after_first_checkpoint, args=(tmp_path / "ray", killed, stop),
                               daemon=True)
    watcher.start()
    try:
        resumed = train_variant(cfg, VARIANT, run_dir=tmp_path, spider=spider)
    finally:
        stop.set()
        watcher.join()
    assert killed, "the training worker was never seen (nothing was killed)"
    assert resumed["resumed_from_step"] == 10
    assert resumed["steps"] == expected["steps"] == 20
    assert resumed["train_loss"] == expected["train_loss"]
    assert resumed["final_eval_loss"] == expected["final_eval_loss"]
    got = load_file(f"{resumed['adapter_dir']}/adapter_model.safetensors")
    want = load_file(f"{expected['adapter_dir']}/adapter_model.safetensors")
    assert all(torch.equal(got[k], want[k]) for k in want)
