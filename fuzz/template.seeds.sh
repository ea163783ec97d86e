#!/usr/bin/env bash
# Seeds for fuzz_template: every fixture chat template.
set -euo pipefail
dir=${JING_FIXTURES:-}
[ -n "$dir" ] && [ -d "$dir/templates" ] || exit 0
cp "$dir"/templates/*.jinja "$1"/
