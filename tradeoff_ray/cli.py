"""`tradeoff-ray`: the command line. Each command is a thin shell over a module in `commands/`.

Imports are lazy so `tradeoff-ray --help` and `score-sql` start fast and never load torch or Ray
unless the command needs them.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable, Optional

import typer

from tradeoff_ray.errors import UserError
from tradeoff_ray.score_options import SqlScoringOptions

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure what LoRA/QLoRA fine-tuning costs: Spider execution accuracy gained vs MMLU knowledge kept.",
    pretty_exceptions_enable=False,
)

ConfigArg = typer.Argument(None, help="Experiment YAML (default: configs/quickstart.yaml).", show_default=False)
SetOpt = typer.Option(None, "--set", help="Override a setting: section.key=value (YAML value). Repeatable.")


def _call(module: str, fn: str = "main", /, **kwargs) -> None:
    """Run `tradeoff_ray.commands.<module>.<fn>(**kwargs)`; a UserError prints its message and exits 2."""
    try:
        target: Callable = getattr(importlib.import_module(f"tradeoff_ray.commands.{module}"), fn)
        code = target(**kwargs)
    except UserError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.secho("interrupted; finished stages are kept (resume with --resume RUN_DIR)", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code or 0)


@app.command()
def run(
    config: Optional[Path] = ConfigArg,
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue a run dir; finished stages are reused."),
    overrides: Optional[list[str]] = SetOpt,
) -> None:
    """The whole experiment: baseline eval -> train variants -> eval variants -> analysis -> report."""
    _call("run", config=config, resume=resume, overrides=overrides or [])


@app.command()
def data(
    config: Optional[Path] = ConfigArg,
    spider_dir: Optional[str] = typer.Option(None, help="Spider root (overrides data.spider_dir)."),
    mmlu_dir: Optional[str] = typer.Option(None, help="MMLU root in Hendrycks CSV layout (overrides data.mmlu_dir)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the balanced MMLU subset (overrides data.seed)."),
    per_category: Optional[int] = typer.Option(None, help="Questions per category in the balanced subset."),
    manifest: Optional[Path] = typer.Option(None, help="Write the balanced subset's manifest (JSON) here."),
    overrides: Optional[list[str]] = SetOpt,
) -> None:
    """Inspect the data: counts per split and category, missing databases, the balanced subset."""
    _call("data", config=config, spider_dir=spider_dir, mmlu_dir=mmlu_dir, seed=seed,
          per_category=per_category, manifest=manifest, overrides=overrides or [])


@app.command(name="eval")
def eval_(
    config: Optional[Path] = ConfigArg,
    adapter: Optional[Path] = typer.Option(None, help="LoRA adapter dir to evaluate (default: the base model)."),
    out: Optional[Path] = typer.Option(None, help="Directory for per-example results (default: a new run dir)."),
    overrides: Optional[list[str]] = SetOpt,
) -> None:
    """Score a model (optionally with a LoRA adapter) on Spider dev and the MMLU subset."""
    _call("eval", config=config, adapter=adapter, out=out, overrides=overrides or [])


@app.command()
def train(
    config: Optional[Path] = ConfigArg,
    variant: Optional[str] = typer.Option(None, help="Train only this variant (default: all)."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default: a new one under output_dir)."),
    overrides: Optional[list[str]] = SetOpt,
) -> None:
    """Fine-tune LoRA/QLoRA variants with Ray Train."""
    _call("train", config=config, variant=variant, out=out, overrides=overrides or [])


@app.command()
def tune(
    config: Optional[Path] = ConfigArg,
    out: Optional[Path] = typer.Option(None, help="Run directory (default: a new one under output_dir)."),
    overrides: Optional[list[str]] = SetOpt,
) -> None:
    """Explore LoRA settings with Ray Tune; each trial reports validation loss, Spider EX and MMLU accuracy."""
    _call("tune", config=config, out=out, overrides=overrides or [])


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory written by `tradeoff-ray run`.")) -> None:
    """Rebuild report.md / report.html from a run's saved results (no recomputation)."""
    _call("report", run_dir=run_dir)


@app.command(name="score-sql")
def score_sql(
    spider_dir: Path = typer.Option(..., help="Spider root holding database/<db_id>/<db_id>.sqlite."),
    predictions: Path = typer.Option(..., help="JSON list or JSONL of records with db_id, gold and prediction."),
    out: Optional[Path] = typer.Option(None, help="Write scored JSONL here (default: <predictions>.scored.jsonl)."),
    keep_distinct: bool = typer.Option(SqlScoringOptions.keep_distinct, help=SqlScoringOptions.help("keep_distinct")),
    timeout: float = typer.Option(SqlScoringOptions.timeout_s, help=SqlScoringOptions.help("timeout_s")),
    max_rows: int = typer.Option(SqlScoringOptions.max_rows, help=SqlScoringOptions.help("max_rows")),
    workers: int = typer.Option(0, help="Parallel worker processes (0 = one per core)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Re-score an existing predictions file with Spider execution accuracy."""
    _call("score_sql", spider_dir=spider_dir, predictions=predictions, out=out, keep_distinct=keep_distinct,
          timeout=timeout, max_rows=max_rows, workers=workers, force=force)


def main() -> None:  # pragma: no cover - console entry alias
    app(prog_name="tradeoff-ray")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
