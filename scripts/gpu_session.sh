#!/usr/bin/env bash
# Steps run on the lent GPU machine after `bash .carry/unpack.sh` (see scripts/gpu_carry.sh).
#   bash scripts/gpu_session.sh env|bench|headline [SECONDS]
# Everything it measures is written under $OUT (the device tool brings that folder back); the run
# directory lives under /root/runs so a later call on the same warm machine resumes it.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.:/root/site2:/root/site PATH=/root/site/bin:$PATH PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export TRADEOFF_RAY_CACHE=/root/cache RAY_DEDUP_LOGS=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SPIDER=/root/bundle/files/spider MMLU=/root/bundle/files/mmlu
step=${1:-env}; budget=${2:-540}

env_check() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 - <<'EOF'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
for m in ("ray", "trl", "peft", "transformers", "bitsandbytes", "vllm", "datasets", "pydantic", "sqlglot"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:  # report every missing piece, not only the first
        print(m, "IMPORT FAILED:", type(e).__name__, e)
EOF
  ls $SPIDER | head -3; ls $MMLU | head -3
}

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /root/site2 .whl/*.whl
fi

case "$step" in
  env)
    env_check 2>&1 | tee "$OUT/env.txt"
    ;;
  bench)
    env_check 2>&1 | tee "$OUT/env.txt"
    peak=$(python3 -c "import torch;n=torch.cuda.get_device_name(0);print(989 if 'H100' in n else 989)")
    timeout 200 python3 benchmarks/train_throughput.py --model bundled --steps 24 --warmup 4 --batch 16 \
      --seq-len 512 --peak-tflops "$peak" --json-out "$OUT/train_smollm2.json" 2>&1 | grep -v "^\s*$" | tail -40 \
      | tee "$OUT/train_smollm2.txt"
    timeout 170 python3 benchmarks/train_throughput.py --model random-llama-8b --steps 10 --warmup 3 --batch 4 \
      --seq-len 1024 --gradient-checkpointing --peak-tflops "$peak" --json-out "$OUT/train_llama8b.json" 2>&1 \
      | grep -v "^\s*$" | tail -40 | tee "$OUT/train_llama8b.txt"
    timeout 200 python3 benchmarks/eval_throughput.py --spider-dir $SPIDER --n 972 --n-baseline 48 \
      --batch-size 512 --cpus-per-generation-actor 2 --json-out "$OUT/eval_throughput.json" 2>&1 \
      | grep -v "logging_progress\|^\s*$" | tail -60 | tee "$OUT/eval_throughput.txt"
    ;;
  vllm)
    # vLLM runs here and agrees with HF? Otherwise later headline calls use the HF engine.
    if timeout 240 python3 scripts/vllm_parity.py 2>&1 | grep -v "^INFO\|^(EngineCore\|^\s*$" | tail -40 \
        | tee "$OUT/vllm_parity.txt"; [ "${PIPESTATUS[0]}" = 0 ]; then rm -f /root/use_hf; else touch /root/use_hf; fi
    ;;
  headline)
    [ -f /root/use_hf ] && EXTRA_SET="${EXTRA_SET:-} --set eval.engine=hf" && echo "vLLM unusable here: HF engine"
    run=$(ls -d /root/runs/headline-smollm2-* 2>/dev/null | tail -1)
    args=(configs/headline_smollm2_gpu.yaml --set data.spider_dir=$SPIDER --set data.mmlu_dir=$MMLU
          --set output_dir=/root/runs ${EXTRA_SET:-})
    [ -n "$run" ] && args+=(--resume "$run")
    timeout -s INT "$budget" python3 -m tradeoff_ray.cli run "${args[@]}" 2>&1 \
      | grep --line-buffered -v "logging_progress\|streaming_executor\|issue_detector\|To avoid\|unnecessary\|To change\|DataContext\|or disable\|worker on average\|worker at the start\|PlacementGroupCleaner\|^\s*$" > "$OUT/headline_log.txt"
    echo "exit: ${PIPESTATUS[0]}" | tee -a "$OUT/headline_log.txt"
    tail -60 "$OUT/headline_log.txt"
    run=$(ls -d /root/runs/headline-smollm2-* 2>/dev/null | tail -1)
    if [ -n "$run" ]; then
      tar czf "$OUT/headline_run.tar.gz" -C "$(dirname "$run")" --exclude='*.safetensors' --exclude='*.pt' \
        --exclude='*.bin' --exclude='ray' --exclude='checkpoint_*' "$(basename "$run")"
      ls -la "$OUT"
    fi
    ;;
esac
