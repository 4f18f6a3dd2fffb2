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

import hashlib
import json
import logging
import shutil
import time
import uuid
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


# ------------------------------------------------------------------ hand-offs between Ray processes
#
# On a cluster the process that writes weights (a Ray Train driver, a Tune trial) and the one that reads
# them (an engine actor on another node) share no disk. Every hand-off therefore goes through the run's
# storage (`ray.storage_path`: a shared path, s3:// or gs://): the writer calls `upload_dir`, records
# the URI it returns, and each reader calls `fetch_cached` to get a copy in its own node's cache.


def is_node_local(uri: str | None, *, shared: bool = False) -> bool:
    """True when `uri` is a plain path (or file://) that nothing declares shared: other nodes see their own
    disk at that path. None (the run dir's default) is node-local too."""
    if uri is None:
        return True
    if "://" in uri and not uri.lower().startswith("file://"):
        return False
    return not shared


def upload_dir(local_dir: str | Path, uri: str) -> str:
    """Copy the directory `local_dir` to exactly `uri` (a path or URI, replaced when it exists); returns `uri`.

    On a local or shared file system the copy is written beside `uri` and renamed into place, so a reader
    never sees half a directory; an object store has no rename, but readers only learn the URI from the
    writer after this returns.
    """
    from pyarrow import fs as pafs

    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise StorageError(f"cannot upload {local_dir}: it is not a directory")
    filesystem, path, _ = open_uri(uri)
    local = pafs.LocalFileSystem()
    try:
        if isinstance(filesystem, pafs.LocalFileSystem):
            parent = str(PurePosixPath(path).parent)
            filesystem.create_dir(parent, recursive=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            filesystem.create_dir(tmp, recursive=True)  # copy_files makes the sub-folders, not the top one
            pafs.copy_files(str(local_dir.resolve()), tmp, source_filesystem=local, destination_filesystem=filesystem)
            if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
                filesystem.delete_dir(path)
            filesystem.move(tmp, path)
        else:
            if filesystem.get_file_info(path).type == pafs.FileType.Directory:
                filesystem.delete_dir(path)
            pafs.copy_files(str(local_dir.resolve()), path, source_filesystem=local, destination_filesystem=filesystem)
    except OSError as err:
        raise StorageError(f"cannot write {local_dir} to {uri} ({err}); check the storage path (ray.storage_path "
                           "or --storage) and its write permission or credentials") from None
    return uri


def listing(uri: str) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every file under the directory `uri`, sorted: its version."""
    from pyarrow import fs as pafs

    filesystem, path, _ = open_uri(uri)
    info = filesystem.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        raise StorageError(f"{uri} is not a directory in storage; it should hold weights a training uploaded "
                           "(check ray.storage_path and that the training finished)")
    found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    root = path.rstrip("/") + "/"
    return sorted((f.path[len(root):], int(f.size or 0), int(f.mtime_ns or 0))
                  for f in found if f.type == pafs.FileType.File)


def fetch_cached(uri: str | Path, *, cache: Path) -> Path:
    """A copy of the storage directory `uri` in this node's `cache`; returns its local path.

    Keyed by the URI and its listing (names, sizes, modification times), so a second fetch of the same
    content is free and new content at the same URI is fetched again. Written to a temporary sibling and
    renamed, so processes on one node racing for the same directory each see a whole copy. The copy keeps
    the source's folder name (`.../train/<variant>/adapter` -> `.../adapter`).
    """
    from pyarrow import fs as pafs

    uri = str(uri)
    version = listing(uri)
    key = hashlib.sha256(json.dumps([uri, version]).encode()).hexdigest()[:16]
    name = PurePosixPath(uri.split("://", 1)[-1].rstrip("/")).name or "dir"
    dest = Path(cache) / "fetched" / key / name
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{name}.tmp-{uuid.uuid4().hex[:8]}"
    filesystem, path, _ = open_uri(uri)
    try:
        tmp.mkdir()
        pafs.copy_files(path, str(tmp), source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem())
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another process on this node finished the same copy first
                raise
    except OSError as err:
        raise StorageError(f"cannot fetch {uri} into {dest.parent} ({err}); check that this node can read the "
                           "storage path and write its cache (TRADEOFF_RAY_CACHE or model.cache_dir)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("fetched %s -> %s", uri, dest)
    return dest
