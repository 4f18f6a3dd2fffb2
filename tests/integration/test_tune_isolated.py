"""Runs tests/integration/test_tune.py in a fresh Python process with its own local Ray.

Its sweeps stop trials (ASHA), interrupt a sweep and resume it; in the suite's shared Ray session, actors and
placement groups left by earlier tests (a killed training worker, stopped trials) can hold the CPUs a resumed
trial waits for, and the sweep then waits forever. In a process of its own it starts clean, and the timeout
turns any hang into a failure."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.tune_isolation import ISOLATED

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_tune_sweeps_in_their_own_ray_session():
    env = {**os.environ, ISOLATED: "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                    os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "integration" / "test_tune.py")],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the Tune tests did not finish in {err.timeout} s:\n{(err.stdout or b'')[-3000:]!r}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], done.stdout[-2000:]
