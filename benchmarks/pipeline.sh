#!/usr/bin/env bash
# End-to-end wall time of the demo: `snakemake --cores N report` on a clean clone (after install),
# then the no-op rerun (target <= 5 s) and the DAG build alone (dry run). benchmarks/pipeline.py
# (the clone's) then records the three times, the demo's accuracies from the run's report, every
# job's time and, where Chromium is installed, the report page's load, in
# benchmarks/results/pipeline.json of this checkout (--out PATH elsewhere).
#
#   benchmarks/pipeline.sh              # clones HEAD of this repository into a temporary folder
#   CORES=4 KEEP=1 benchmarks/pipeline.sh --out /tmp/pipeline.json
#
# "After install": the clone uses this checkout's virtualenv (.venv, made by `make test` or
# `make report`), so the time is the pipeline's, not pip's; the code run is the clone's (PYTHONPATH).
# Everything else (synthetic videos, shards, training, evaluation, report) is built from nothing inside the clone.
# HEAD is what runs: commit first, or the results file records a commit that is not what you changed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
command="${CORES:+CORES=$CORES }${KEEP:+KEEP=$KEEP }benchmarks/pipeline.sh${*:+ $*}"
out="$repo/benchmarks/results/pipeline.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "--out needs a path" >&2; exit 2; }; out="$(realpath -m "$2")"; shift 2 ;;
    *) echo "usage: [CORES=N] [KEEP=1] benchmarks/pipeline.sh [--out PATH]" >&2; exit 2 ;;
  esac
done
venv="${VENV:-$repo/.venv}"
cores="${CORES:-2}"
[ -x "$venv/bin/snakemake" ] || { echo "no $venv/bin/snakemake: run 'make test' or 'make report' first" >&2; exit 1; }
work="$(mktemp -d "${TMPDIR:-/tmp}/vidrec-pipeline.XXXXXX")"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
export PATH="$venv/bin:$PATH"
# the clone's own package, not the editable install's (which points at this checkout)
export PYTHONPATH="$work/clone${PYTHONPATH:+:$PYTHONPATH}"

seconds() {  # run "$@" quietly (log in $work/last.log), print its wall time in seconds
  local t0=$EPOCHREALTIME
  "$@" > "$work/last.log" 2>&1 || { tail -30 "$work/last.log" >&2; exit 1; }
  python3 -c "print(round($EPOCHREALTIME - $t0, 1))"
}

load="$(cut -d' ' -f1 /proc/loadavg)"
echo "commit $(git rev-parse --short HEAD), $(nproc) CPUs, load average $load, --cores $cores"
full=$(seconds snakemake --cores "$cores" report)
echo "demo report from a clean clone: $full s"
noop=$(seconds snakemake --cores "$cores" report)
grep -q "Nothing to be done" "$work/last.log" || { echo "the rerun was not a no-op:"; tail -30 "$work/last.log"; exit 1; }
echo "no-op rerun: $noop s (target <= 5 s)"
dry=$(seconds snakemake --cores "$cores" report --dry-run --quiet)
echo "DAG only (dry run): $dry s"
python3 benchmarks/pipeline.py --clone "$work/clone" --full "$full" --noop "$noop" --dry "$dry" \
  --cores "$cores" --load-start "$load" --command "$command" --out "$out"
echo "report: $work/clone/results/demo/report/index.html${KEEP:+ (kept)}"
