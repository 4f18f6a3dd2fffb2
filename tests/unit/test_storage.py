"""Uploading a run's results: what a report needs is copied byte for byte, weights only when asked."""
from __future__ import annotations

from pathlib import Path

import pytest

from tradeoff_ray.storage import (StorageError, fetch_cached, fetch_dir, is_node_local, open_uri, select_files,
                                  upload_dir, upload_run_dir)

RESULTS = [  # what reports, notebooks and `tradeoff-ray report` read back
    "config.yaml", "metrics.json", "report.md", "report.html", "plots/tradeoff.png",
    "manifests/spider_dev.json", "stages/baseline_eval.json", "evals/baseline/sql.jsonl",
    "evals/lora-r16/mmlu_0shot.jsonl", "evals/lora-r16/summary.json", "train/lora-r16/result.json",
    "tune/trials.csv", "ray/tune_exp/trial_0/result.json", "ray/tune_exp/trial_0/params.json",
    "ray/train_exp/checkpoint_manager_snapshot.json",
]
WEIGHTS = [
    "train/lora-r16/adapter/adapter_model.safetensors", "train/lora-r16/adapter/adapter_config.json",
    "train/lora-r16/checkpoints/step-30/adapter_model.safetensors",
    "ray/train_exp/checkpoint_000000/checkpoint/adapter_config.json",
    "ray/tune_exp/trial_0/checkpoint-12/optimizer.pt", "merged/model.bin",
]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "quickstart-20260101-000000"
    for i, rel in enumerate(RESULTS + WEIGHTS):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(f"{rel}\n".encode() * (i + 1))
    (run / "metrics.json.tmp").write_text("half-written")
    return run


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_results_are_copied_and_weights_left_out(run_dir: Path, tmp_path: Path) -> None:
    dest = upload_run_dir(run_dir, str(tmp_path / "store"))
    assert Path(dest) == tmp_path / "store" / run_dir.name
    assert _tree(Path(dest)) == set(RESULTS)
    for rel in RESULTS:
        assert (Path(dest) / rel).read_bytes() == (run_dir / rel).read_bytes()


def test_include_weights_copies_everything_but_partial_files(run_dir: Path, tmp_path: Path) -> None:
    dest = Path(upload_run_dir(run_dir, str(tmp_path / "store"), include_weights=True))
    assert _tree(dest) == set(RESULTS + WEIGHTS)
    assert (dest / WEIGHTS[0]).read_bytes() == (run_dir / WEIGHTS[0]).read_bytes()


def test_selection_is_sorted_and_relative(run_dir: Path) -> None:
    files = [str(p) for p in select_files(run_dir)]
    assert files == sorted(RESULTS)


def test_file_uri_and_relative_path(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    dest = upload_run_dir(run_dir, f"file://{tmp_path}/via-uri")
    assert _tree(Path(dest)) == set(RESULTS)
    monkeypatch.chdir(tmp_path)
    dest = upload_run_dir(run_dir, "relative/store")
    assert Path(dest) == tmp_path / "relative" / "store" / run_dir.name and _tree(Path(dest)) == set(RESULTS)


def test_upload_again_overwrites(run_dir: Path, tmp_path: Path) -> None:
    upload_run_dir(run_dir, str(tmp_path / "store"))
    (run_dir / "metrics.json").write_text('{"resumed": true}')
    dest = Path(upload_run_dir(run_dir, str(tmp_path / "store")))
    assert (dest / "metrics.json").read_text() == '{"resumed": true}'


def test_unknown_scheme_names_the_uri(run_dir: Path) -> None:
    with pytest.raises(StorageError, match="foo://bucket/x") as err:
        upload_run_dir(run_dir, "foo://bucket/x")
    assert "s3://" in str(err.value)


def test_missing_run_dir_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        upload_run_dir(tmp_path / "nope", str(tmp_path / "store"))


def test_object_store_destination_is_a_uri() -> None:
    # region given in the URI: pyarrow does not look it up over the network
    filesystem, path, scheme = open_uri("s3://my-bucket/prefix/runs?region=us-east-1")
    assert (type(filesystem).__name__, path, scheme) == ("S3FileSystem", "my-bucket/prefix/runs", "s3")


def test_fetch_dir_round_trip(run_dir: Path, tmp_path: Path) -> None:
    dest = upload_run_dir(run_dir, str(tmp_path / "store"), include_weights=True)
    got = fetch_dir(f"{dest}/train/lora-r16/adapter", tmp_path / "fetched")
    assert _tree(got) == {"adapter_model.safetensors", "adapter_config.json"}
    with pytest.raises(StorageError, match="not a directory"):
        fetch_dir(f"{dest}/no-such-adapter", tmp_path / "x")


# ---------------------------------------------------------------- hand-offs between nodes


def _adapter(root: Path, content: bytes = b"weights") -> Path:
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "adapter_model.safetensors").write_bytes(content)
    (root / "adapter_config.json").write_text('{"r": 4}')
    (root / "sub" / "x.txt").write_text("nested")
    return root


def test_handoff_round_trip_through_storage(tmp_path: Path) -> None:
    """What training uploads is what another node's cache gets, byte for byte, under the same folder name."""
    src = _adapter(tmp_path / "run" / "adapter")
    uri = upload_dir(src, f"file://{tmp_path}/store/artifacts/run-v/adapter")
    got = fetch_cached(uri, cache=tmp_path / "node-b")
    assert got.name == "adapter" and got.is_relative_to(tmp_path / "node-b" / "fetched")
    assert _tree(got) == _tree(src)
    assert all((got / f).read_bytes() == (src / f).read_bytes() for f in _tree(src))
    assert not [p for p in (tmp_path / "store" / "artifacts" / "run-v").iterdir() if ".tmp-" in p.name]


def test_fetch_is_cached_by_content(tmp_path: Path) -> None:
    uri = upload_dir(_adapter(tmp_path / "a"), str(tmp_path / "store" / "adapter"))
    first = fetch_cached(uri, cache=tmp_path / "cache")
    (first / "marker").write_text("a second fetch of the same content is this copy")
    assert fetch_cached(uri, cache=tmp_path / "cache") == first
    upload_dir(_adapter(tmp_path / "b", b"retrained, longer weights"), uri)  # new content at the same URI
    second = fetch_cached(uri, cache=tmp_path / "cache")
    assert second != first and (second / "adapter_model.safetensors").read_bytes() == b"retrained, longer weights"
    assert not (second / "marker").exists()


def test_fetch_of_missing_weights_names_the_uri(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="nothing-here"):
        fetch_cached(str(tmp_path / "nothing-here"), cache=tmp_path / "cache")


@pytest.mark.parametrize("uri,shared,local", [
    (None, False, True), ("/mnt/runs", False, True), ("file:///mnt/runs", False, True), ("/mnt/nfs", True, False),
    ("s3://bucket/p", False, False), ("gs://bucket/p", False, False)])
def test_node_local_storage(uri, shared, local) -> None:
    assert is_node_local(uri, shared=shared) is local
