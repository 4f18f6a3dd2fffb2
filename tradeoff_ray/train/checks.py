"""Checks the driver runs before Ray starts: fail in a second with a clear message, not after minutes.

QLoRA needs CUDA and bitsandbytes. On a local run the driver's machine is where training runs, so
it is checked there; on a cluster (`ray.address` or RAY_ADDRESS) the GPUs are on the workers and the
worker checks again when it loads the model (`loop.load_model`).
"""
from __future__ import annotations

import importlib.util
import os
from typing import Iterable

from tradeoff_ray.config import ExperimentConfig, LoraVariant
from tradeoff_ray.errors import UserError


class QuantizationUnavailable(UserError):
    """4-bit (QLoRA) training was asked for where it cannot run."""


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def bitsandbytes_installed() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def check_can_train(
    cfg: ExperimentConfig,
    variants: Iterable[LoraVariant],
    *,
    cuda: bool | None = None,
    bnb: bool | None = None,
) -> None:
    """Raise `QuantizationUnavailable` when an nf4 variant cannot run here (cuda/bnb: injectable for tests)."""
    nf4 = [v.name for v in variants if v.quantization == "nf4"]
    if not nf4:
        return
    if cfg.training.use_gpu is False:
        raise QuantizationUnavailable(
            f"variants {nf4} use quantization: nf4 (QLoRA, 4-bit on CUDA) but training.use_gpu is false; "
            "set training.use_gpu: auto (or true), or quantization: none"
        )
    remote = bool(cfg.ray.address or os.environ.get("RAY_ADDRESS"))
    if remote:
        return  # the workers' GPUs are checked where they are
    cuda = cuda_available() if cuda is None else cuda
    bnb = bitsandbytes_installed() if bnb is None else bnb
    if not cuda:
        raise QuantizationUnavailable(
            f"variants {nf4} use quantization: nf4 (QLoRA) which needs an NVIDIA GPU with CUDA, and this machine "
            "has none; set quantization: none for those variants (plain LoRA), or run on a GPU machine/cluster"
        )
    if not bnb:
        raise QuantizationUnavailable(
            f"variants {nf4} use quantization: nf4 (QLoRA) which needs bitsandbytes: "
            "`pip install 'tradeoff-ray[gpu]'` (bitsandbytes>=0.45), or set quantization: none"
        )
