#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go: the GPU tests of the pre-training objective, then
# the throughput benchmark (bf16-mixed, torch.compile) per proxy scale.
#   bash scripts/gpu_checks.sh [OUT_DIR] [SCALES...]
# Writes OUT_DIR/gpu-tests.log, OUT_DIR/throughput.json and OUT_DIR/throughput.log.
set -uo pipefail
out=${1:-.}; shift || true
scales=${*:-20M 60M 150M 300M}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/test_pretrain_gpu.py 2>&1 | tee "$out/gpu-tests.log"
# shellcheck disable=SC2086
python3 -m benchmarks.throughput --device cuda --bf16 --compile --scales $scales \
    --batch-size "${BATCH:-16}" --seq-len 1024 --vocab-size 32000 --repeats "${REPEATS:-3}" \
    --json "$out/throughput.json" 2>&1 | tee "$out/throughput.log"
