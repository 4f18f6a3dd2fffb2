"""The package follows the data flow: no module imports one later in it (function-level imports included).

    base (config, errors, records, stats, progress, ...) → data → prompts → score → tasks → train → infer
    → analyze → report → orchestration (experiment, sweep, rundir, commands, cli)

Scoring sits before tasks and infer because their CPU stages call it; it must stay importable without torch.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tradeoff_ray"
LAYERS = [
    ("base", ("config", "errors", "records", "stats", "progress", "storage", "stage_cache", "score_options",
              "ray_session")),
    ("data", ("data", "models")),
    ("prompts", ("prompts",)),
    ("score", ("score",)),
    ("tasks", ("tasks",)),
    ("train", ("train",)),
    ("infer", ("infer",)),
    ("analyze", ("analyze",)),
    ("report", ("report",)),
    ("orchestration", ("experiment", "sweep", "rundir", "commands", "cli", "__init__")),
]


def layer_of(module: str) -> int:
    """Rank of 'tradeoff_ray.a.b' by its first component."""
    head = module.split(".")[1] if module.count(".") else "__init__"
    for rank, (_, names) in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"module {module} is in no layer of tests/unit/test_layers.py; add it where it belongs")


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tradeoff_ray"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tradeoff_ray"))
    return out


def test_no_module_imports_a_later_stage_of_the_data_flow():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = "tradeoff_ray." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        mine = layer_of(module)
        for target in imports(path):
            if target != "tradeoff_ray" and layer_of(target) > mine:
                bad.append(f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not bad, "imports against the data flow:\n  " + "\n  ".join(bad)


def test_scoring_never_imports_torch():
    for path in sorted((PACKAGE / "score").rglob("*.py")):
        names = {a.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(n == "torch" or n.startswith("torch.") for n in names), path
