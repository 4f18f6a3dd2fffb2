"""Build a run's report from its saved results: metrics.json, plots/*.png, report.md, report.html.

Reads only the run dir (no model, no torch, no Ray), so `tradeoff-ray report RUN_DIR` can rebuild
everything at any time in about a second; `tradeoff-ray run` calls the same function as its last stage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeoff_ray.analyze.metrics import write_metrics
from tradeoff_ray.analyze.tradeoff import N_BOOT
from tradeoff_ray.report.html import render_html
from tradeoff_ray.report.markdown import render_markdown
from tradeoff_ray.report.plots import render_plots
from tradeoff_ray.report.sections import build_blocks


def build_report_with_metrics(run_dir: str | Path, *, n_boot: int = N_BOOT) -> tuple[Path, Path, dict[str, Any]]:
    """Like `build_report`, also returning the metrics dict (for callers that print a summary)."""
    run_dir = Path(run_dir)
    _, metrics = write_metrics(run_dir, n_boot=n_boot)
    plots = {name: str(path.relative_to(run_dir)) for name, path in render_plots(metrics, run_dir / "plots").items()}
    blocks = build_blocks(metrics, plots)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    md_path.write_text(render_markdown(blocks), encoding="utf-8")
    html_path.write_text(render_html(blocks, base_dir=run_dir, title=f"Trade-off report: {metrics['run']['name']}"),
                         encoding="utf-8")
    return md_path, html_path, metrics


def build_report(run_dir: str | Path, *, n_boot: int = N_BOOT) -> tuple[Path, Path]:
    """Write metrics.json, plots/*.png, report.md and a self-contained report.html into run_dir."""
    md_path, html_path, _ = build_report_with_metrics(run_dir, n_boot=n_boot)
    return md_path, html_path
