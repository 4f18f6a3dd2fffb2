"""Run directories: where a command writes, with the resolved config saved first.

Every command that produces results (`run`, `eval`, `train`, `tune`) works in one run directory
(layout in `records.py`). The resolved config is written before any work starts, so every artefact
can be traced to the settings that made it; an existing run's config and results are never replaced.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tradeoff_ray.config import ConfigError, ExperimentConfig, cache_root, config_from_dict
from tradeoff_ray.errors import UserError

if TYPE_CHECKING:
    from tradeoff_ray.tasks import TaskData


def check_inputs(cfg: ExperimentConfig, *, training: bool = False) -> dict[str, "TaskData"]:
    """Check the Ray address, load every configured task's data (and Spider's when `training`), select
    their items and resolve the model: a bad input fails in seconds. Returns task name -> data."""
    from tradeoff_ray.models import resolve_model
    from tradeoff_ray.ray_session import check_target
    from tradeoff_ray.tasks import configured_tasks, get_task

    check_target(cfg.ray)
    tasks = configured_tasks(cfg)
    if training and "spider" not in [t.name for t in tasks]:
        tasks.append(get_task("spider"))  # the training data
    data = {}
    for task in tasks:
        data[task.name] = task.load(cfg)
        task.select(cfg, data[task.name])
    try:
        resolve_model(cfg.model)
    except OSError as err:
        raise UserError(f"cannot prepare model {cfg.model.name!r} in the cache {cache_root(cfg.model)} "
                        f"({err.strerror or err}); set TRADEOFF_RAY_CACHE (or model.cache_dir) to a writable "
                        "folder") from None
    return data


def new_run_dir(cfg: ExperimentConfig, *, out: Path | None = None, outputs: tuple[str, ...] = ()) -> Path:
    """Create `out` (or output_dir/<name>-<UTC stamp>) and write config.yaml into it.

    An existing run directory is continued only with the config it was made with: a different
    config, or any of `outputs` (paths inside the run, e.g. 'evals/baseline') already present, is
    refused with a UserError, so a run's record is never overwritten.
    """
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = Path(cfg.output_dir) / f"{cfg.name}-{stamp}"
        suffix = 1
        while out.exists():
            suffix += 1
            out = Path(cfg.output_dir) / f"{cfg.name}-{stamp}-{suffix}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a run directory (new or existing)")
    if (out / "config.yaml").exists():
        _check_same_config(cfg, out)
    taken = [o for o in outputs if (out / o).exists()]
    if taken:
        raise UserError(f"{out} already holds {', '.join(taken)}; results are never overwritten: choose another "
                        "--out, or move those folders away first")
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out)
    except OSError as err:
        raise UserError(f"cannot write the run directory {out} ({err.strerror or err}); set output_dir "
                        "(--set output_dir=DIR) or --out to a writable folder") from None
    return out.resolve()


def _check_same_config(cfg: ExperimentConfig, run_dir: Path) -> None:
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise UserError(f"{run_dir}/config.yaml cannot be read ({err}); choose another --out") from None
    diffs = _differences(saved, cfg.model_dump(mode="json"))
    if diffs:
        shown = ", ".join(diffs[:5]) + (f" and {len(diffs) - 5} more" if len(diffs) > 5 else "")
        raise UserError(f"{run_dir} is a run made with another config (differs in {shown}); its config and "
                        "results are kept: choose a new --out, or pass the run's own config.yaml")


def _differences(a: object, b: object, prefix: str = "") -> list[str]:
    """Dotted keys where two config dumps differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".") or "(whole config)"]


def save_config(cfg: ExperimentConfig, run_dir: Path) -> Path:
    path = run_dir / "config.yaml"
    path.write_text(cfg.to_yaml())
    return path


def load_run_config(run_dir: Path) -> ExperimentConfig:
    """The resolved config a run was started with (for --resume and `report`)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml); pass a directory under runs/")
    return config_from_dict(yaml.safe_load(path.read_text()) or {}, source=str(path))
