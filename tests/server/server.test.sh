#!/usr/bin/env bash
# Drives `jing serve` with the official openai and ollama npm clients, curl, and concurrent streams.
set -uo pipefail
JING=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
fix=${JING_FIXTURES:-$here/../../../shared/fixtures}
[ -f "$fix/models/qwen2-f16.gguf" ] || { echo "SKIP: fixtures not found"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm missing"; exit 77; }
cd "$here"
if [ ! -d node_modules/openai ] || [ ! -d node_modules/ollama ] || [ ! -d node_modules/puppeteer-core ]; then
  npm ci --no-audit --no-fund --loglevel=error || { echo "npm ci failed"; exit 1; }
fi
export JING_BIN="$JING" JING_FIXTURES="$(realpath "$fix")"
# The load test measures throughput: it runs before the hostile suite, whose thousands of sockets
# and killed streams leave the client process and the cores busy for a while. The chat page's test
# (headless chromium; skipped with a message where chromium is missing) runs last, after both.
command -v chromium >/dev/null || echo "NOTE: chromium is missing: the chat page's browser test is skipped (apt-get install chromium)"
node --test --test-concurrency=1 openai.test.mjs ollama.test.mjs guide.test.mjs load.test.mjs structured.test.mjs tools.test.mjs openwebui.test.mjs hostile.test.mjs webui.test.mjs
