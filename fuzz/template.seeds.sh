#!/usr/bin/env bash
# Seeds for fuzz_template: every fixture chat template and the wild templates of tests/chat.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cp "$here"/../tests/chat/wild_templates/*.jinja "$1"/
dir=${JING_FIXTURES:-}
[ -n "$dir" ] && [ -d "$dir/templates" ] || exit 0
cp "$dir"/templates/*.jinja "$1"/
