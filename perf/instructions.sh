#!/usr/bin/env bash
# User-space instructions per operation, counted by callgrind: repeatable whatever the machine's
# load. Each operation runs N times and 0 times; the difference divided by N is the cost of one.
#
#   perf/instructions.sh [N] [OPERATION...]
#
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
shift || true
ops=("$@")
[ ${#ops[@]} -gt 0 ] || ops=(parse_frame parse_typed parse_typed_auth rsip_frame write_401 write_200 core_401 core_register_auth)
command -v valgrind >/dev/null || { echo "perf/instructions.sh: needs valgrind" >&2; exit 1; }
cargo bench --bench instructions --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    awk '/refs:/ {gsub(",", "", $NF); print $NF}'
}
printf '%-20s %12s\n' operation instructions
for op in "${ops[@]}"; do
  with=$(count "$op" "$n")
  without=$(count "$op" 0)
  printf '%-20s %12d\n' "$op" $(((with - without) / n))
done
