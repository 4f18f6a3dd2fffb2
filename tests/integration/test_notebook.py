"""notebooks/tune_analysis.ipynb runs top to bottom on the saved fixture, from a trials table and from a ResultGrid."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "tune_analysis.ipynb"
FIXTURE = REPO / "tests" / "fixtures_tune"


def _run(cwd: Path) -> list:
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # python3 = ipykernel of this interpreter; a failing cell raises CellExecutionError with its traceback
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.parametrize("trials,cwd", [(None, REPO / "notebooks"), ("tests/fixtures_tune/result_grid", REPO)],
                         ids=["trials_csv_default", "result_grid"])
def test_notebook_runs_and_plots_the_pareto_front(trials: str | None, cwd: Path, monkeypatch) -> None:
    if trials:
        monkeypatch.setenv("TUNE_TRIALS", trials)
    else:
        monkeypatch.delenv("TUNE_TRIALS", raising=False)
    monkeypatch.delenv("TUNE_BASELINE", raising=False)
    outputs = _run(cwd)
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the Pareto front and the per-setting effects are plotted"

    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    with open(FIXTURE / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    expected = {r["trial_id"] for r in rows if r["pareto"] == "True"}
    assert f"{len(rows)} trials, {len(rows)} with both objectives, {len(expected)} on the Pareto front" in text
    assert "baseline: {'spider'" in text, "the base model is found next to the trials"
    last_table = outputs[-1]["data"]["text/plain"]  # the Pareto-optimal trials, one per row
    assert set(re.findall(r"\bt\d{3}\b", last_table)) == expected
