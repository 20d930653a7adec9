#!/usr/bin/env bash
# Instructions per call on the success path, counted by callgrind (repeatable whatever else
# the machine does): each stack runs N and 2N calls; the difference divided by N removes
# start-up costs.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
cargo build --release -q -p hive-benches --example profile_stack
bin=target/release/examples/profile_stack
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-32s %s\n' stack instructions/call
for stack in bare hive_gate hive_retry hive_breaker hive_retry_breaker hive_retry_breaker_metrics router_sequential router_sequential_primary_open failsafe_breaker \
    tower_resilience_breaker tower_resilience_retry_breaker; do
    a=$(count "$stack" "$n")
    b=$(count "$stack" "$((2 * n))")
    printf '%-32s %d\n' "$stack" $(((b - a) / n))
done
