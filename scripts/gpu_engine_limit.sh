#!/usr/bin/env bash
# The engine-limit benchmark on a lent GPU machine (issue: evaluation at engine speed).
#   bash scripts/gpu_engine_limit.sh part NN              # copy carried part NN to /root/bundle
#   bash scripts/gpu_engine_limit.sh unpack               # assemble: packages, Spider+MMLU, GGUF -> safetensors
#   bash scripts/gpu_engine_limit.sh bench raw|pipeline|parity[,...]
# Parts are made here by splitting one tar of site.tar.gz (the pinned packages of scripts/gpu_constraints.txt,
# installed for CPython 3.12 by ../shared/tools/gpu_bundle.py), data.tar (Spider, MMLU) and model.gguf
# (python3 ../shared/tools/qwen_coder_gguf.py) into 56 MiB pieces under the carried .carry/parts/.
# Files under /root survive between calls only while the machine stays warm.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD:/root/site PATH=/root/site/bin:$PATH PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 RAY_DEDUP_LOGS=1
export TRADEOFF_RAY_CACHE=/root/cache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /root/bundle
GGUF_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
case "${1:-}" in
  part)
    cp "${CARRY:-.}/.carry/parts/p$2" /root/bundle/ && ls /root/bundle | wc -l ;;
  unpack)
    set -e
    cd /root/bundle && cat p* | tar xf - && rm -f p*
    echo "$GGUF_SHA  model.gguf" | sha256sum -c -
    mkdir -p /root/site files && tar xzf site.tar.gz -C /root/site && tar xf data.tar -C files && rm site.tar.gz data.tar
    cd - >/dev/null
    python3 -c "import vllm, ray, pydantic, sqlglot, torch; print('vllm', vllm.__version__, 'ray', ray.__version__, \
'pydantic', pydantic.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0))"
    t0=$(date +%s)
    python3 -c "from pathlib import Path; from tradeoff_ray.models import convert_gguf; \
convert_gguf(Path('/root/bundle/model.gguf'), Path('/root/qwen'))"
    echo "GGUF -> safetensors: $(( $(date +%s) - t0 )) s"; ls -la /root/qwen ;;
  bench)
    python3 benchmarks/eval_throughput.py --engine-limit --parts "$2" --model /root/qwen \
      --spider-dir /root/bundle/files/spider --mmlu-dir /root/bundle/files/mmlu --state-dir /root/elim \
      --json-out "$OUT/engine_limit.json" 2>&1 | grep --line-buffered -v "^\s*$\|it/s]\|Processed prompts" \
      | tee "$OUT/bench_$2.log" | grep -v "^INFO\|^(EngineCore\|^(bench" | tail -80 ;;
  *) echo "usage: $0 part NN | unpack | bench PARTS" >&2; exit 2 ;;
esac
