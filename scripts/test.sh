#!/usr/bin/env bash
# Builds Jing and runs every test with CTest: unit, conformance (../shared/fixtures), CLI and server
# tests in build/, then the libFuzzer targets (clang, ASan/UBSan) in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900) || status=1
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJING_FUZZ=ON \
  -DJING_CUDA=OFF -DJING_FUZZ_SECONDS="${JING_FUZZ_SECONDS:-60}" >/dev/null
cmake --build build-fuzz -j"$(nproc)"
(cd build-fuzz && ctest --output-on-failure -j"$(nproc)") || status=1
exit $status
