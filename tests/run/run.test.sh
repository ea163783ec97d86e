#!/usr/bin/env bash
# `jing run` on a fixture model: a one-shot answer, --format (structured output), then an interactive two-turn chat driven
# through tmux with /set, /show info, /clear and /bye.
set -uo pipefail
JING=$(realpath "$1")
fix=${JING_FIXTURES:-$(dirname "$0")/../../../shared/fixtures}
model="$fix/models/qwen2-f16.gguf"
[ -f "$model" ] || { echo "SKIP: fixtures not found"; exit 77; }
pass=0 fail=0
check() { local what=$1; shift; if "$@"; then echo "ok: $what"; pass=$((pass+1)); else echo "FAIL: $what"; fail=$((fail+1)); fi; }

out=$("$JING" run "$model" "Tell me a fortune" -n 24 --seed 3 2>&1); rc=$?
check "one-shot answers (rc=$rc)" [ $rc -eq 0 ]
check "one-shot printed text" [ "$(printf '%s' "$out" | tr -d '[:space:]' | wc -c)" -gt 10 ]
out=$("$JING" run "$model" "Tell me a fortune" -n 24 --seed 3 --temp 0 --hidethinking --verbose 2>&1); rc=$?
check "--verbose prints rates" grep -q "eval rate:" <<< "$out"
check "--hidethinking hides the reasoning" bash -c "! grep -q 'Thinking' <<< \"\$0\"" "$out"
out=$(echo "Hello there" | "$JING" run "$model" -n 8 2>&1); rc=$?
check "piped prompt works (rc=$rc)" [ $rc -eq 0 ]
# --format (as ollama run --format): the answer parses as JSON and follows the schema.
schema='{"type":"object","properties":{"name":{"type":"string","maxLength":12},"legs":{"type":"integer"}},"required":["name","legs"],"additionalProperties":false}'
out=$("$JING" run "$model" "Describe a cat" --nothink --format "$schema" -n 300 --seed 4 2>/dev/null); rc=$?
check "--format with a schema answers (rc=$rc)" [ $rc -eq 0 ]
check "--format output follows the schema" python3 -c 'import json,sys; v=json.loads(sys.argv[1]); assert set(v)=={"name","legs"} and isinstance(v["legs"],int) and isinstance(v["name"],str) and len(v["name"])<=12' "$out"
out=$("$JING" run "$model" "Describe a cat" --nothink --format json -n 300 --seed 3 2>/dev/null); rc=$?
check "--format json gives a JSON object" python3 -c 'import json,sys; assert isinstance(json.loads(sys.argv[1]), dict)' "$out"
out=$("$JING" run "$model" "x" --format '{"type":"string","pattern":"(a)\\1"}' 2>&1); rc=$?
check "--format with an unsupported schema is a clear error" bash -c "[ $rc -ne 0 ] && grep -q 'back-reference' <<< \"\$0\"" "$out"
out=$("$JING" run /nonexistent/model.gguf "hi" 2>&1); rc=$?
check "missing model is a clear error" bash -c "[ $rc -ne 0 ] && grep -q 'not found' <<< \"\$0\"" "$out"

if ! command -v tmux >/dev/null; then echo "tmux missing: interactive part skipped"; echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; exit; fi
sock="jing-test-$$"
T="tmux -L $sock"
$T new-session -d -s run -x 200 -y 50 "$JING run $model -n 16 --seed 5; echo EXITED-\$?; sleep 30"
wait_for() {  # wait_for PATTERN [SECONDS]
  for _ in $(seq $(( ${2:-20} * 10 ))); do
    $T capture-pane -p -t run -S -200 | grep -q -- "$1" && return 0
    sleep 0.1
  done
  $T capture-pane -p -t run -S -200 | tail -20
  return 1
}
check "prompt appears" wait_for '>>>'
$T send-keys -t run "/set parameter temperature 0" Enter
check "/set parameter answered" wait_for "Set parameter 'temperature' to '0'"
$T send-keys -t run "What is a fortune?" Enter
check "first turn answered" wait_for 'done thinking\|>>> .*' 30
sleep 1
$T send-keys -t run '"""' Enter "Second turn," Enter 'on two lines"""' Enter
sleep 2
check "second turn answered" bash -c "[ \$($T capture-pane -p -t run -S -200 | grep -c '^>>> ') -ge 3 ]"
$T send-keys -t run "/show info" Enter
check "/show info prints the architecture" wait_for "architecture        qwen2"
$T send-keys -t run "/set nothink" Enter
check "/set nothink answered" wait_for "Set 'nothink' mode."
$T send-keys -t run "/clear" Enter
check "/clear answered" wait_for "Cleared session context"
$T send-keys -t run "/bye" Enter
check "/bye exits cleanly" wait_for "EXITED-0"
$T kill-server 2>/dev/null
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
