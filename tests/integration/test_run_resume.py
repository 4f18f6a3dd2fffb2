"""`tradeoff-ray run` end to end: a run interrupted during training and resumed with --resume ends with the
same metrics as an uninterrupted run, and a rerun of a finished run recomputes nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _overrides(model_dir: Path, out: Path) -> list[str]:
    variant = "[{name: tiny-lora, r: 4, alpha: 8, max_steps: 8, save_steps: 2, per_device_batch_size: 2}]"
    sets = [f"model.name={model_dir}", "data.dev_limit=6", "data.train_limit=24", "data.validation_limit=4",
            "data.mmlu_per_category=2", "eval.max_new_tokens=16", "eval.batch_size=8",
            f"training.variants={variant}", f"output_dir={out}", "training.cpus_per_worker=1"]
    return [a for s in sets for a in ("--set", s)]


def _run(args: list[str], env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tradeoff_ray.cli", "run", "configs/quickstart.yaml", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _finish(proc: subprocess.Popen, timeout: int = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def _run_dir(out: Path) -> Path:
    dirs = [d for d in out.glob("quickstart-*") if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _headline(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"labels": {k: {key: b["correct"] for key, b in v.items()} for k, v in metrics["labels"].items()},
            "comparisons": metrics["comparisons"]}


def test_interrupted_run_resumes_to_the_same_metrics_and_reruns_from_cache(tiny_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS")

    clean = tmp_path / "clean"
    _finish(_run(_overrides(tiny_model_dir, clean), env))
    expected = _headline(_run_dir(clean))

    # A second experiment in its own output dir (no shared cache): interrupt it once training has
    # written a checkpoint, as Ctrl-C or `ray job stop` would.
    out = tmp_path / "interrupted"
    proc = _run(_overrides(tiny_model_dir, out), env)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if any(out.glob(".cache/train-*/ray/**/checkpoint_*")):
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before training wrote a checkpoint: nothing to interrupt"
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=300)
    run_dir = _run_dir(out)
    assert not (run_dir / "metrics.json").exists()

    resumed = _finish(_run(["--resume", str(run_dir), *_overrides(tiny_model_dir, out)], env))
    assert "train tiny-lora" in resumed
    assert _headline(run_dir) == expected

    rerun = _finish(_run(["--resume", str(run_dir), *_overrides(tiny_model_dir, out)], env))
    for stage in ("eval-gold", "eval-baseline", "train-tiny-lora", "eval-tiny-lora"):
        assert f"done: {stage} (cached" in rerun, rerun[-3000:]
    assert _headline(run_dir) == expected
