#!/usr/bin/env bash
# Seeds for fuzz_gguf: the head of every fixture GGUF (header + tensor table) and truncations of it.
set -euo pipefail
out=$1
dir=${JING_FIXTURES:-}
[ -n "$dir" ] && [ -d "$dir" ] || exit 0
i=0
for f in $(find "$dir" -name '*.gguf' | sort); do
  head -c 65536 "$f" > "$out/gguf-$i"
  head -c 4096 "$f" > "$out/gguf-$i-short"
  i=$((i + 1))
done
