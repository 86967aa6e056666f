#!/usr/bin/env bash
# Every check that needs a CUDA device, as one command for a bare lent GPU machine: its image (PyTorch,
# torchvision, h5py, OpenCV, pandas, ...: benchmarks/lent_image_packages.txt) plus the wheels that
# benchmarks/fetch_wheels.sh put in .whl/ (snakemake, jsonschema, ffmpeg, ...: benchmarks/gpu_wheels.txt),
# carried with the working tree. Budget: 8 minutes on one H200 (BUDGET seconds, default 470); each step
# gets what is left, in this order:
#   1. the throughput table (benchmarks/gpu.py: batch 48, 16x160x160, bf16, channels_last_3d)
#      -> benchmarks/results/gpu-<GPU>.json
#   2. the feed benchmark's GPU mode (benchmarks/feed.py: training and evaluation through the real loader
#      / model only, target >= 0.9; host syncs per step) -> benchmarks/results/feed-<GPU>.json
#   3. the CUDA tests: training, evaluation and the NaN stop on the CUDA path (train.device: auto)
#   4. a rehearsal with its forecast at UCF101's batch sizes (48, 32) on a generated full-size tree
#      (benchmarks/rehearsal.py: 13,320 names; split 1, every configured model at full width)
#      -> benchmarks/results/gpu-<GPU>-rehearsal.json
# Commit the results files, then `python benchmarks/render.py`. Logs go to $LOG_DIR (default
# benchmarks/out/). Exit status: the number of steps that failed.
#
#   benchmarks/gpu_check.sh              # on the lent machine (README, "The GPU check")
#   benchmarks/gpu_check.sh --dry-run    # here, on the CPU: every step, cheaply (tests/test_gpu_check.py);
#                                        # results files go to $LOG_DIR, never to benchmarks/results/
set -uo pipefail
cd "$(dirname "$0")/.."
dry="${GPU_CHECK_DRY_RUN:-0}"
[ "${1:-}" = "--dry-run" ] && dry=1
log_dir="${LOG_DIR:-benchmarks/out}"
mkdir -p "$log_dir"
budget="${BUDGET:-470}"
python="${PYTHON:-python3}"
start=$SECONDS
left() { echo $(( budget - (SECONDS - start) )); }
failed=0
step() {  # step NAME COMMAND...: run with what is left of the budget, log it, count a failure
  local name="$1"; shift
  echo "== $name ($(left) s left)" | tee -a "$log_dir/check.txt"
  if [ "$(left)" -le 5 ]; then
    echo "SKIPPED $name: no time left" | tee -a "$log_dir/check.txt"; failed=$((failed + 1)); return
  fi
  if timeout "$(left)" "$@" >>"$log_dir/check.txt" 2>&1; then
    echo "OK $name" | tee -a "$log_dir/check.txt"
  else
    echo "FAILED $name (exit $?; $log_dir/check.txt)" | tee -a "$log_dir/check.txt"; failed=$((failed + 1))
  fi
}
export PYTHONUNBUFFERED=1

# The carried wheels, installed into a folder of their own (the image's packages stay as they are).
if compgen -G ".whl/*.whl" >/dev/null; then
  site="${WHEEL_SITE:-/tmp/vidrec-site}"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
    || { echo "installing the wheels in .whl/ failed"; exit 99; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
: >"$log_dir/check.txt"

if [ "$dry" = 1 ]; then
  echo "DRY RUN on the CPU: every step at toy sizes; results in $log_dir" | tee -a "$log_dir/check.txt"
  gpu="dry-run"
  results="$log_dir"
  gpu_args=(--device cpu --batch 2 --warmup 1 --steps 1 --models p3d63 --clip 4 32 32 --base-width 8 --threads 1
            --out "$results/gpu-$gpu.json")
  feed_args=(--device cpu --models r2plus1d_18 --base-width 8 --videos 2 --copies 1 --cpu-batch 1 --threads 1
             --out "$results/feed-$gpu.json")
  test_args=(--collect-only)
  rehearsal_args=(--plan-only)
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log_dir/check.txt"
  "$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'" || exit 98
  gpu="$(PYTHONPATH="benchmarks:$PYTHONPATH" "$python" -c "from record import slug; import torch; print(slug(torch.cuda.get_device_name(0)))")"
  results="benchmarks/results"
  gpu_args=()
  feed_args=(--device cuda)
  test_args=()
  rehearsal_args=()
fi

step "1. throughput table" "$python" benchmarks/gpu.py "${gpu_args[@]}"
step "2. feed: through the loader / model only" "$python" benchmarks/feed.py "${feed_args[@]}"
step "3. CUDA tests" "$python" -m pytest -q -p no:cacheprovider -o addopts="" "${test_args[@]}" \
  "tests/test_training.py::test_two_epoch_run_and_evaluation_through_the_cli" \
  "tests/test_training.py::test_non_finite_loss_stops_naming_epoch_and_step"
step "4. rehearsal with its forecast at UCF101's batch sizes" "$python" benchmarks/rehearsal.py \
  --cores "$(nproc)" --set "datasets.ucf101.splits=[1]" "${rehearsal_args[@]}" --out "$results/gpu-$gpu-rehearsal.json"
echo "done in $((SECONDS - start)) s; $failed step(s) failed" | tee -a "$log_dir/check.txt"
exit "$failed"
