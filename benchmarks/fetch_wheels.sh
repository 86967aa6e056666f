#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.sh needs on a lent GPU machine into .whl/ (ignored by git),
# exactly those pinned in benchmarks/gpu_wheels.txt (the image has the rest:
# benchmarks/lent_image_packages.txt), for that machine's Python and platform. Run it here, where pip
# reaches the registry; the lent machine reaches nothing, so the wheels travel with the working tree
# (the device tool's `carry: [".whl"]`), and gpu_check.sh installs them there (README, "The GPU check").
#
#   benchmarks/fetch_wheels.sh                     # Python 3.12 (the lent image's), Linux x86-64
#   PY_VERSION=3.11 DEST=/tmp/whl benchmarks/fetch_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py_version="${PY_VERSION:-3.12}"
dest="${DEST:-.whl}"
python="${PYTHON:-python3}"
mkdir -p "$dest"
platforms=()
for p in manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64 \
         manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64 any; do
  platforms+=(--platform "$p")
done
list() { grep "$1" benchmarks/gpu_wheels.txt | sed 's/#.*//; s/[[:space:]]*$//' | grep -v '^$' || true; }
mapfile -t binary < <(grep -v "source only" benchmarks/gpu_wheels.txt | sed 's/#.*//; s/[[:space:]]*$//' | grep -v '^$')
mapfile -t source < <(list "source only")
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$py_version" --implementation cp \
  "${platforms[@]}" -d "$dest" "${binary[@]}"
for req in "${source[@]}"; do  # published as source only: built here, and it must be pure Python (py3-none-any)
  "$python" -m pip wheel -q --no-deps -w "$dest" "$req"
  name="${req%%==*}"
  shopt -s nullglob nocaseglob
  built=("$dest"/"${name//-/_}"-*-py3-none-any.whl)
  shopt -u nullglob nocaseglob
  [ "${#built[@]}" -gt 0 ] || { echo "$req: its source builds no pure-Python wheel" >&2; exit 1; }
done
fetched=$(( ${#binary[@]} + ${#source[@]} ))
echo "$fetched wheels, $(du -sh "$dest" | cut -f1) in $dest"
# A device call carries at most 64 MiB with the working tree (about 3 MB): say so before it is refused.
if [ "$(du -sm "$dest" | cut -f1)" -gt 60 ]; then
  echo "$dest is over 60 MiB: with the working tree it may not fit a device call's 64 MiB" >&2
  exit 1
fi
