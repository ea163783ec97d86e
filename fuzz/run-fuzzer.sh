#!/usr/bin/env bash
# run-fuzzer.sh BINARY NAME SECONDS: runs one libFuzzer target over a fresh corpus seeded by
# fuzz/seeds/NAME/ (checked in) and fuzz/NAME.seeds.sh (writes seeds from the fixtures, if present).
set -euo pipefail
bin=$1 name=$2 secs=$3
here=$(cd "$(dirname "$0")" && pwd)
corpus=corpus-$name
rm -rf "$corpus" && mkdir -p "$corpus"
[ -d "$here/seeds/$name" ] && cp -r "$here/seeds/$name/." "$corpus/"
[ -x "$here/$name.seeds.sh" ] && "$here/$name.seeds.sh" "$corpus"
echo "fuzzing $name for ${secs}s from $(ls "$corpus" | wc -l) seeds"
# A crash or sanitizer report makes libFuzzer exit non-zero, which fails the test.
"$bin" -max_total_time="$secs" -rss_limit_mb=4096 -max_len=1048576 -timeout=30 -print_final_stats=1 \
  "$corpus" > fuzz-$name.log 2>&1 || { tail -n 60 fuzz-$name.log; exit 1; }
tail -n 12 fuzz-$name.log
