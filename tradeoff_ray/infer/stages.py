"""The evaluation stages as pure functions over lists of rows, and the Ray actors that wrap them.

Each stage is a function tests call directly (no Ray) and a thin callable class that Ray Data runs
in an actor pool: the class builds its state once in `__init__` (an engine, or a task's scorer with
its open connections) and its `__call__` converts a Ray Data batch to rows and back.

- engine stage: a row's request (tasks/base.py: 'generate' or 'choice') -> raw_generation / logprobs
  (`serving.serve_rows`, the same function the long-lived vLLM engine actors run)
- score stage: the row's task scores it (SQL execution, the chosen MMLU option, the GSM8K number)

Scoring code never imports torch: the score actor imports only the task and `tradeoff_ray.score`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from tradeoff_ray.config import VllmConfig
from tradeoff_ray.infer.engine import Engine, Generation
from tradeoff_ray.infer.vllm_engine import AdapterRef
from tradeoff_ray.tasks import Row, Task

# --------------------------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine inside an actor (picklable, config objects included; the model is loaded where it
    runs)."""

    kind: str  # a key of ENGINES
    model_path: str
    dtype: str = "auto"
    batch_size: int = 32
    threads: int | None = None
    revision: str | None = None
    adapters: tuple[AdapterRef, ...] = ()  # vLLM: adapters served unmerged, by label
    default_adapter: str | None = None  # the adapter the `Engine` protocol methods use
    vllm: VllmConfig = field(default_factory=VllmConfig)  # eval.vllm, for kind 'vllm'
    presets: dict[str, str] = field(default_factory=dict)  # kind 'preset': prompt -> the text to answer
    # Set by the planners: the base is resolved, and `weights` (a storage ref of trained weights) fetched
    # and merged, on the node that builds the engine (`adapters.node_model`); model_path is then ignored.
    base: Any = None  # config.ModelConfig
    weights: str | None = None


class PresetEngine:
    """An `Engine` that answers each prompt with a text fixed in advance: the gold check serves every task's
    reference outputs through it, so they are scored by exactly the path a model's outputs take."""

    def __init__(self, presets: dict[str, str]) -> None:
        self.presets = dict(presets)
        self.tokenizer = None

    def describe(self) -> str:
        return f"preset predictions ({len(self.presets)} reference outputs, no model)"

    def generate(self, prompts: list[str], *, max_new_tokens: int, stop: list[str]) -> list[Generation]:
        missing = [p for p in prompts if p not in self.presets]
        if missing:
            raise ValueError(f"no preset output for {len(missing)} prompt(s), e.g. {missing[0][:80]!r}")
        return [Generation(text=self.presets[p], n_new_tokens=0, seconds=0.0) for p in prompts]

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        raise ValueError("preset predictions hold generated texts only; a log-likelihood task has no gold output")


def on_this_node(spec: EngineSpec) -> EngineSpec:
    """`spec` with local paths of this node: the base resolved here, trained weights and unmerged adapters
    fetched from storage into this node's cache (and a LoRA merged there)."""
    import dataclasses

    if spec.base is None:
        return spec
    from tradeoff_ray.infer.adapters import fetch_weights, node_model

    served = node_model(spec.base, spec.weights)
    adapters = tuple(dataclasses.replace(a, path=str(fetch_weights(a.path, spec.base))) for a in spec.adapters)
    return dataclasses.replace(spec, model_path=served.path, revision=served.revision, adapters=adapters,
                               base=None, weights=None)


def _preset_engine(spec: EngineSpec) -> Engine:
    return PresetEngine(spec.presets)


def _hf_engine(spec: EngineSpec) -> Engine:
    from tradeoff_ray.infer.hf_engine import HfEngine

    return HfEngine(spec.model_path, dtype=spec.dtype, batch_size=spec.batch_size, threads=spec.threads,
                    revision=spec.revision)


def _vllm_engine(spec: EngineSpec) -> Engine:
    from tradeoff_ray.infer.vllm_engine import VllmEngine

    return VllmEngine(spec.model_path, cfg=spec.vllm, dtype=spec.dtype, adapters=spec.adapters,
                      default_adapter=spec.default_adapter)


# Engine kind -> builder. The builders import their engine module when called, so an actor that runs one
# engine never imports the others (torch, vllm).
ENGINES: dict[str, Callable[[EngineSpec], Engine]] = {
    "preset": _preset_engine,
    "hf": _hf_engine,
    "vllm": _vllm_engine,
}


def build_engine(spec: EngineSpec) -> Engine:
    """The `Engine` a spec describes, built from this node's copies of the weights."""
    builder = ENGINES.get(spec.kind)
    if builder is None:
        raise ValueError(f"unknown engine kind {spec.kind!r}; EngineSpec.kind must be one of {sorted(ENGINES)}")
    return builder(spec if spec.kind == "preset" else on_this_node(spec))


# ------------------------------------------------------------------------------------------ pure stages


def engine_rows(engine: Any, rows: list[Row]) -> list[Row]:
    """Rows plus the engine's outputs (raw_generation / logprobs, n_new_tokens, gen_s, engine_error), in the
    order of `rows`."""
    from tradeoff_ray.infer.serving import serve_rows

    if not rows:
        return []
    rows = [{"label": "", "adapter": None, **r} for r in rows]
    done = [r for chunk in serve_rows(engine, [{**r, "_i": i} for i, r in enumerate(rows)]) for r in chunk]
    done.sort(key=lambda r: r["_i"])
    return [{k: v for k, v in r.items() if k != "_i"} for r in done]


def score_rows(task: Task, scorer: Any, rows: list[Row]) -> list[Row]:
    """The task's verdict columns added to served rows (`scorer` from `task.open_scorer`)."""
    return task.score_rows(scorer, [clean_row(r) for r in rows])


def score_here(task: Task, cfg: Any, rows: list[Row]) -> list[Row]:
    """Score `rows` in this process with a scorer opened and closed around them."""
    scorer = task.open_scorer(cfg)
    try:
        return score_rows(task, scorer, rows)
    finally:
        task.close_scorer(scorer)


def clean_row(row: Row) -> Row:
    """A row with pandas' NaN for missing values turned back into None (Ray Data batches are DataFrames)."""
    return {k: (None if _missing(v) else v) for k, v in row.items()}


def _missing(value: Any) -> bool:
    try:
        return value is None or value != value  # None or NaN
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------ Ray actor shells


def _records(batch: Any) -> list[Row]:
    """A Ray Data batch (pandas) as row dicts with plain Python values."""
    rows = batch.to_dict("records")
    for r in rows:
        for k, v in r.items():
            if hasattr(v, "tolist"):  # numpy arrays / scalars from Arrow list columns
                r[k] = v.tolist()
    return [clean_row(r) for r in rows]


def _frame(rows: Iterable[Row]):
    import pandas as pd

    return pd.DataFrame(list(rows))


class EngineStage:
    """Ray Data stage: an engine loaded once per actor; each call serves one batch of rows."""

    def __init__(self, spec: EngineSpec) -> None:
        self.engine = build_engine(spec)

    def __call__(self, batch):
        return _frame(engine_rows(self.engine, _records(batch)))


class ScoreStage:
    """Ray Data stage: a CPU actor holding one task's scorer (e.g. read-only connections to the databases
    it has seen)."""

    def __init__(self, task: Task, cfg: Any) -> None:
        self.task = task
        self.scorer = task.open_scorer(cfg)

    def __call__(self, batch):
        return _frame(score_rows(self.task, self.scorer, _records(batch)))


def by_prompt(rows: Sequence[Row]) -> list[Row]:
    """Rows in prompt-text order, so each batch holds prompts that share a long prefix (same database
    schema, same MMLU subject and shots) — which the HF engine runs once per batch."""
    return sorted(rows, key=lambda r: r["prompt"])
