#!/usr/bin/env bash
# Prepares what bench/gpu_check.sh needs on a lent GPU machine whose image has CUDA but not
# this project's Debian libraries: builds build-gpu (CUDA on; oneDNN, MPI and NCCL off, so the
# only CPU libraries are OpenBLAS, libpng, zlib, cJSON and inih) and packs gpu-bundle.tar.xz:
#   bin/   dmdr and the kernel, tensor, parity and data suites
#   lib/   libdmdr.so and the libraries above (the CUDA ones are the device image's own)
#   data/  the Fashion-MNIST files (the teacher and the data suite read them)
# About 45 MB, under the device tool's 64 MiB carry. Then:
#   run(command="bash bench/gpu_check.sh $OUT/gpu", carry=["gpu-bundle.tar.xz"])
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvcc >/dev/null || { echo "gpu_bundle: no nvcc on PATH (CUDA 13: /usr/local/cuda/bin)"; exit 1; }
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dcuda=enabled \
    -Donednn=disabled -Dmpi=disabled -Dnccl=disabled >/dev/null
meson compile -C build-gpu >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu-bundle/bin" "$stage/gpu-bundle/lib" "$stage/gpu-bundle/data"
cp build-gpu/tools/dmdr "$stage/gpu-bundle/bin/"
for s in kernels tensor parity data; do cp "build-gpu/test/test_$s" "$stage/gpu-bundle/bin/"; done
cp build-gpu/libdmdr.so "$stage/gpu-bundle/lib/"
# the libraries outside glibc, libstdc++ and CUDA that the program and the suites load
{ ldd build-gpu/libdmdr.so build-gpu/tools/dmdr build-gpu/test/test_* 2>/dev/null || true; } |
    awk '/=> \// {print $3}' | sort -u |
    grep -E 'openblas|gfortran|quadmath|gomp|cjson|inih|png|libz\.' |
    while read -r lib; do cp -L "$lib" "$stage/gpu-bundle/lib/"; done
cp /usr/share/datasets/fashion-mnist/*.gz "$stage/gpu-bundle/data/"
tar -C "$stage" -cJf gpu-bundle.tar.xz gpu-bundle
echo "gpu_bundle: $(du -h gpu-bundle.tar.xz | cut -f1) gpu-bundle.tar.xz ($(ls "$stage/gpu-bundle/lib" | tr '\n' ' '))"
