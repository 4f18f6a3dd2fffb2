"""The config is the only way settings enter: every shipped YAML loads; bad input fails clearly."""
from pathlib import Path

import pytest

from tradeoff_ray.config import CONFIG_DIR, ConfigError, ExperimentConfig, load_config, parse_overrides


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert path.read_text().startswith("#"), "presets open with the command that runs them"


def test_default_is_quickstart() -> None:
    assert load_config().name == "quickstart"


def test_seed_configs_match_the_studies() -> None:
    s1 = load_config(CONFIG_DIR / "seed1_llama3_8b.yaml")
    got = {(v.r, v.alpha, v.dropout, v.learning_rate, v.max_steps, v.quantization) for v in s1.training.variants}
    assert got == {(16, 32, 0.05, 2e-5, 2048, "nf4"), (32, 64, 0.1, 1e-5, 2048, "nf4")}
    assert all(len(v.target_modules) == 7 for v in s1.training.variants)
    s2 = load_config(CONFIG_DIR / "seed2_mistral_7b.yaml")
    got2 = {(v.r, v.alpha, v.learning_rate, v.num_epochs, v.per_device_batch_size * v.gradient_accumulation_steps)
            for v in s2.training.variants}
    assert got2 == {(8, 16, 2e-4, 3, 4), (8, 16, 1e-4, 5, 4)}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_unknown_key_names_key_and_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "eval:\n  batchsize: 8\n"))
    msg = str(err.value)
    assert "eval.batchsize" in msg and "batch_size" in msg


def test_unknown_key_inside_a_variant(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "training:\n  variants:\n    - {name: a, max_steps: 3, rank: 8}\n"))
    assert "training.variants.0.rank" in str(err.value) and "alpha" in str(err.value)


def test_wrong_type_and_literal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"eval\.batch_size"):
        load_config(_write(tmp_path, "eval:\n  batch_size: many\n"))
    with pytest.raises(ConfigError, match=r"'eval\.engine': must be 'auto', 'hf' or 'vllm'"):
        load_config(_write(tmp_path, "eval:\n  engine: tgi\n"))


def test_variant_needs_exactly_one_length(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one of max_steps or num_epochs"):
        load_config(_write(tmp_path, "training:\n  variants:\n    - {name: a}\n"))


def test_missing_file_lists_shipped_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="quickstart.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_apply_and_validate() -> None:
    cfg = load_config(None, ["eval.batch_size=7", "data.dev_limit=null", "eval.mmlu_shots=[0, 5]"])
    assert cfg.eval.batch_size == 7 and cfg.data.dev_limit is None and cfg.eval.mmlu_shots == [0, 5]
    with pytest.raises(ConfigError, match="eval.nope"):
        load_config(None, ["eval.nope=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["eval.batch_size"])


def test_section_hash_tracks_only_named_sections() -> None:
    a = load_config(None)
    b = load_config(None, ["eval.batch_size=3"])
    assert a.section_hash("training") == b.section_hash("training")
    assert a.section_hash("eval") != b.section_hash("eval")


@pytest.mark.parametrize("override", ["training.variants.0.alpha=.inf", "training.cpus_per_worker=.inf",
                                      "eval.sql_timeout_s=.nan", "training.variants.0.learning_rate=-.inf"])
def test_non_finite_numbers_are_refused(override: str) -> None:
    with pytest.raises(ConfigError, match="finite"):
        load_config(None, [override])


def test_set_reaches_list_items_by_index() -> None:
    cfg = load_config(None, ["training.variants.0.r=8", "training.variants.0.alpha=16"])
    assert (cfg.training.variants[0].r, cfg.training.variants[0].alpha) == (8, 16)
    assert cfg.training.variants[0].name == "lora-r16"  # the rest of the item is kept
    with pytest.raises(ConfigError, match=r"list of 1 item\(s\); use an index 0..0"):
        load_config(None, ["training.variants.1.r=8"])


def test_broken_yaml_in_set_names_the_override() -> None:
    with pytest.raises(ConfigError, match=r"eval.mmlu_shots=\[0, 5.*not valid YAML"):
        load_config(None, ["eval.mmlu_shots=[0, 5"])


def test_unreadable_configs_get_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(empty)


def test_cache_root_prefers_model_cache_dir_then_the_env_var(tmp_path: Path, monkeypatch) -> None:
    from tradeoff_ray.config import cache_root

    monkeypatch.delenv("TRADEOFF_RAY_CACHE", raising=False)
    assert cache_root() == Path.home() / ".cache" / "tradeoff_ray"
    monkeypatch.setenv("TRADEOFF_RAY_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    cfg = load_config(None, [f"model.cache_dir={tmp_path / 'mine'}"])
    assert cache_root(cfg.model) == tmp_path / "mine"


def test_every_runtime_only_path_names_a_config_field() -> None:
    """A misspelt RUNTIME_ONLY entry would silently mark nothing."""
    from tradeoff_ray.config import RUNTIME_ONLY, _model_at

    for path in RUNTIME_ONLY:
        *parents, field = path.split(".")
        model = _model_at(ExperimentConfig, tuple(parents))
        assert model is not None and field in model.model_fields, path


LORA_R32 = ["training.variants=[{name: big, r: 32, alpha: 64, max_steps: 2}]"]


@pytest.mark.parametrize("serving", [["eval.adapters=lora"], ["eval.engine=vllm"]])
def test_lora_rank_above_the_served_limit_is_refused_on_load(serving: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"variant 'big' has r=32 > eval.vllm.max_lora_rank=16.*"
                                          r"set eval.vllm.max_lora_rank=32"):
        load_config(None, [*LORA_R32, *serving, "eval.vllm.max_lora_rank=16"])


def test_lora_rank_limit_applies_only_where_adapters_are_served_unmerged() -> None:
    for ok in (["eval.adapters=merged"], ["eval.engine=auto"], ["eval.engine=hf"], ["eval.vllm.max_lora_rank=32"]):
        load_config(None, [*LORA_R32, "eval.vllm.max_lora_rank=16", *ok])
    full = ["training.variants=[{name: all, method: full, r: 256, max_steps: 2}]", "eval.adapters=lora"]
    load_config(None, [*full, "eval.vllm.max_lora_rank=16"])  # a full fine-tune has no LoRA rank


def test_lora_serving_on_the_hf_engine_is_refused_on_load() -> None:
    with pytest.raises(ConfigError, match="eval.adapters=lora .* eval.engine=hf .*set eval.adapters=merged"):
        load_config(None, ["eval.adapters=lora", "eval.engine=hf"])


def test_vllm_without_a_gpu_per_actor_is_refused_on_load() -> None:
    with pytest.raises(ConfigError, match="set eval.gpus_per_generation_actor"):
        load_config(None, ["eval.engine=vllm", "eval.gpus_per_generation_actor=0"])


@pytest.mark.parametrize("space,top", [("{grid: [8, 128]}", 128), ("{randint: [4, 96]}", 96),
                                       ("{choice: [8, 80]}", 80)])
def test_tune_ranks_above_the_served_limit_are_refused_on_load(space: str, top: int) -> None:
    sweep = ["tune.enabled=true", "tune.base={name: s, r: 8, max_steps: 2}", f"tune.space.r={space}",
             "tune.search=random", "eval.engine=vllm"]
    with pytest.raises(ConfigError, match=rf"tune reaches LoRA rank r={top} .*max_lora_rank=64"):
        load_config(None, sweep)
    load_config(None, [*sweep, "eval.adapters=merged"])
    load_config(None, [*sweep, f"eval.vllm.max_lora_rank={top}"])


def test_enabled_tune_settings_are_checked_on_load_with_every_problem_listed() -> None:
    bad = ["tune.enabled=true", "tune.base={name: s, r: 8, max_steps: 2}", "tune.space.r={choice: [4, 8]}",
           "tune.scheduler=asha", "data.validation_fraction=0"]
    with pytest.raises(ConfigError) as err:
        load_config(None, bad)
    message = str(err.value)
    assert "set tune.search: random" in message and "data.validation_fraction > 0" in message
    assert "(got" not in message and "'model'" not in message  # the problems, not a dump of the config


def test_enabled_tune_without_a_base_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="tune needs tune.base"):
        load_config(None, ["tune.enabled=true"])
