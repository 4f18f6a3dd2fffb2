"""Reading run dirs: what is required, and clear errors naming the file for what is broken."""
from __future__ import annotations

import pytest

from tradeoff_ray.analyze.load import RunDirError, label_kind, load_run, parse_label
from tradeoff_ray.errors import UserError
from tests.run_fixture import make_run_dir, mmlu_record, sql_record, write_run_dir


def test_fixture_loads_every_part(tmp_path):
    run = load_run(make_run_dir(tmp_path / "run"))
    assert run.labels == ["baseline", "lora-r8", "lora-r16", "lora-r16@step10", "lora-r16@step20", "gold"]
    assert [m.key for _, m in run.measures()] == ["spider", "mmlu_0shot", "mmlu_5shot"]
    assert set(run.training) == {"lora-r8", "lora-r16"} and run.stages
    assert "gold" not in run.results["mmlu"] and len(run.sql["baseline"]) == 48


def test_labels():
    assert parse_label("lora-r16@step30") == ("lora-r16", 30) and parse_label("x") == ("x", None)
    assert [label_kind(x) for x in ("baseline", "gold", "a@step1", "trial_3")] == [
        "baseline", "gold", "checkpoint", "variant"]


def test_missing_run_dir_config_or_evals(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="no config.yaml"):
        load_run(tmp_path / "empty")
    with pytest.raises(UserError, match="no evaluated label"):
        load_run(write_run_dir(tmp_path / "noevals"))


def test_malformed_records_name_file_and_line(tmp_path):
    run_dir = write_run_dir(tmp_path / "r", sql={"baseline": [sql_record("baseline", "e0", 1)]})
    path = run_dir / "evals" / "baseline" / "spider.jsonl"
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(RunDirError, match=r"spider\.jsonl:2 is not valid JSON"):
        load_run(run_dir)
    path.write_text('{"label": "baseline", "example_id": "e0"}\n')
    with pytest.raises(RunDirError, match=r"spider\.jsonl:1 lacks SqlResult field\(s\) \['db_id'"):
        load_run(run_dir)


def test_unregistered_task_file_and_empty_label_dir_are_named(tmp_path):
    run_dir = write_run_dir(tmp_path / "r", sql={"baseline": [sql_record("baseline", "e0", 1)]})
    (run_dir / "evals" / "half").mkdir()
    run = load_run(run_dir)
    assert run.labels == ["baseline"] and "half" in run.warnings[0]
    (run_dir / "evals" / "baseline" / "bird.jsonl").write_text("")
    run = load_run(run_dir)
    assert run.labels == ["baseline"] and any("no task named 'bird'" in w for w in run.warnings)


def test_run_dirs_of_the_old_layout_still_load(tmp_path):
    """sql.jsonl and mmlu_<k>shot.jsonl (run dirs written before tasks were plug-ins) read as spider and mmlu."""
    run_dir = write_run_dir(tmp_path / "r", sql={"baseline": [sql_record("baseline", "e0", 1)]},
                            mmlu={"baseline": {0: [mmlu_record("baseline", "q0", 1)], 5: [mmlu_record("baseline", "q0", 0, shots=5)]}})
    d = run_dir / "evals" / "baseline"
    (d / "spider.jsonl").rename(d / "sql.jsonl")
    lines = (d / "mmlu.jsonl").read_text().splitlines()
    (d / "mmlu_0shot.jsonl").write_text(lines[0] + "\n")
    (d / "mmlu_5shot.jsonl").write_text(lines[1] + "\n")
    (d / "mmlu.jsonl").unlink()
    run = load_run(run_dir)
    assert [m.key for _, m in run.measures()] == ["spider", "mmlu_0shot", "mmlu_5shot"] and run.sql["baseline"][0].ex == 1


def test_unknown_record_fields_are_ignored(tmp_path):
    run_dir = write_run_dir(tmp_path / "r", sql={"baseline": [sql_record("baseline", "e0", 1)]})
    path = run_dir / "evals" / "baseline" / "spider.jsonl"
    path.write_text(path.read_text().replace('"label"', '"new_field": 1, "label"'))
    assert load_run(run_dir).sql["baseline"][0].ex == 1
