"""What the `jobs/` entrypoints share: arguments, logging, finding the run dir, publishing it, the exit line.

The entrypoints run as the driver of a `ray job submit` job. Everything they print goes to the job's
log (`ray job logs JOB_ID`, the dashboard's Jobs page). They never call `ray.init` themselves: the
command they run joins Ray through `tradeoff_ray.ray_session` (config ray.address, else RAY_ADDRESS,
which `ray job submit` sets, else a local Ray).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, NoReturn

# `python jobs/x.py` puts jobs/ first on sys.path, where evaluate.py / tune.py would shadow
# libraries of those names; this module is already imported, so the folder can go.
_JOBS_DIR = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _JOBS_DIR]

from tradeoff_ray.config import ExperimentConfig, load_config  # noqa: E402
from tradeoff_ray.errors import UserError  # noqa: E402

log = logging.getLogger("tradeoff_ray.jobs")


def parser(doc: str | None) -> argparse.ArgumentParser:
    """Arguments every job takes: --config, --set (repeatable), --storage, --include-weights."""
    head, _, rest = (doc or "").partition("\n\n")
    p = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="Experiment YAML (default: configs/quickstart.yaml).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a setting, e.g. --set data.dev_limit=100 (YAML value). Repeatable.")
    p.add_argument("--storage", default=None, metavar="URI",
                   help="The run's storage: s3://BUCKET/PREFIX, gs://..., or a path (shared on a multi-node "
                        "cluster: add --set ray.shared_storage=true). Ray Train/Tune and every hand-off between "
                        "nodes use <URI>/ray (unless ray.storage_path is set), and the run's results are copied "
                        "to <URI>/<run dir name>/ at the end (default: ray.storage_path; else they stay in "
                        "output_dir).")
    p.add_argument("--include-weights", action="store_true",
                   help="Also copy adapters and checkpoints (large) to --storage.")
    return p


def load(args: argparse.Namespace, job: str) -> ExperimentConfig:
    """Validate the config and overrides before any work, and log what this job will do."""
    from tradeoff_ray.ray_session import describe_target

    config, resume = args.config, getattr(args, "resume", None)
    if resume is not None and config is None:  # a resumed run keeps the settings it started with
        from tradeoff_ray.rundir import load_run_config

        load_run_config(Path(resume))  # names the problem when RUN_DIR is not a run directory
        config = Path(resume) / "config.yaml"
    cfg = load_config(config, args.overrides)
    if args.storage and cfg.ray.storage_path is None:  # the commands re-read the overrides: add it there
        args.overrides = [*args.overrides, f"ray.storage_path={ray_storage(args.storage)}"]
        cfg = load_config(config, args.overrides)

    log.info("%s on %s (pid %d)", job, socket.gethostname(), os.getpid())
    log.info("config %s%s", config or "configs/quickstart.yaml",
             "".join(f"\n    --set {o}" for o in args.overrides))
    log.info("ray: %s", describe_target(cfg.ray))
    log.info("storage for Ray Train/Tune and hand-offs between nodes: %s%s", cfg.ray.storage_path or
             "<run dir>/ray (one machine only)", " (declared shared)" if cfg.ray.shared_storage else "")
    uri = storage_uri(args, cfg)
    log.info("results: %s", f"copied to {uri} at the end" if uri else f"kept under {Path(cfg.output_dir).resolve()}")
    if not uri and os.environ.get("RAY_ADDRESS") and not Path(cfg.output_dir).is_absolute():
        log.warning("output_dir %r is inside this job's working dir, which Ray may delete after the job ends; "
                    "pass --storage URI or --set output_dir=/an/absolute/path to keep the results", cfg.output_dir)
    return cfg


def ray_storage(storage: str) -> str:
    """`ray.storage_path` derived from --storage: its `ray/` folder (next to the copied run dirs)."""
    return f"{storage.rstrip('/')}/ray"


def storage_uri(args: argparse.Namespace, cfg: ExperimentConfig) -> str | None:
    return args.storage or cfg.ray.storage_path


def new_run_path(cfg: ExperimentConfig, kind: str) -> Path:
    """output_dir/<name>-<kind>-<UTC stamp>: where an eval or tune job writes (created by the command)."""
    return Path(cfg.output_dir) / f"{cfg.name}-{kind}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def newest_run_dir(cfg: ExperimentConfig, *, since: float) -> Path | None:
    """The run dir the command created after `since` (its config.yaml is written first), if any."""
    root = Path(cfg.output_dir)
    found = [d for d in root.glob(f"{cfg.name}-*") if (d / "config.yaml").is_file()
             and (d / "config.yaml").stat().st_mtime >= since - 1] if root.is_dir() else []
    return max(found, key=lambda d: (d / "config.yaml").stat().st_mtime, default=None)


@contextlib.contextmanager
def publishing(args: argparse.Namespace, cfg: ExperimentConfig, run_dir: Callable[[], Path | None]) -> Iterator[None]:
    """Run the body, then copy the run dir to storage: also after a failure (what is done is kept)."""
    from tradeoff_ray.storage import upload_run_dir

    uri = storage_uri(args, cfg)
    try:
        yield
    except Exception:
        path = run_dir()
        if uri and path and path.is_dir():
            log.info("the job failed; copying what it finished first")
            try:
                upload_run_dir(path, uri, include_weights=args.include_weights)
            except Exception as err:  # keep the original error as the one reported
                log.error("could not copy the partial results: %s", err)
        raise
    path = run_dir()
    if path is None:
        log.warning("no run directory found under %s; nothing to copy", cfg.output_dir)
        return
    log.info("run dir: %s", path)
    if uri:
        log.info("results copied to %s", upload_run_dir(path, uri, include_weights=args.include_weights))


def _stop(signum, _frame) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def exit_with(main: Callable[[], int | None]) -> NoReturn:
    """Run a job's main (it returns its command's exit code); exit 0, or non-zero with one clear last line
    (2 = bad input, 1 = a bug, 130 = stopped, else the command's own code)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s [job] %(message)s", datefmt="%H:%M:%S")
    signal.signal(signal.SIGTERM, _stop)  # `ray job stop` sends SIGTERM: end like Ctrl-C
    started = time.time()
    try:
        code = main() or 0
        line = f"error: the command ended with exit code {code}"
    except UserError as err:
        code, line = 2, f"error: {err}"
    except KeyboardInterrupt:
        code, line = 130, "stopped; finished stages are kept (resume with --resume RUN_DIR)"
    except Exception as err:  # a bug: keep the traceback, end with one line
        log.exception("unexpected error")
        code, line = 1, f"error: job failed with {type(err).__name__}: {err}"
    if code == 0:
        log.info("job done in %.0f s", time.time() - started)
        sys.exit(0)
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    sys.exit(code)
