"""Writes the synthetic Tune fixture of notebooks/tune_analysis.ipynb (run once; outputs are committed).

    python tests/fixtures_tune/make_fixture.py

SYNTHETIC TEST DATA: the metrics below are made up (plausible for an 8B model on Spider/MMLU) so the
notebook has something to plot; they are not measurements. Two forms of the same 8 trials:
  trials.csv        the flat table `tradeoff-ray tune` writes to <run dir>/tune/trials.csv
  result_grid/      a Ray Tune experiment directory (ResultGrid) written by Ray's own Tuner
  evals/baseline/summary.json   the base model's scores, as a run dir holds them
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL = ATTN + ["gate_proj", "up_proj", "down_proj"]
#        r  alpha dropout  lr     modules spider mmlu_0shot eval_loss
TRIALS = [
    (8, 16, 0.05, 1e-5, ATTN, 0.648, 0.662, 0.412),
    (8, 16, 0.05, 1e-4, ALL, 0.702, 0.648, 0.358),
    (16, 32, 0.05, 2e-5, ALL, 0.681, 0.659, 0.377),
    (16, 32, 0.10, 2e-4, ALL, 0.716, 0.631, 0.349),
    (32, 64, 0.10, 1e-5, ATTN, 0.655, 0.664, 0.405),
    (32, 64, 0.05, 1e-4, ALL, 0.700, 0.641, 0.352),
    (16, 32, 0.10, 1e-4, ATTN, 0.679, 0.652, 0.366),
    (32, 64, 0.10, 2e-4, ATTN, 0.698, 0.628, 0.361),
]
BASELINE = {"spider": 0.612, "mmlu_0shot": 0.667}


def rows() -> list[dict]:
    out = []
    for i, (r, alpha, dropout, lr, modules, ex, mmlu, loss) in enumerate(TRIALS):
        out.append({"trial_id": f"t{i:03d}", "r": r, "alpha": alpha, "dropout": dropout, "learning_rate": lr,
                    "max_steps": 512, "num_epochs": "", "target_modules": ",".join(modules), "quantization": "nf4",
                    "eval_loss": loss, "train_loss": round(loss - 0.04, 3), "spider": ex, "mmlu_0shot": mmlu,
                    "steps": 512, "adapter_dir": f"runs/sweep-20260101-000000/tune/trials/t{i:03d}/adapter",
                    "status": "complete"})
    for row in out:  # Pareto-optimal: no other trial at least as good on both and better on one
        row["pareto"] = not any(o["spider"] >= row["spider"] and o["mmlu_0shot"] >= row["mmlu_0shot"]
                                and (o["spider"], o["mmlu_0shot"]) != (row["spider"], row["mmlu_0shot"])
                                for o in out)
    return out


def write_csv(table: list[dict]) -> None:
    with open(HERE / "trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    summary = {"label": "baseline", "tasks": {
        "spider": {"measures": {"spider": {"accuracy_pct": 100 * BASELINE["spider"], "n": 972}}},
        "mmlu": {"measures": {"mmlu_0shot": {"accuracy_pct": 100 * BASELINE["mmlu_0shot"], "n": 200}}}}}
    (HERE / "evals" / "baseline").mkdir(parents=True, exist_ok=True)
    (HERE / "evals" / "baseline" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def write_result_grid(table: list[dict]) -> None:
    import ray
    from ray import tune

    by_id = {r["trial_id"]: r for r in table}

    def trainable(config: dict) -> None:
        row = by_id[config["trial_id"]]
        tune.report({k: row[k] for k in ("eval_loss", "train_loss", "spider", "mmlu_0shot", "steps", "adapter_dir")})

    def setting(key: str):  # the flat config of the real sweep: config/r, config/learning_rate, ...
        return tune.sample_from(lambda spec: by_id[spec.config.trial_id][key])

    space = {"trial_id": tune.grid_search(list(by_id))}
    space |= {k: setting(k) for k in ("r", "alpha", "dropout", "learning_rate", "max_steps", "target_modules",
                                      "quantization")}
    storage = HERE / "_tmp"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tune.Tuner(trainable, param_space=space,
                   tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: t.config["trial_id"]),
                   run_config=tune.RunConfig(name="result_grid", storage_path=str(storage), verbose=0)).fit()
    finally:
        ray.shutdown()
    dest = HERE / "result_grid"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(str(storage / "result_grid"), dest)
    shutil.rmtree(storage)
    keep = {"params.json", "progress.csv", "result.json"}  # all ExperimentAnalysis reads besides the state
    for path in dest.rglob("*"):
        if path.is_file() and path.parent != dest and path.name not in keep:
            path.unlink()
    for path in dest.glob("*"):
        if path.is_file() and not path.name.startswith("experiment_state"):
            path.unlink()


if __name__ == "__main__":
    table = rows()
    write_csv(table)
    write_result_grid(table)
    print(f"wrote {HERE / 'trials.csv'} ({sum(r['pareto'] for r in table)} of {len(table)} Pareto) and result_grid/")
