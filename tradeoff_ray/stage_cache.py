"""Stage cache: a stage's outputs are stored under a hash of its inputs and reused by any run.

A stage (baseline evaluation, training of one variant, evaluation of one adapter, ...) computes
into `<output_dir>/.cache/<kind>-<key>/` and is done when that directory holds `stage.json`.
The run directory gets a copy (hard links where the filesystem allows) of the outputs it needs,
so a rerun, or a run resumed after a kill, recomputes nothing that is done. Training computes in
place in its cache entry, so a killed training resumes from its last Ray Train checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tradeoff_ray.records import write_json

MARKER = "stage.json"


def stable_hash(*parts: Any) -> str:
    """Short sha256 of JSON-serialisable parts (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:16]


def files_digest(paths: list[Path]) -> str:
    """Short sha256 over the contents of `paths` (in order): what a stage read, not where it lives.

    Contents, not sizes and times: a file edited in place keeps both. Hashing Spider's questions,
    schemas and databases plus MMLU's CSVs (~45 MB) is done once per run and takes well under a second.
    """
    return stable_hash([file_hash(Path(p)) for p in paths])


@dataclass(frozen=True)
class Stage:
    """One cacheable unit of work: `kind` names it for people, `key` identifies its inputs."""

    kind: str
    key: str

    @property
    def slug(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in self.kind)
        return f"{safe}-{self.key}"


class StageCache:
    """Content-addressed store of finished stages under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: Stage) -> Path:
        return self.root / stage.slug

    def done(self, stage: Stage) -> dict[str, Any] | None:
        marker = self.path(stage) / MARKER
        if marker.exists():
            return json.loads(marker.read_text())
        return None

    def run(self, stage: Stage, compute: Callable[[Path], dict[str, Any] | None]) -> tuple[Path, dict[str, Any], bool]:
        """Return (entry dir, marker, was_cached). `compute(entry_dir)` writes outputs into entry_dir.

        A failed compute leaves the entry without a marker (partial work, e.g. checkpoints, stays for
        the next attempt to reuse); only a finished compute writes the marker.
        """
        entry = self.path(stage)
        marker = self.done(stage)
        if marker is not None:
            return entry, marker, True
        entry.mkdir(parents=True, exist_ok=True)
        started = time.time()
        info = compute(entry) or {}
        marker = {"kind": stage.kind, "key": stage.key, "wall_s": round(time.time() - started, 2),
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
        write_json(entry / MARKER, marker)
        return entry, marker, False


def link_tree(src: Path, dst: Path) -> None:
    """Mirror `src` into `dst` with hard links (copies across filesystems); replaces `dst`."""
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)

    def _link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=_link, ignore=shutil.ignore_patterns(MARKER))
