#!/usr/bin/env bash
# Every check that needs a CUDA device, as one command for a lent GPU machine (about 7 minutes on one H200:
# the table ~90 s, the tests ~110 s, compiling the pair ~4 min):
#   1. the throughput table (benchmarks/gpu.py: batch 48, 16x160x160, bf16, channels_last_3d), recorded in
#      benchmarks/results/gpu-<GPU name>.json: commit it, then `python benchmarks/render.py`;
#   2. the training, evaluation and NaN tests on the CUDA path (train.device: auto picks the GPU);
#   3. torch.compile of the thesis's pair, if time is left (benchmarks/results/gpu-<GPU name>-compile.json).
# Logs go to $LOG_DIR (default benchmarks/out/). Needs the project's Python packages and ffmpeg on PATH.
#
#   benchmarks/gpu_check.sh                  # BUDGET=480 seconds for the whole check by default
#   LOG_DIR=/somewhere BUDGET=600 benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir="${LOG_DIR:-benchmarks/out}"
mkdir -p "$log_dir"
budget="${BUDGET:-480}"
start=$SECONDS
left() { echo $(( budget - (SECONDS - start) )); }
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$log_dir/gpu.txt"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'" || exit 1

echo "== 1. throughput table" | tee -a "$log_dir/gpu.txt"
timeout "$(left)" python3 benchmarks/gpu.py 2>&1 | tee -a "$log_dir/gpu.txt"

echo "== 2. training tests on CUDA ($(left) s left)" | tee "$log_dir/tests.txt"
test_time=$(( $(left) - 90 ))  # leave 90 s for step 3's start
[ "$test_time" -gt 0 ] || test_time=1
timeout "$test_time" python3 -m pytest -q -p no:cacheprovider -o addopts="" \
  "tests/test_training.py::test_two_epoch_run_and_evaluation_through_the_cli" \
  "tests/test_training.py::test_non_finite_loss_stops_naming_epoch_and_step" 2>&1 | tee -a "$log_dir/tests.txt"

if [ "$(left)" -gt 80 ]; then
  echo "== 3. torch.compile, thesis pair ($(left) s left)" | tee -a "$log_dir/gpu.txt"
  timeout "$(left)" python3 benchmarks/gpu.py --compile --models convlstm_c2d63,p3d199 2>&1 | tee -a "$log_dir/gpu.txt"
fi
echo "done in $((SECONDS - start)) s"
