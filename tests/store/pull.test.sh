#!/usr/bin/env bash
# The model store against a fake hub on 127.0.0.1 (fake_hub.py): pull of a single-file and a
# 3-part split model, library names, resume after SIGKILL, corruption, concurrent pulls, a full
# disk, name traversal, list/rm/cp/show; a hub that cannot be reached.
set -uo pipefail
JING=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
fix=${JING_FIXTURES:-$here/../../../shared/fixtures}
[ -f "$fix/models/qwen2-f16.gguf" ] || { echo "SKIP: fixtures not found"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; mountpoint -q "$tmp/small" && umount "$tmp/small"; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# Repositories: a single-file model, a 3-part split in a folder (as Unsloth publishes R1), and the
# repository the library name deepseek-r1:1.5b points at.
mkdir -p "$tmp/repo1" "$tmp/repo2/UD-IQ1_S" "$tmp/repo3" "$tmp/repo4"
cp "$fix/models/qwen2-f16.gguf" "$tmp/repo1/tiny-qwen2-F16.gguf"
cp "$fix/quantized/llama-Q4_K_M.gguf" "$tmp/repo1/tiny-qwen2-Q4_K_M.gguf"
echo "readme" > "$tmp/repo1/README.md"
"$JING" split "$fix/models/llama-f16.gguf" "$tmp/repo2/UD-IQ1_S/tiny-UD-IQ1_S" --parts 3 >/dev/null
cp "$fix/quantized/llama-Q4_K_M.gguf" "$tmp/repo3/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
cp "$fix/models/deepseek2-f16.gguf" "$tmp/repo4/big-F16.gguf"
REPOS=(--repo test/tiny="$tmp/repo1" --repo test/split="$tmp/repo2"
       --repo unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF="$tmp/repo3" --repo test/big="$tmp/repo4")

start_hub() {  # start_hub NAME [options]: sets PORT
  local pf="$tmp/$1.port"; shift
  rm -f "$pf"
  python3 "$here/fake_hub.py" "${REPOS[@]}" --port-file "$pf" --log "$tmp/hub.log" "$@" &
  HUB_PID=$!
  pids+=("$HUB_PID")
  for _ in $(seq 100); do [ -f "$pf" ] && break; sleep 0.05; done
  PORT=$(cat "$pf")
  export HF_ENDPOINT="http://127.0.0.1:$PORT"
}
export JING_MODELS="$tmp/models"
start_hub main

# 1. single file
out=$("$JING" pull hf.co/test/tiny:F16 2>&1); rc=$?
check "pull single-file model (rc=$rc: $out)" [ $rc -eq 0 ]
f=$(find "$JING_MODELS" -name 'tiny-qwen2-F16.gguf')
check "installed file has the source bytes" cmp -s "$f" "$tmp/repo1/tiny-qwen2-F16.gguf"
check "list shows it" bash -c "'$JING' list | grep -q 'hf.co/test/tiny:F16'"
check "show NAME works" bash -c "'$JING' show hf.co/test/tiny:F16 --json | grep -q '\"architecture\": \"qwen2\"'"
check "quant token matches whole words only (F16, not Q4_K_M)" [ "$(find "$JING_MODELS" -name '*.gguf' | wc -l)" -eq 1 ]
if "$JING" --help | grep -qE '^  run '; then
  out=$("$JING" run hf.co/test/tiny:F16 "Hello" -n 8 --temp 0 2>&1); rc=$?
  check "jing run NAME works after pull (rc=$rc)" [ $rc -eq 0 ]
fi

# 2. a 3-part split model in a folder
out=$("$JING" pull hf.co/test/split:UD-IQ1_S 2>&1); rc=$?
check "pull 3-part split (rc=$rc: $out)" [ $rc -eq 0 ]
check "all three parts installed" [ "$(find "$JING_MODELS" -name 'tiny-UD-IQ1_S-0000?-of-00003.gguf' | wc -l)" -eq 3 ]
check "split model opens whole" bash -c "'$JING' show hf.co/test/split:UD-IQ1_S --json | grep -q '\"parts\": 3'"

# 3. library names map to their repository; a missing quant names what is there
out=$("$JING" pull deepseek-r1:1.5b 2>&1); rc=$?
check "pull deepseek-r1:1.5b through the library table (rc=$rc: $out)" [ $rc -eq 0 ]
check "list shows deepseek-r1:1.5b" bash -c "'$JING' list | grep -q '^deepseek-r1:1.5b'"
out=$("$JING" pull hf.co/test/tiny:IQ2_XXS 2>&1); rc=$?
check "unknown quant is a clear error listing quants ($out)" bash -c "[ $rc -ne 0 ] && grep -q 'available: .*Q4_K_M' <<< \"\$0\"" "$out"
out=$("$JING" pull hf.co/test/nothere:Q4_K_M 2>&1); rc=$?
check "unknown repository is a clear error ($out)" bash -c "[ $rc -ne 0 ] && grep -q 'not found' <<< \"\$0\"" "$out"
out=$("$JING" pull nosuchmodel:7b 2>&1); rc=$?
check "unknown library name is a clear error ($out)" bash -c "[ $rc -ne 0 ] && grep -q 'not found' <<< \"\$0\"" "$out"

# 4. cp and rm
check "cp to a new name" "$JING" cp hf.co/test/tiny:F16 mytiny:v1
check "copy listed" bash -c "'$JING' list | grep -q '^mytiny:v1'"
check "rm the copy" "$JING" rm mytiny:v1
check "rm leaves the original" bash -c "'$JING' list | grep -q 'hf.co/test/tiny:F16' && ! '$JING' list | grep -q mytiny"
out=$("$JING" rm mytiny:v1 2>&1); rc=$?
check "rm of a missing model is an error" [ $rc -ne 0 ]

# 5. SIGKILL midway, then resume (the hub log shows a ranged request that starts past 0)
kill "$HUB_PID"; start_hub slow --throttle 1000000
: > "$tmp/hub.log"
"$JING" pull hf.co/test/big:F16 --connections 1 > "$tmp/kill.log" 2>&1 &
jp=$!
for _ in $(seq 100); do
  s=$(find "$JING_MODELS/.downloads" -name '*.partial' 2>/dev/null | head -1)
  [ -n "$s" ] && [ -f "${s%.partial}.state" ] && grep -q '"chunks":\[\[0,[0-9]*,[1-9]' "${s%.partial}.state" && break
  sleep 0.1
done
kill -9 $jp; wait $jp 2>/dev/null
check "killed pull left a partial download" [ -n "$(find "$JING_MODELS/.downloads" -name '*.partial')" ]
check "killed pull is not listed" bash -c "! '$JING' list | grep -q test/big"
kill "$HUB_PID"; start_hub resume
: > "$tmp/hub.log"
out=$("$JING" pull hf.co/test/big:F16 2>&1); rc=$?
check "resumed pull completes (rc=$rc: $out)" [ $rc -eq 0 ]
check "resume asked for the rest only" grep -qE 'range=bytes=[1-9][0-9]*-' "$tmp/hub.log"
f=$(find "$JING_MODELS" -name 'big-F16.gguf')
check "resumed file has the right sha256" [ "$(sha256sum < "$f" | cut -d' ' -f1)" = "$(sha256sum < "$tmp/repo4/big-F16.gguf" | cut -d' ' -f1)" ]
check "no partials left" [ -z "$(find "$JING_MODELS/.downloads" -name '*.partial' 2>/dev/null)" ]

# 5b. a large file over several connections (ranged requests in parallel), verified
"$JING" rm hf.co/test/big:F16 >/dev/null
: > "$tmp/hub.log"
out=$(JING_DOWNLOAD_CHUNK=1000000 "$JING" pull hf.co/test/big:F16 --connections 4 2>&1); rc=$?
check "pull over 4 connections (rc=$rc)" [ $rc -eq 0 ]
check "4 ranged requests were made" [ "$(grep -c 'GET /cdn/.*range=bytes=' "$tmp/hub.log")" -ge 4 ]
f=$(find "$JING_MODELS" -name 'big-F16.gguf')
check "multi-connection file is intact" cmp -s "$f" "$tmp/repo4/big-F16.gguf"

# 6. a corrupted transfer is detected and nothing is installed
kill "$HUB_PID"; start_hub corrupt --corrupt
out=$("$JING" pull hf.co/test/tiny:Q4_K_M 2>&1); rc=$?
check "corruption is reported ($out)" bash -c "[ $rc -ne 0 ] && grep -q 'corrupt' <<< \"\$0\"" "$out"
check "corrupt model not listed" bash -c "! '$JING' list | grep -q 'test/tiny:Q4_K_M'"
check "corrupt file not installed" [ -z "$(find "$JING_MODELS" -name 'tiny-qwen2-Q4_K_M.gguf')" ]

# 7. two concurrent pulls of one model leave one correct copy
kill "$HUB_PID"; start_hub concurrent --throttle 4000000
"$JING" pull hf.co/test/tiny:Q4_K_M > "$tmp/c1.log" 2>&1 & a=$!
"$JING" pull hf.co/test/tiny:Q4_K_M > "$tmp/c2.log" 2>&1 & b=$!
wait $a; ra=$?; wait $b; rb=$?
check "both concurrent pulls succeed ($ra, $rb)" [ $ra -eq 0 ] && [ $rb -eq 0 ]
check "one copy installed" [ "$(find "$JING_MODELS" -name 'tiny-qwen2-Q4_K_M.gguf' | wc -l)" -eq 1 ]
f=$(find "$JING_MODELS" -name 'tiny-qwen2-Q4_K_M.gguf')
check "concurrent copy is correct" cmp -s "$f" "$tmp/repo1/tiny-qwen2-Q4_K_M.gguf"

# 8. a disk that fills up
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=6m tmpfs "$tmp/small" 2>/dev/null; then
  out=$(JING_MODELS="$tmp/small/models" "$JING" pull hf.co/test/big:F16 2>&1); rc=$?
  check "full disk is a clear error ($out)" bash -c "[ $rc -ne 0 ] && grep -qi 'disk space' <<< \"\$0\"" "$out"
  check "full disk leaves no entry in list" bash -c "[ -z \"\$(JING_MODELS='$tmp/small/models' '$JING' list | tail -n +2)\" ]"
  # Fill the disk after the free-space check: the reservation fails cleanly too.
  dd if=/dev/zero of="$tmp/small/filler" bs=1M count=3 status=none
  out=$(JING_MODELS="$tmp/small/models" "$JING" pull hf.co/test/tiny:F16 2>&1); rc=$?
  check "nearly full disk is a clear error ($out)" bash -c "[ $rc -ne 0 ] && grep -qi 'disk space' <<< \"\$0\"" "$out"
  umount "$tmp/small"
else
  echo "skip: cannot mount a tmpfs here (needs root)"
fi

# 9. traversal and malformed names are rejected before anything is written
for name in "hf.co/../../etc:Q4" "hf.co/test/../x" "hf.co/test/tiny/../../x.gguf" "../x" "..:latest" "a/b/c" \
            "hf.co/test/tiny/.hidden.gguf" "hf.co/test/tiny:../../x" "hf.co/test/tiny/x.bin" "name:ta/g" ""; do
  out=$("$JING" pull "$name" 2>&1); rc=$?
  check "rejects '$name' ($out)" [ $rc -ne 0 ]
done
check "nothing escaped the store" [ -z "$(find "$tmp" -maxdepth 1 -newer "$tmp/repo4" -name 'x*')" ]

# 10. a hub that cannot be reached: pull and run say how to use a mirror or a local file
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
for cmd in "pull hf.co/test/tiny:Q8_0" "run hf.co/test/tiny:Q8_0 hi"; do
  out=$(HF_ENDPOINT="http://127.0.0.1:$dead" timeout 60 "$JING" $cmd 2>&1); rc=$?
  check "unreachable hub: '$cmd' fails at once (rc=$rc)" bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ]"
  check "unreachable hub: '$cmd' names the address ($out)" grep -q "cannot reach http://127.0.0.1:$dead/" <<< "$out"
  check "unreachable hub: '$cmd' suggests HF_ENDPOINT" grep -q "HF_ENDPOINT" <<< "$out"
  check "unreachable hub: '$cmd' suggests a local .gguf file" grep -q "local .gguf file" <<< "$out"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
