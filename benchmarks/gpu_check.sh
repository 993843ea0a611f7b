#!/usr/bin/env bash
# The GPU checks in one call (a machine with a CUDA GPU, torch and triton installed; the package importable):
# the CUDA tests, the memory benchmark's grid with the Triton kernel, and training throughput on the GPU (CartPole-v1;
# VisualMatch-v0 on the GPU and on the same machine's CPU).
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]      # about 8 minutes (the steps' own time limits add up to 14)
#
# Each step has its own time limit and the script goes on after a failure; logs and result files go to OUT_DIR
# (default benchmarks/results/gpu). On the project's lent GPU machines the missing pure-Python packages travel as
# wheels in .whl/ (gymnasium, stable-baselines3, sb3-contrib, farama-notifications): they are installed first.
set -u
OUT_DIR=${1:-benchmarks/results/gpu}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$OUT_DIR/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" \
    | tee -a "$OUT_DIR/gpu.txt"

echo "== CUDA tests"
timeout 240 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py tests/test_triton.py -k cuda 2>&1 \
    | tee "$OUT_DIR/tests.log" | tail -25

echo "== memory benchmark"
timeout 200 python3 benchmarks/memory_scan.py --device cuda --repeats 5 2>&1 | tee "$OUT_DIR/memory_scan.log" | tail -45
cp benchmarks/results/memory_scan_cuda.* "$OUT_DIR/" 2>/dev/null

echo "== training throughput"
timeout 120 python3 benchmarks/train_throughput.py --device cuda --env CartPole-v1 --repeats 2 2>&1 \
    | tee "$OUT_DIR/train_throughput.log" | tail -12
cp benchmarks/results/train_throughput_cuda.* "$OUT_DIR/" 2>/dev/null

echo "== training throughput on VisualMatch-v0, GPU and the same machine's CPU"
for device in cuda cpu; do
    timeout 150 python3 benchmarks/train_throughput.py --device $device --env VisualMatch-v0 --repeats 2 \
        --output train_throughput_visualmatch_$device 2>&1 | tee "$OUT_DIR/train_throughput_visualmatch_$device.log" | tail -10
    cp benchmarks/results/train_throughput_visualmatch_$device.* "$OUT_DIR/" 2>/dev/null
done
ls "$OUT_DIR"
