#!/usr/bin/env bash
# Seeds for fuzz_tokenizer: the fixture test strings, one file each.
set -euo pipefail
dir=${JING_FIXTURES:-}
[ -n "$dir" ] && [ -d "$dir/tokenizer" ] || exit 0
python3 - "$dir" "$1" <<'PY'
import json, sys, os
d, out = sys.argv[1], sys.argv[2]
n = 0
for name in ("qwen3.jsonl", "deepseek_v3.jsonl"):
    for line in open(os.path.join(d, "tokenizer", name), encoding="utf-8"):
        open(os.path.join(out, "tok-%d" % n), "wb").write(json.loads(line)["text"].encode())
        n += 1
PY
