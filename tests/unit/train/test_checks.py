"""QLoRA asked for where it cannot run fails before Ray starts, naming the variant and the fix."""
from __future__ import annotations

import pytest

from tradeoff_ray.config import ExperimentConfig, LoraVariant
from tradeoff_ray.train.checks import QuantizationUnavailable, check_can_train
from tradeoff_ray.train.loop import load_model

NF4 = LoraVariant(name="qlora-r16", max_steps=1, quantization="nf4")
PLAIN = LoraVariant(name="lora-r16", max_steps=1)


def test_nf4_without_cuda_names_the_variant_and_the_fix(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(QuantizationUnavailable, match="qlora-r16.*quantization: none"):
        check_can_train(ExperimentConfig(), [PLAIN, NF4], cuda=False, bnb=True)


def test_nf4_without_bitsandbytes_says_what_to_install(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(QuantizationUnavailable, match="bitsandbytes"):
        check_can_train(ExperimentConfig(), [NF4], cuda=True, bnb=False)


def test_nf4_with_use_gpu_false_is_refused_even_on_a_cluster():
    cfg = ExperimentConfig(training={"use_gpu": False}, ray={"address": "ray://head:10001"})
    with pytest.raises(QuantizationUnavailable, match="use_gpu"):
        check_can_train(cfg, [NF4], cuda=True, bnb=True)


def test_cluster_runs_leave_the_gpu_check_to_the_workers():
    cfg = ExperimentConfig(ray={"address": "ray://head:10001"})
    check_can_train(cfg, [NF4], cuda=False, bnb=False)  # the driver may be a CPU head node


def test_plain_lora_needs_nothing(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    check_can_train(ExperimentConfig(), [PLAIN], cuda=False, bnb=False)


def test_worker_refuses_nf4_on_cpu(tiny_model_dir):
    with pytest.raises(QuantizationUnavailable, match="no GPU"):
        load_model(str(tiny_model_dir), NF4, device="cpu")
