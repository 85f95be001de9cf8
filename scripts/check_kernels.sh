#!/usr/bin/env bash
# Compile every adop/raster/kernels/*.cu to PTX with nvcc so a broken CUDA kernel cannot land (CI calls this).
# The kernels are loaded at run time by cupy.RawModule (NVRTC); nvcc with the same flags catches the same errors.
# Exits 0 with a notice when nvcc is not installed; non-zero on the first compile error.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1; then
    echo "nvcc not found; skipping"
    exit 0
fi
arch="${ADOP_CUDA_ARCH:-sm_80}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
for src in adop/raster/kernels/*.cu; do
    [ -e "$src" ] || continue
    if nvcc -arch="$arch" --ptx --std=c++14 --fmad=false -Iadop/raster/kernels -Werror all-warnings \
        -o "$out/$(basename "$src" .cu).ptx" "$src"; then
        echo "ok   $src"
    else
        echo "FAIL $src" >&2
        status=1
    fi
done
exit $status
