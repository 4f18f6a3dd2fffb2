"""The evaluation tests' tiny benchmarks, model config and adapter, shared with the task tests."""
from tests.unit.infer.conftest import lora_adapter_dir, tiny_cfg, tiny_mmlu_data, tiny_spider_data  # noqa: F401
