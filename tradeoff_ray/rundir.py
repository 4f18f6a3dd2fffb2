"""Run directories: where a command writes, with the resolved config saved first.

Every command that produces results (`run`, `eval`, `train`, `tune`) works in one run directory
(layout in `records.py`). The resolved config is written before any work starts, so every artefact
can be traced to the settings that made it.
"""
from __future__ import annotations

import time
from pathlib import Path

import yaml

from tradeoff_ray.config import ConfigError, ExperimentConfig, config_from_dict


def new_run_dir(cfg: ExperimentConfig, *, out: Path | None = None) -> Path:
    """Create `out` (or output_dir/<name>-<UTC stamp>) and write config.yaml into it."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        out = Path(cfg.output_dir) / f"{cfg.name}-{stamp}"
        suffix = 1
        while out.exists():
            suffix += 1
            out = Path(cfg.output_dir) / f"{cfg.name}-{stamp}-{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    return out.resolve()


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
