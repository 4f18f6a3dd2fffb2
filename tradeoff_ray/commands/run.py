"""`tradeoff-ray run [CONFIG] [--resume RUN_DIR]`: the whole experiment, stage-cached and resumable."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tradeoff_ray.config import ExperimentConfig, load_config
from tradeoff_ray.errors import UserError


def resolve(config: Path | None, resume: Path | None, overrides: list[str]) -> tuple[ExperimentConfig, Path | None]:
    """The config to run and the run dir to continue (None = a new one).

    With --resume the run's own config.yaml is used unless CONFIG is given too; either way
    finished stages whose inputs did not change are reused.
    """
    if resume is not None:
        resume = Path(resume)
        if not (resume / "config.yaml").exists():
            raise UserError(f"--resume {resume}: not a run directory (no config.yaml); pass a directory under runs/")
        return load_config(config or resume / "config.yaml", overrides), resume
    return load_config(config, overrides), None


def execute(config: Path | None = None, resume: Path | None = None, overrides: list[str] | None = None) -> Path:
    """Run the experiment and return its run directory."""
    from tradeoff_ray.data import notices
    from tradeoff_ray.experiment import Experiment
    from tradeoff_ray.ray_session import describe_target, decides_gpus, ray_session
    from tradeoff_ray.rundir import check_inputs, new_run_dir, save_config
    from tradeoff_ray.train.checks import check_can_train

    cfg, run_dir = resolve(config, resume, overrides or [])
    check_can_train(cfg, [] if cfg.tune.enabled else cfg.training.variants)  # fail before any work
    with notices.held():  # the estimate is the first line; the data loaders' notices follow it
        data = check_inputs(cfg, training=bool(cfg.training.variants) or cfg.tune.enabled)  # fail in seconds
        if run_dir is None:
            run_dir = new_run_dir(cfg)
        else:
            save_config(cfg, run_dir)
        experiment = Experiment(cfg, run_dir)
        estimate = experiment.prepare(data=data)
        # Every stage cached: nothing needs Ray, and starting it is most of a rerun's time (checkpoint
        # evaluations are not in the plan, so they keep Ray).
        needs_ray = not estimate.all_cached() or cfg.eval.evaluate_checkpoints
        where = f"on {describe_target(cfg.ray)}" if needs_ray else "no Ray needed"
        print(f"[run] {cfg.name}: {estimate.headline()} — model {cfg.model.name}, {len(cfg.training.variants)} "
              f"variant(s){', Tune sweep' if cfg.tune.enabled else ''}, {where}", flush=True)
    with ray_session(cfg.ray, wants_gpus=decides_gpus(cfg)) if needs_ray else contextlib.nullcontext():
        experiment.run()
    _print_headline(run_dir)
    return run_dir


def headline_measures(metrics: dict) -> list[dict]:
    """The measures of the trade-off table: every measure of the run, target first."""
    return list(metrics.get("run", {}).get("measures") or [])


def headline_rows(metrics: dict) -> list[tuple[str, ...]]:
    """Baseline and each variant: every measure with its delta, CI and p-value."""
    run = metrics.get("run", {})
    labels = [run.get("baseline")] + list(run.get("variants") or [])

    def pct(rate: dict | None) -> str:
        return "—" if not rate or rate.get("accuracy_pct") is None else f"{rate['accuracy_pct']:.1f}% (n={rate['n']})"

    def delta(d: dict | None) -> str:
        if not d or d.get("delta_pp") is None:
            return ""
        return f"{d['delta_pp']:+.1f} [{d['ci_low_pp']:+.1f}, {d['ci_high_pp']:+.1f}] p={d['p_value']:.3g}"

    rows = []
    for label in [lb for lb in labels if lb]:
        lab = metrics.get("labels", {}).get(label, {})
        comp = metrics.get("comparisons", {}).get(label, {})
        cells: list[str] = [label]
        for m in headline_measures(metrics):
            cells += [pct(lab.get(m["key"])), delta(comp.get(m["key"]))]
        rows.append(tuple(cells))
    return rows


def _print_headline(run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = json.loads((run_dir / "metrics.json").read_text())
    table = Table(title=f"trade-off vs baseline ({run_dir.name}); deltas: pp [95% paired bootstrap CI], McNemar p")
    table.add_column("label")
    for m in headline_measures(metrics):
        table.add_column(m["title"])
        table.add_column(f"Δ {m['title']}")
    for row in headline_rows(metrics):
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name, message in diverged_variants(metrics).items():
        console.print(f"[bold red]{name}: DIVERGED, not evaluated[/] — {message}", highlight=False)
    status = metrics.get("run", {}).get("status", "")
    if status and status != "ok":
        console.print(f"[bold red]run status: {status} — see the checks at the top of the report[/]")
        for title in metrics.get("checks", {}).get("failed", []):
            console.print(f"[red]  - {title}[/]")
    console.print(f"run dir: {run_dir}\nreport:  {run_dir / 'report.html'}")


def diverged_variants(metrics: dict) -> dict[str, str]:
    """{variant: message} of the variants whose training diverged (listed in the report, not evaluated)."""
    return {name: (metrics.get("training", {}).get(name) or {}).get("message") or "training diverged"
            for name in metrics.get("run", {}).get("diverged") or []}


def main(config: Path | None = None, resume: Path | None = None, overrides: list[str] | None = None) -> int:
    """Exit 1 when a variant diverged (the run finished the others and wrote the report)."""
    run_dir = execute(config, resume, overrides)
    return 1 if diverged_variants(json.loads((run_dir / "metrics.json").read_text())) else 0
