"""Copying a run's results to durable storage (a local dir, s3://, gs://) and fetching them back.

On a cluster, a run directory lives on the head node, by default inside the job's working dir
(Ray's runtime-env cache, cleaned up after the job); the `jobs/` entrypoints call `upload_run_dir`
at the end so the results outlive the job and the cluster. pyarrow.fs does the I/O (it ships with Ray and knows
S3 and GCS, with the usual AWS_* / GOOGLE_APPLICATION_CREDENTIALS / instance-role credentials).

What is copied: everything a report or a notebook reads (config.yaml, manifests/, stages/, evals/,
metrics.json, report.*, plots/, tune/trials.csv, train/*/result.json, Tune/Train result files).
What is left out unless `include_weights=True`: model weights and checkpoints (adapters, Ray and HF
checkpoints, *.safetensors / *.bin / *.pt ...): gigabytes per run, and on a multi-node cluster they
already sit in Ray's storage path.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from tradeoff_ray.errors import UserError

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".npz", ".h5"})
WEIGHT_DIRS = frozenset({"adapter", "checkpoints", "merged"})  # run-dir layout (records.py) + merged models
CHECKPOINT_DIR_PREFIXES = ("checkpoint_", "checkpoint-")  # Ray Train/Tune and HF Trainer checkpoints
SKIPPED_SUFFIXES = frozenset({".tmp", ".lock"})  # half-written files (records.write_json) and locks


class StorageError(UserError):
    """A storage URI that cannot be used; the message names the URI and the fix."""


def is_weight_file(rel: PurePosixPath) -> bool:
    """True for files under a weights/checkpoint folder or with a weights suffix (path relative to the run dir)."""
    dirs = rel.parts[:-1]
    in_weight_dir = any(d in WEIGHT_DIRS or d.startswith(CHECKPOINT_DIR_PREFIXES) for d in dirs)
    return in_weight_dir or rel.suffix in WEIGHT_SUFFIXES


def select_files(run_dir: Path, *, include_weights: bool = False) -> list[PurePosixPath]:
    """Files of `run_dir` to copy, as sorted POSIX paths relative to it."""
    run_dir = Path(run_dir)
    chosen = []
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.suffix in SKIPPED_SUFFIXES:
            continue
        rel = PurePosixPath(path.relative_to(run_dir).as_posix())
        if include_weights or not is_weight_file(rel):
            chosen.append(rel)
    return sorted(chosen)


def open_uri(uri: str):
    """(pyarrow FileSystem, path inside it, scheme) for a local dir (relative ok), file://, s3:// or gs:// URI."""
    from pyarrow import fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve()), "local"
    scheme = uri.split("://", 1)[0].lower()
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError with its own wording
        raise StorageError(
            f"cannot open storage URI {uri!r} ({err}); use a local directory, s3://BUCKET/PREFIX "
            "or gs://BUCKET/PREFIX (credentials come from the environment or the node's role)"
        ) from None
    return filesystem, path, ("local" if scheme == "file" else scheme)


def _join(uri_path: str, scheme: str, *parts: str) -> str:
    path = "/".join([uri_path.rstrip("/"), *parts])
    return path if scheme == "local" else f"{scheme}://{path}"


def upload_run_dir(run_dir: str | Path, uri: str, *, include_weights: bool = False) -> str:
    """Copy a run's results to `<uri>/<run dir name>/`; returns that destination (a path or URI).

    Re-uploading overwrites files of the same name, so a resumed run can be uploaded again.
    """
    from pyarrow import fs as pafs

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StorageError(f"run directory {run_dir} does not exist; pass the directory a run wrote")
    files = select_files(run_dir, include_weights=include_weights)
    filesystem, base, scheme = open_uri(uri)
    dest = _join(base, scheme, run_dir.name)
    dest_path = "/".join([base.rstrip("/"), run_dir.name])
    local = pafs.LocalFileSystem()
    if isinstance(filesystem, pafs.LocalFileSystem):  # object stores have no folders to make
        for parent in sorted({str(PurePosixPath(dest_path, rel).parent) for rel in files} | {dest_path}):
            filesystem.create_dir(parent, recursive=True)

    total = sum((run_dir / rel).stat().st_size for rel in files)
    log.info("uploading %d files (%.1f MB%s) of %s to %s", len(files), total / 1e6,
             "" if include_weights else ", weights and checkpoints left out", run_dir, dest)
    started, done = time.time(), 0

    def copy(rel: PurePosixPath) -> None:
        try:
            pafs.copy_files(str(run_dir / rel), f"{dest_path}/{rel}", source_filesystem=local,
                            destination_filesystem=filesystem)
        except OSError as err:
            raise StorageError(f"cannot write {rel} to {dest} ({err}); check the URI and its write "
                               "permission or credentials") from None

    with ThreadPoolExecutor(max_workers=8) as pool:  # object stores are latency-bound: copy in parallel
        for _ in pool.map(copy, files):
            done += 1
            if done % 200 == 0:
                rate = done / max(time.time() - started, 1e-6)
                log.info("  %d/%d files, ETA %.0f s", done, len(files), (len(files) - done) / rate)
    log.info("uploaded %s in %.1f s", dest, time.time() - started)
    return dest


def fetch_dir(uri: str, dest: str | Path) -> Path:
    """Copy a directory from a storage URI (or local path) to the local folder `dest`; returns `dest`.

    Used by `jobs/evaluate.py --adapter s3://...` to score an adapter uploaded by an earlier job.
    """
    from pyarrow import fs as pafs

    filesystem, path, _ = open_uri(uri)
    info = filesystem.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        raise StorageError(f"{uri} is not a directory in storage; pass the folder that holds the adapter files")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(path, str(dest.resolve()), source_filesystem=filesystem,
                    destination_filesystem=pafs.LocalFileSystem())
    return dest
