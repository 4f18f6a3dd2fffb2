"""`ray job submit` of the jobs/ entrypoints against a real local Ray head, as users run them on a cluster.

The head is started here (`ray start --head --block` in its own session, free ports, a short temp
dir) and every process it spawned is killed at teardown, even when a test fails: nothing is left
running and no other Ray on this machine is touched (no `ray stop`, which stops every Ray).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
RUNTIME_ENV = REPO / "cluster" / "runtime_env.yaml"  # the one users pass: excludes runs/, .venv/, .git/, ...
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, ..., starttime at index 19]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> dict[int, str]:
    """Every live descendant of `pid` with its start time (so a reused pid is never mistaken for it)."""
    stats = {int(d.name): st for d in Path("/proc").glob("[0-9]*") if (st := _stat(int(d.name)))}
    found: dict[int, str] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, st in stats.items() if int(st[1]) in frontier and p not in found}
        found.update({p: stats[p][19] for p in frontier})
    return found


def _alive(pid: int, started: str) -> bool:
    st = _stat(pid)
    return st is not None and st[19] == started and st[0] != "Z"


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM it when the test process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalHead:
    """A Ray head with a dashboard (the Jobs API) on free ports; `close()` kills all it started.

    Token authentication is on with a token of this test only (Ray 2.61 turns it on for every
    cluster), passed to `ray` commands through RAY_AUTH_MODE / RAY_AUTH_TOKEN in their environment.
    """

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="rayjob", dir="/tmp")  # short: AF_UNIX socket paths <= 107 chars
        self.dashboard_port = _free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        token = secrets.token_hex(32)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("RAY_ADDRESS", None)
        ports = {flag: _free_port() for flag in (
            "port", "ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
            "runtime-env-agent-port", "metrics-export-port", "node-manager-port", "object-manager-port")}
        cmd = [RAY, "start", "--head", "--block", "--num-cpus=2", "--include-dashboard=true",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}", "--disable-usage-stats",
               f"--temp-dir={self.temp_dir}", *(f"--{k}={v}" for k, v in ports.items())]
        self.log_path = Path(self.temp_dir) / "head.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True, preexec_fn=_die_with_parent)

    def api(self, path: str, method: str = "GET") -> dict:
        """A call to the dashboard's Jobs REST API (what `ray job status/logs/stop` use)."""
        req = urllib.request.Request(f"{self.address}{path}", method=method, headers=self.headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text()[-3000:]
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{tail}")
            try:
                self.api("/api/version")
                return
            except (OSError, ValueError) as err:
                if time.time() > deadline:
                    raise TimeoutError(f"no Jobs API at {self.address} after {timeout_s} s ({err})") from None
                time.sleep(1)

    def close(self) -> None:
        try:
            for job in self.api("/api/jobs/"):
                if job.get("status") not in TERMINAL and job.get("submission_id"):
                    self.api(f"/api/jobs/{job['submission_id']}/stop", method="POST")
        except Exception:
            pass
        ours = _descendants(self.proc.pid)
        ours[self.proc.pid] = (_stat(self.proc.pid) or [""] * 20)[19]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # --block: ray shuts down what it started
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.time() + 10
        while (left := [p for p, t in ours.items() if _alive(p, t)]) and time.time() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.2)
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        assert not [p for p, t in ours.items() if _alive(p, t)], "Ray processes of the test head survived teardown"

    def ray(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        """A `ray job ...` command against this head, as a user types it."""
        return subprocess.run([RAY, "job", *args[:1], "--address", self.address, *args[1:]], env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)

    def submit(self, *args: str) -> str:
        """`ray job submit --no-wait` of `python <args>` with the repo as working dir; returns the job id."""
        out = self.ray("submit", "--no-wait", "--working-dir", str(REPO), "--runtime-env", str(RUNTIME_ENV),
                       "--", sys.executable, *args)
        assert out.returncode == 0, out.stdout + out.stderr
        return re.search(r"raysubmit_\w+", out.stdout + out.stderr).group(0)

    def wait(self, job_id: str, timeout_s: float) -> tuple[str, str]:
        """(final status from `ray job status`, logs from `ray job logs`); stops the job past timeout_s."""
        deadline = time.time() + timeout_s
        while (status := self.api(f"/api/jobs/{job_id}")["status"]) not in TERMINAL:
            if time.time() > deadline:
                self.ray("stop", job_id)
                tail = self.ray("logs", job_id).stdout[-4000:]
                pytest.fail(f"job {job_id} still {status} after {timeout_s} s:\n{tail}")
            time.sleep(2)
        out = self.ray("status", job_id)  # the CLI says the same: "Job 'raysubmit_..' succeeded"
        said = {"SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "was stopped"}[status]
        assert f"Job '{job_id}' {said}" in out.stdout + out.stderr, out.stdout + out.stderr
        return status, self.ray("logs", job_id).stdout


@pytest.fixture(scope="module")
def head():
    h = LocalHead()
    try:
        h.wait_ready()
        yield h
    finally:
        h.close()


def test_run_experiment_job_succeeds_and_publishes(head: LocalHead, tiny_model_dir: Path, tmp_path: Path) -> None:
    out, store = tmp_path / "runs", tmp_path / "store"
    variant = "[{name: tiny-lora, r: 4, alpha: 8, max_steps: 2, per_device_batch_size: 2}]"
    job = head.submit("jobs/run_experiment.py", "--config", "configs/quickstart.yaml",
                      "--set", f"model.name={tiny_model_dir}", "--set", "data.dev_limit=4",
                      "--set", "data.train_limit=16", "--set", "data.mmlu_per_category=2",
                      "--set", "eval.max_new_tokens=16", "--set", f"training.variants={variant}",
                      "--set", f"output_dir={out}", "--set", "ray.gpu_wait_s=0",  # a CPU-only head: decide now
                      "--storage", str(store))
    status, logs = head.wait(job, timeout_s=900)
    assert status == "SUCCEEDED", logs[-6000:]
    assert "(RAY_ADDRESS)" in logs, "the driver must join the submitting cluster, not start its own Ray"
    for stage in ("baseline", "tiny-lora", "report"):  # the stages, as the orchestrator logs them
        assert stage in logs, f"no {stage!r} in the job log:\n{logs[-6000:]}"
    (run_dir,) = [d for d in out.iterdir() if d.name.startswith("quickstart-")]
    for name in ("config.yaml", "metrics.json", "report.md"):
        assert (run_dir / name).is_file(), f"{name} missing from {run_dir}"
    assert list(run_dir.rglob("*.safetensors")), "the run trained an adapter"
    copied = store / run_dir.name
    assert (copied / "metrics.json").read_bytes() == (run_dir / "metrics.json").read_bytes()
    assert (copied / "report.md").is_file()
    assert not list(copied.rglob("*.safetensors")), "weights are copied only with --include-weights"


def test_bad_config_fails_the_job_with_one_clear_line(head: LocalHead) -> None:
    job = head.submit("jobs/run_experiment.py", "--config", "configs/quickstart.yaml", "--set", "eval.batchsize=8")
    status, logs = head.wait(job, timeout_s=180)
    assert status == "FAILED"
    last = logs.strip().splitlines()[-1]
    assert last.startswith("error: invalid config") and "eval.batchsize" in last and "batch_size" in last, logs
    assert "Traceback" not in logs, "bad input gets one message, not a traceback"
