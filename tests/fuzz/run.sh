#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300) on a fresh corpus
# seeded from tests/fuzz/seeds/<target>/. Exits non-zero on a finding.
#   tests/fuzz/run.sh [SECONDS]        # the pre-merge run for parsers
#   tests/fuzz/run.sh --smoke          # a few thousand runs each (ctest)
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/fuzz/build.sh
if [[ "${1:-}" == "--smoke" ]]; then
  limit=(-runs=20000)
else
  limit=(-max_total_time="${1:-300}")
fi
for target in fuzz_ws_decoder fuzz_ws_inflate fuzz_http_upgrade fuzz_jwt fuzz_centrifuge_json fuzz_protobuf_command fuzz_server_api fuzz_redis_codec fuzz_proxy_reply fuzz_tls_session; do
  corpus=build-fuzz/corpus-$target
  mkdir -p "$corpus"
  seeds=tests/fuzz/seeds/$target
  [[ -d $seeds ]] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  echo "== $target ${limit[*]}"
  build-fuzz/$target "${limit[@]}" -max_len=70000 -print_final_stats=1 "$corpus" 2>&1 | tail -15
done
