"""What an evaluation will serve: which engine and why, which weights (base, merged adapter, full model).

`plan_serving` prints the engine choice, resolves the base model and checks and hashes the trained weights
(fetched from their storage ref); the engine actors resolve the base and merge an adapter on their own
node (`adapters.node_model`), and the driver's tokenizer comes from the base model, never from a merged
copy on another node. `serves_shared` says when evaluation instead goes
through `infer.shared` (vLLM: long-lived engine actors, every label of a stage on one engine per GPU).
The gold label needs no model: it is planned as a preset-predictions engine (`stages.PresetEngine`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeoff_ray.config import ExperimentConfig
from tradeoff_ray.errors import UserError
from tradeoff_ray.infer.stages import EngineSpec
from tradeoff_ray.records import GOLD

PRESET = "preset"


@dataclass(frozen=True)
class ServePlan:
    """What evaluation will run: which engine and why, which weights, which adapter."""

    engine: str  # 'hf' | 'vllm' | 'preset'
    reason: str
    spec: EngineSpec | None
    model: str  # description of the base model
    adapter: str | None = None
    adapter_hash: str | None = None
    merged: bool = False
    gpus_per_actor: float = 0.0

    def describe(self) -> str:
        if self.engine == PRESET:
            return "preset predictions: each task's reference outputs (no model)"
        s = self.spec
        device = "GPU" if self.gpus_per_actor else "CPU"
        how = "" if not self.adapter else (" + merged LoRA" if self.merged else " (its own weights)")
        return f"{s.kind} on {device}: {self.model}{how} [{s.weights or s.model_path}]"


def serves_shared(cfg: ExperimentConfig) -> bool:
    """True when evaluation runs through `infer.shared` (vLLM: long-lived engine actors fed every row at
    once; with eval.adapters lora/auto one engine per GPU serves all labels, with merged one per label)."""
    from tradeoff_ray.infer.engine import select_engine

    engine, _ = select_engine(cfg.eval)
    if cfg.eval.adapters == "lora" and engine != "vllm":
        raise UserError(f"eval.adapters=lora serves adapters through vLLM multi-LoRA, but the engine here is "
                        f"{engine}; set eval.adapters=merged (or auto)")
    return engine == "vllm"


def eval_dir(run_dir: Path, label: str) -> Path:
    return Path(run_dir) / "evals" / label


def gold_plan() -> ServePlan:
    return ServePlan(engine=PRESET, reason=f"label '{GOLD}': each task's reference outputs as predictions",
                     spec=None, model="none")


def plan_serving(cfg: ExperimentConfig, *, label: str, adapter_dir: Path | None = None) -> ServePlan:
    """Pick the engine (printing which and why), resolve the model, merge the adapter when needed."""
    from tradeoff_ray.infer.engine import gpu_present, select_engine

    if label == GOLD:
        if adapter_dir is not None:
            raise UserError(f"label '{GOLD}' scores each task's reference outputs; it takes no adapter")
        return gold_plan()
    from tradeoff_ray.infer.adapters import check_adapter_dir, fetch_weights, is_full_model_dir, weights_hash
    from tradeoff_ray.models import resolve_model

    engine, reason = select_engine(cfg.eval)
    print(f"[eval] engine: {engine} ({reason})", flush=True)
    base = resolve_model(cfg.model)
    digest, merged = None, False
    if adapter_dir is not None:  # checked and hashed here; merged by the engine actor on its own node
        local = fetch_weights(adapter_dir, cfg.model)
        merged = not is_full_model_dir(local)
        digest = weights_hash(check_adapter_dir(local) if merged else local)
    gpu = engine == "vllm" or gpu_present()[0]
    gpus = cfg.eval.gpus_per_generation_actor if gpu else 0.0
    if engine == "vllm" and gpus <= 0:
        raise UserError("eval.engine vllm needs a GPU per generation actor; set eval.gpus_per_generation_actor "
                        "to 1 (or a fraction), or eval.engine=hf")
    spec = EngineSpec(kind=engine, model_path=base.path, dtype=cfg.model.dtype, batch_size=cfg.eval.batch_size,
                      threads=max(1, math.ceil(cfg.eval.cpus_per_generation_actor)), revision=base.revision,
                      base=cfg.model, weights=None if adapter_dir is None else str(adapter_dir),
                      vllm=cfg.eval.vllm)
    return ServePlan(engine=engine, reason=reason, spec=spec, model=base.description or base.path,
                     adapter=None if adapter_dir is None else str(adapter_dir), adapter_hash=digest, merged=merged,
                     gpus_per_actor=gpus)


def load_tokenizer(plan: ServePlan) -> Any:
    """The base model's tokenizer (renders chat prompts in the driver; training leaves it unchanged, and a
    merged copy may exist only on another node); None for preset predictions."""
    if plan.spec is None:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(plan.spec.model_path, revision=plan.spec.revision)
