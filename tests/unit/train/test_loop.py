"""The SFT trainer on the tiny model, without Ray: what is trained on, and what a checkpoint holds."""
from __future__ import annotations

import pytest
import torch

from tradeoff_ray.config import LoraVariant
from tradeoff_ray.infer.engine import encode_text
from tradeoff_ray.tasks import TaskData, get_task
from tradeoff_ray.prompts import normalize_sql
from tradeoff_ray.train.dataset import build_sft_data
from tradeoff_ray.train.loop import build_trainer, lora_config, precision_args, sft_config, steps_for
from tradeoff_ray.train.ray_train import copy_adapter


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tiny_spider, tmp_path_factory):
    """A trainer after 4 steps at a high learning rate (LoRA B starts at zero, so it must move)."""
    from transformers import AutoTokenizer

    from tradeoff_ray.config import ExperimentConfig

    cfg = ExperimentConfig(model={"name": str(tiny_model_dir)}, data={"validation_fraction": 0.25})
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = build_sft_data(tiny_spider, cfg, tokenizer=tok, max_length=2048)
    variant = LoraVariant(name="unit", r=4, alpha=8, max_steps=4, save_steps=4, learning_rate=5e-2,
                          per_device_batch_size=4, max_length=2048)
    out = tmp_path_factory.mktemp("sft")
    trainer = build_trainer(model_path=str(tiny_model_dir), variant=variant, train_records=data.train.records,
                            validation_records=data.validation.records, output_dir=str(out), max_steps=4)
    trainer.train()
    return {"trainer": trainer, "tok": tok, "data": data, "cfg": cfg, "out": out}


def _prompt_len(labels: list[int]) -> int:
    return next(i for i, label in enumerate(labels) if label != -100)


def test_loss_is_taken_on_the_completion_only_and_eos_once(trained):
    tok, ds, data = trained["tok"], trained["trainer"].train_dataset, trained["data"]
    eos = tok.eos_token_id
    assert len(ds) == len(data.train)
    for row, rec in zip(ds, data.train.records):
        ids, labels = row["input_ids"], row["labels"]
        start = _prompt_len(labels)
        assert all(label == -100 for label in labels[:start])  # every prompt token is masked
        assert labels[start:] == ids[start:]  # every completion token is trained
        completion = tok.decode(ids[start:])
        sql = normalize_sql(rec["completion"][0]["content"])
        assert completion.startswith(sql) and completion[len(sql):].strip() == tok.eos_token
        assert labels[start:].count(eos) == 1  # the end-of-turn token is trained exactly once
        assert tok.eos_token * 2 not in tok.decode(ids)  # never doubled


def test_padding_is_not_trained(trained):
    trainer, tok = trained["trainer"], trained["tok"]
    rows = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(rows)
    assert batch["input_ids"].shape[0] == 4
    for i, row in enumerate(rows):
        labelled = batch["labels"][i][batch["labels"][i] != -100].tolist()
        assert labelled == [t for t in row["labels"] if t != -100]
        assert labelled.count(tok.eos_token_id) == 1


def test_training_prompt_is_exactly_the_evaluation_prompt(trained, tiny_spider):
    """The tokens before the SQL are the tokens evaluation feeds the model for the same question."""
    tok, ds, data, cfg = trained["tok"], trained["trainer"].train_dataset, trained["data"], trained["cfg"]
    by_id = {e.example_id: e for e in tiny_spider.train}
    examples = [by_id[eid] for eid in data.train.example_ids]
    rows, missing = get_task("spider").rows(cfg, TaskData(tiny_spider, "tiny"), examples, tok)
    assert not missing and len(rows) == len(ds)
    for row, train_row in zip(rows, ds):
        start = _prompt_len(train_row["labels"])
        assert train_row["input_ids"][:start] == encode_text(tok, row["prompt"])


def test_checkpoint_is_a_loadable_adapter_that_changes_outputs(trained, tiny_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    trainer, tok = trained["trainer"], trained["tok"]
    ckpt = trained["out"] / "checkpoint-4"
    adapter = copy_adapter(ckpt, tmp_path / "adapter", meta={"step": 4})
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                         "tradeoff_ray.json"]
    ids = torch.tensor([tok("SELECT count(*) FROM singer")["input_ids"]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter).eval()
        after = tuned(ids).logits
    assert not torch.allclose(before, after, atol=1e-4)
    # the saved adapter is the trained one: same outputs as the live trainer's model
    with torch.no_grad():
        live = trainer.model.eval()(ids.to(trainer.model.device)).logits.cpu()
    assert torch.allclose(after, live, atol=1e-5)


def test_cpu_config_is_fp32_without_checkpointing_and_evaluates_when_it_saves(tmp_path):
    v = LoraVariant(name="v", max_steps=30, save_steps=10)
    args = sft_config(v, output_dir=str(tmp_path), max_steps=30, on_gpu=False)
    assert not args.bf16 and not args.fp16 and not args.activation_checkpointing
    assert args.eval_steps == args.save_steps == 10
    assert args.completion_only_loss and not args.packing and args.max_length == v.max_length
    ckpt = sft_config(v.model_copy(update={"gradient_checkpointing": True}), output_dir=str(tmp_path), max_steps=30,
                      on_gpu=False)
    assert ckpt.activation_checkpointing and ckpt.activation_checkpointing_kwargs == {"use_reentrant": False}
    no_val = sft_config(v, output_dir=str(tmp_path), max_steps=30, on_gpu=False, has_validation=False)
    assert no_val.eval_strategy == "no"


@pytest.mark.parametrize("quantization,dtype,on_gpu,expect", [
    ("none", "auto", False, {"bf16": False, "fp16": False, "use_cpu": True, "activation_checkpointing": False}),
    ("none", "auto", True, {"bf16": True, "fp16": False, "use_cpu": False, "activation_checkpointing": False}),
    ("none", "float16", True, {"bf16": False, "fp16": True, "use_cpu": False}),
    ("nf4", "auto", True, {"bf16": True, "fp16": False, "use_cpu": False, "activation_checkpointing": True,
                           "activation_checkpointing_kwargs": {"use_reentrant": False}}),
])
def test_precision_plain_fp32_on_cpu_bf16_on_gpu_and_qlora_checkpoints(quantization, dtype, on_gpu, expect):
    args = precision_args(LoraVariant(name="v", max_steps=1, quantization=quantization), on_gpu=on_gpu, dtype=dtype)
    assert {k: args[k] for k in expect} == expect


def test_steps_for_epochs_splits_the_data_across_workers():
    v = LoraVariant(name="v", num_epochs=2, per_device_batch_size=4, gradient_accumulation_steps=1)
    assert steps_for(v, train_examples=40, num_workers=1) == 20
    assert steps_for(v, train_examples=40, num_workers=2) == 10
    assert steps_for(LoraVariant(name="v", max_steps=7), train_examples=40, num_workers=2) == 7


def test_lora_config_carries_the_variant():
    cfg = lora_config(LoraVariant(name="v", r=8, alpha=16, dropout=0.1, max_steps=1, target_modules=["q_proj"]))
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, set(cfg.target_modules)) == (8, 16, 0.1, {"q_proj"})
    assert lora_config(LoraVariant(name="v", max_steps=1, target_modules=["all-linear"])).target_modules == "all-linear"


def test_full_fine_tuning_keeps_fp32_master_weights_with_bf16_autocast_and_checkpoints():
    import torch

    from tradeoff_ray.train.loop import weights_dtype

    full = LoraVariant(name="f", method="full", max_steps=1)
    assert full.learning_rate == 1e-5 and LoraVariant(name="l", max_steps=1).learning_rate == 2e-4
    assert weights_dtype(full, "auto", on_gpu=True) == torch.float32
    assert weights_dtype(full, "bfloat16", on_gpu=True) == torch.bfloat16  # an explicit dtype is kept
    gpu = precision_args(full, on_gpu=True)
    assert gpu["bf16"] and not gpu["fp16"] and gpu["activation_checkpointing"]
    cpu = precision_args(full, on_gpu=False)
    assert not cpu["bf16"] and cpu["use_cpu"]
    with pytest.raises(ValueError, match="method full"):
        LoraVariant(name="q", method="full", quantization="nf4", max_steps=1)


def test_one_dtype_resolution_for_training_and_both_engines():
    import torch

    from tradeoff_ray.infer.hf_engine import resolve_device_dtype
    from tradeoff_ray.models import resolve_dtype

    assert resolve_dtype("auto", on_gpu=False) == torch.float32  # CPUs emulate bf16: fp32 is ~4x faster
    assert resolve_dtype("auto", on_gpu=True) == torch.bfloat16
    assert resolve_dtype("float16", on_gpu=False) == torch.float16  # an explicit dtype is kept
    assert resolve_device_dtype("auto", "cpu") == ("cpu", torch.float32)
    assert resolve_device_dtype("bfloat16", "cpu") == ("cpu", torch.bfloat16)


def test_worker_job_carries_the_config_objects_and_picks_threads():
    """The worker gets the typed settings (Ray pickles them), and on CPU as many threads as CPUs reserved."""
    import pickle

    from tradeoff_ray.config import ModelConfig, TrainingConfig
    from tradeoff_ray.train.loop import WorkerJob

    variant = LoraVariant(name="v", max_steps=2)
    job = WorkerJob(model_path="m", revision=None, model=ModelConfig(dtype="float32"),
                    training=TrainingConfig(cpus_per_worker=3), variant=variant, max_steps=2,
                    train_records=[{"prompt": "p"}], validation_records=[])
    back = pickle.loads(pickle.dumps(job))
    assert back == job and isinstance(back.variant, LoraVariant) and back.model.dtype == "float32"
    assert job.torch_threads() == 3
    assert WorkerJob(**{**job.__dict__, "training": TrainingConfig(torch_threads=2)}).torch_threads() == 2
