#!/usr/bin/env bash
# On the device, from the repository root, carrying .gpu (benchmarks/gpu/prepare.sh): A2S trained on
# DUTS-TR within BUDGET_S seconds, the CUDA test, the plugins' CUDA benchmarks. Everything goes to $OUT.
set -uo pipefail
out=${OUT:-/tmp/out}; mkdir -p "$out"
export PYTHONUNBUFFERED=1
t0=$(date +%s)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; echo "cores: $(nproc)"
  rm -rf /tmp/site /tmp/a2s-labels
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl
  export PYTHONPATH=/tmp/site
  python3 -c "import torch, timm, pydensecrf.densecrf, pydantic; print('torch', torch.__version__, 'timm', timm.__version__, torch.cuda.get_device_name(0))"
  [ -e ../shared ] || ln -s "$PWD/.gpu/shared" ../shared
  echo "setup $(( $(date +%s) - t0 ))s"
  BUDGET_S=${BUDGET_S:-420} A2S_OUT=$out/a2s A2S_LABELS=/tmp/a2s-labels timeout $(( ${BUDGET_S:-420} + 30 )) \
    bash plugins/salplug-a2s/training/train-on-gpu.sh
  echo "training ended at $(( $(date +%s) - t0 ))s"
  timeout 25 python3 -m pytest -q -p no:cacheprovider tests/test_chain.py -k gpu
  timeout 75 python3 -m pytest -q -s -p no:cacheprovider plugins/salplug-ldps/benchmarks plugins/salplug-lps/benchmarks \
    plugins/salplug-a2s/benchmarks -k cuda --benchmark-only --benchmark-columns=min,median,ops,rounds \
    --benchmark-json="$out/bench.json"
  echo "all done at $(( $(date +%s) - t0 ))s"
} 2>&1 | tee "$out/run.log"
