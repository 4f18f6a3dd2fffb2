"""LoRA adapters for evaluation: identify them by content, merge them into the base once, cache the result.
A fully fine-tuned model (`method: full`) is served from its own directory: nothing to merge.

Serving a merged model is the default on every engine: it runs at the base model's speed and leaves
no room for the failure the issue warns about (a serving stack that silently runs the base model
when an adapter fails to attach). The merge loads the base in bf16 on GPU / fp32 on CPU — never in
4-bit, even for QLoRA adapters: merging into dequantized 4-bit weights would bake the quantization
error into the served model (the adapter was trained against nf4 weights, and bf16 is the closest
full-precision view of them). Merged models are cached under
`<cache_root>/merged/<base key>-<adapter hash>/`, written atomically (temp dir + rename), so a
sweep's evaluations and a re-run reuse them.

On a cluster the merge runs in the engine actor, on the node that serves the model (`node_model`): the
trained weights are fetched from the run's storage (`ray.storage_path`, where training uploaded them)
into that node's cache and merged there, so no node ever reads another node's disk.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tradeoff_ray.config import ModelConfig, cache_root
from tradeoff_ray.errors import UserError
from tradeoff_ray.models import ResolvedModel, resolve_dtype, resolve_model, save_model_dir

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


class AdapterError(UserError):
    """An adapter directory is missing, incomplete or does not fit the model; the message says the fix."""


def check_adapter_dir(adapter_dir: str | Path) -> Path:
    """The adapter directory, checked to hold adapter_config.json and adapter_model.safetensors."""
    path = Path(adapter_dir).expanduser()
    if not path.is_dir():
        raise AdapterError(f"adapter directory {path} does not exist; pass the `adapter/` folder that training "
                           "wrote (runs/<run>/train/<variant>/adapter)")
    missing = [f for f in ADAPTER_FILES if not (path / f).is_file()]
    if missing:
        raise AdapterError(f"adapter directory {path} lacks {missing}; it must be a peft adapter saved with "
                           "save_pretrained (adapter_config.json + adapter_model.safetensors)")
    return path.resolve()


def adapter_hash(adapter_dir: str | Path) -> str:
    """sha256 (16 hex digits) of adapter_model.safetensors and adapter_config.json: the adapter's identity."""
    path = check_adapter_dir(adapter_dir)
    h = hashlib.sha256()
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        h.update(name.encode())
        with open(path / name, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:16]


def adapter_rank(adapter_dir: str | Path) -> int:
    """The LoRA rank r of an adapter (largest over its modules), for vLLM's max_lora_rank check."""
    cfg = json.loads((check_adapter_dir(adapter_dir) / "adapter_config.json").read_text())
    ranks = [int(cfg.get("r") or 0)] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()]
    return max(ranks)


def is_full_model_dir(path: str | Path) -> bool:
    """A fully fine-tuned model (`method: full`): an HF model directory, not a peft adapter."""
    path = Path(path)
    return (path / "config.json").is_file() and not (path / "adapter_config.json").is_file()


def weights_hash(weights_dir: str | Path) -> str:
    """Identity of trained weights: `adapter_hash` of an adapter, else the sha256 of a full model's config
    and safetensors files."""
    if not is_full_model_dir(weights_dir):
        return adapter_hash(weights_dir)
    path = Path(weights_dir)
    h = hashlib.sha256()
    for f in [path / "config.json", *sorted(path.glob("*.safetensors"))]:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:16]


def served_model(base: ResolvedModel, weights_dir: str | Path, *, cache_root: Path) -> ResolvedModel:
    """What serves trained weights: a full model's own directory, or the base with the adapter merged in."""
    if is_full_model_dir(weights_dir):
        path = Path(weights_dir).resolve()
        return ResolvedModel(str(path), key=f"full-{weights_hash(path)}", description=f"fully fine-tuned {path}")
    return merged_model_dir(base, weights_dir, cache_root=cache_root)


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


def merged_model_dir(base: ResolvedModel, adapter_dir: str | Path, *, cache_root: Path) -> ResolvedModel:
    """The base model with the adapter merged in (peft `merge_and_unload`), as a cached HF directory."""
    adapter = check_adapter_dir(adapter_dir)
    digest = adapter_hash(adapter)
    dest = Path(cache_root) / "merged" / f"{_safe(base.key)}-{digest}"
    resolved = ResolvedModel(str(dest), key=f"{base.key}+lora-{digest}",
                             description=f"{base.description or base.path} + LoRA {adapter} (merged, {digest})")
    if (dest / "config.json").exists():
        return resolved
    print(f"[adapter] merging {adapter} into {base.path} (once) -> {dest}", flush=True)
    _merge(base, adapter, dest)
    return resolved


def _merge(base: ResolvedModel, adapter: Path, dest: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gpu = torch.cuda.is_available()
    dtype = resolve_dtype("auto", on_gpu=gpu)
    model = AutoModelForCausalLM.from_pretrained(base.path, revision=base.revision, dtype=dtype,
                                                 device_map="cuda" if gpu else None)
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, RuntimeError, KeyError) as err:
        raise AdapterError(f"adapter {adapter} does not fit model {base.path} ({type(err).__name__}: {err}); "
                           "evaluate it with the model.name it was trained on") from None
    merged = peft_model.merge_and_unload()
    tokenizer_src = adapter if (adapter / "tokenizer_config.json").is_file() else base.path
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_src, revision=None if tokenizer_src == adapter else base.revision)
    save_model_dir(merged, tokenizer, dest, extra_files={"merged_from.json": json.dumps(
        {"base": base.path, "base_key": base.key, "adapter": str(adapter), "adapter_hash": adapter_hash(adapter),
         "dtype": str(dtype).removeprefix("torch.")}, indent=1)})
    if gpu:  # the merge runs in the engine actor: give its GPU memory back before the engine sizes its cache
        import gc

        del model, peft_model, merged
        gc.collect()
        torch.cuda.empty_cache()


def fetch_weights(ref: str | Path, model: ModelConfig) -> Path:
    """Trained weights (a peft adapter or a fully fine-tuned model folder) as a folder in this node's cache,
    fetched from `ref`: a storage URI (s3://, gs://), a shared path, or a local folder."""
    from tradeoff_ray.storage import fetch_cached

    if "://" not in str(ref) and not Path(ref).expanduser().is_dir():
        raise AdapterError(f"adapter directory {ref} does not exist on this node; pass the `adapter/` folder that "
                           "training wrote (runs/<run>/train/<variant>/adapter), or on a cluster its URI in the "
                           "run's storage (result.json's adapter_uri)")
    return fetch_cached(str(Path(ref).expanduser().resolve()) if "://" not in str(ref) else str(ref),
                        cache=cache_root(model))


def node_model(model: ModelConfig, weights: str | Path | None = None) -> ResolvedModel:
    """What this node serves: the base model resolved here, with `weights` (a storage ref) fetched into this
    node's cache and merged (LoRA) or served as they are (full fine-tune)."""
    base = resolve_model(model)
    if weights is None:
        return base
    return served_model(base, fetch_weights(weights, model), cache_root=cache_root(model))
