#!/usr/bin/env bash
# The engine-limit benchmark on a lent GPU machine (benchmarks/eval_throughput.py --engine-limit).
#   bash scripts/gpu_engine_limit.sh pack GGUF [CARRY_DIR]  # here: make the parts (28 x <= 56 MiB)
#   bash scripts/gpu_engine_limit.sh unpack                 # there: packages, Spider+MMLU+GSM8K, GGUF -> safetensors
#   bash scripts/gpu_engine_limit.sh bench raw|pipeline|parity[,...]
#   [ADAPTERS=N MERGED=M] bash scripts/gpu_engine_limit.sh start  # all parts in the background: raw on GPU 0 and pipeline,parity
#                                              # on GPU 1 at once when there are two GPUs, else one after another
#   bash scripts/gpu_engine_limit.sh poll      # progress, GPU use, and the results so far into $OUT
#   bash scripts/gpu_engine_limit.sh wait S    # poll every 60 s until done or S seconds, then poll once more
# `start` outlives the 10-minute limit of one device call: the run goes on while the machine stays warm.
# The machine is released after ~30 s without a call, so chain the calls back to back: e.g. one call
# `unpack; start; wait 380`, then calls of `wait 580` until `poll` says DONE.
# `pack` installs the evaluation pins of scripts/gpu_constraints.txt for CPython 3.12 (pip --target,
# no deps), gzips them (-1: xz of the 1.1 GB of packages takes most of an hour on 2 cores), tars them with
# Spider, MMLU, GSM8K and the GGUF (python3 ../shared/tools/qwen_coder_gguf.py DIR) and splits the tar into
# CARRY_DIR/parts/pNN (default .carry; the device tool carries the checkout it was started in, so point it
# at that checkout's .carry). One call per part, `carry: [".carry/parts/pNN"]`, command
# `mkdir -p /root/bundle && cp .carry/parts/pNN /root/bundle/` (~5 s each); then unpack, then bench.
# Files under /root survive between calls only while the machine stays warm.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD:/root/site PATH=/root/site/bin:$PATH PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 RAY_DEDUP_LOGS=1
export TRADEOFF_RAY_CACHE=/root/cache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /root/bundle
GGUF_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
case "${1:-}" in
  pack)
    set -e
    dest=${3:-.carry}; work=$(mktemp -d); plat=()
    for n in 17 24 27 28 31 34 35; do plat+=(--platform manylinux_2_${n}_x86_64); done
    mapfile -t pins < <(grep -v '^#' scripts/gpu_constraints.txt | grep -v '# train' | sed 's/ *#.*//' | grep .)
    python3 -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp \
      --target "$work/site" "${plat[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 "${pins[@]}"
    tar -C "$work/site" -cf - . | gzip -1 > "$work/site.tar.gz"
    tar -C ../shared/data -cf "$work/data.tar" spider mmlu gsm8k
    ln -s "$(realpath "$2")" "$work/model.gguf"
    mkdir -p "$dest/parts" && rm -f "$dest"/parts/p*
    tar -C "$work" -chf - site.tar.gz data.tar model.gguf | split -b 56M -d -a 2 - "$dest/parts/p"
    rm -rf "$work"; ls "$dest/parts" | wc -l ;;
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
      --spider-dir /root/bundle/files/spider --mmlu-dir /root/bundle/files/mmlu --gsm8k-dir /root/bundle/files/gsm8k \
      --state-dir /root/elim ${ADAPTERS:+--adapters $ADAPTERS} \
      --json-out "$OUT/engine_limit.json" 2>&1 | grep --line-buffered -v "^\s*$\|it/s]\|Processed prompts" \
      | tee "$OUT/bench_$2.log" | grep -v "^INFO\|^(EngineCore\|^(bench" | tail -80 ;;
  start)
    mkdir -p /root/elim
    run_parts() {  # GPU PARTS: one benchmark process, full log under /root/elim
      CUDA_VISIBLE_DEVICES=$1 VLLM_CACHE_ROOT=/root/vllm-cache-$1 python3 benchmarks/eval_throughput.py --engine-limit \
        --parts "$2" --model /root/qwen --spider-dir /root/bundle/files/spider --mmlu-dir /root/bundle/files/mmlu \
        --gsm8k-dir /root/bundle/files/gsm8k --state-dir /root/elim ${ADAPTERS:+--adapters $ADAPTERS} ${MERGED:+--merged-labels $MERGED} \
        > "/root/elim/log_$2.txt" 2>&1
      echo "exit $?" >> "/root/elim/log_$2.txt"
    }
    export -f run_parts
    if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
      setsid nohup bash -c 'run_parts 0 raw' >/dev/null 2>&1 &
      setsid nohup bash -c 'run_parts 1 pipeline,parity' >/dev/null 2>&1 &
    else
      setsid nohup bash -c 'run_parts 0 raw; run_parts 0 pipeline,parity' >/dev/null 2>&1 &
    fi
    sleep 2; ls /root/elim ;;
  poll)
    for f in /root/elim/log_*.txt; do
      [ -f "$f" ] || continue
      echo "--- $f"; grep -v "^\s*$\|it/s]\|Processed prompts\|^INFO\|^(EngineCore\|DEBUG" "$f" | tail -n 8
      cp "$f" "$OUT/"
    done
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
    cp /root/elim/engine_limit*.json "$OUT/" 2>/dev/null
    if grep -q "^exit" /root/elim/log_*pipeline*.txt 2>/dev/null && grep -q "^exit" /root/elim/log_raw.txt 2>/dev/null
    then echo DONE; else echo RUNNING; fi ;;
  wait)
    t0=$(date +%s)
    while [ $(( $(date +%s) - t0 )) -lt "${2:-540}" ]; do
      if bash "$0" poll 2>/dev/null | grep -q '^DONE'; then break; fi
      sleep 60; echo "[wait] $(( $(date +%s) - t0 )) s: $(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader)"
    done
    bash "$0" poll ;;
  *) echo "usage: $0 pack GGUF [CARRY_DIR] | unpack | bench PARTS | start | poll | wait SECONDS" >&2; exit 2 ;;
esac
