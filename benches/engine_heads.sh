#!/usr/bin/env bash
# Benchmark of the request engine: N `aws s3 head` calls through the fault-injecting proxy with
# fixed added latency, first at concurrency 1, then with the adaptive limiter, in one nuaws
# process. Prints both times, their ratio, and how close the adaptive run came to the bound set by
# latency and the concurrency it reached (N x floor / concurrency).
#
# Usage: benches/engine_heads.sh            # 1000 heads, 20 ms, synthetic S3 upstream
#        N=1000 LATENCY_MS=20 UPSTREAM=moto benches/engine_heads.sh
#        PROFILE=release benches/engine_heads.sh
#        BIN_DIR=/some/build/release benches/engine_heads.sh   # binaries already built (an A/B
#                                                              # of two builds), nothing built
#
# The upstream is the synthetic S3 server of tests/servers by default: it answers in microseconds,
# so what is measured is nuaws and the latency, not the server. UPSTREAM=moto puts the moto server
# there instead (its Python request handling then caps the rate).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
N="${N:-1000}"
LATENCY_MS="${LATENCY_MS:-20}"
PROFILE="${PROFILE:-dev}"
UPSTREAM="${UPSTREAM:-synthetic}"
dir_of_profile() { [[ "$PROFILE" == dev ]] && echo debug || echo "$PROFILE"; }

if [[ -n "${BIN_DIR:-}" ]]; then
    bin="$BIN_DIR"
else
    cargo build --profile "$PROFILE" -p nuaws --bin nuaws -p nuaws-test-servers --bin nuaws-test-server >&2
    bin="$CARGO_TARGET_DIR/$(dir_of_profile)"
fi
work="$(mktemp -d)"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 600); do [[ -s "$1" ]] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; exit 1; }

if [[ "$UPSTREAM" == moto ]]; then
    py="$(bash tests/support/setup-venv.sh | tail -n1)"
    "$py" tests/support/harness.py serve --port-file "$work/upstream" </dev/zero >/dev/null 2>&1 &
    wait_for "$work/upstream"
    upstream="http://127.0.0.1:$(cat "$work/upstream")"
    "$py" tests/support/harness.py seed-s3 --endpoint "$upstream" --bucket bench --objects "$N" --prefixes 1 >/dev/null
    keys="aws s3 ls s3://bench -R --endpoint-url $upstream | get name"
else
    sleep 3600 | "$bin/nuaws-test-server" synthetic-s3 --bucket bench --objects "$N" --port-file "$work/upstream" >/dev/null &
    wait_for "$work/upstream"
    upstream="http://127.0.0.1:$(cat "$work/upstream")"
    keys="0..<$N | each {|i| \$'s3://bench/obj/(\$i | fill -a r -c 0 -w 9)' }"
fi
sleep 3600 | "$bin/nuaws-test-server" proxy --upstream "$upstream" --latency-ms "$LATENCY_MS" --port-file "$work/proxy" >/dev/null &
wait_for "$work/proxy"
proxy="http://127.0.0.1:$(cat "$work/proxy")"

env -i PATH="$PATH" HOME="$work" NUAWS_CACHE=off AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL="$proxy" \
    "$bin/nuaws" --no-config-file -c "
let keys = ($keys)
let serial = (timeit { \$keys | aws s3 head --concurrency 1 --dedup-window 0sec | ignore })
let adaptive = (timeit { \$keys | aws s3 head --dedup-window 0sec | ignore })
let job = (aws engine | where endpoint == '$proxy' | first)
let floor = \$job.floor
{
  heads: $N
  latency_added: ${LATENCY_MS}ms
  upstream: '$UPSTREAM'
  profile: '$PROFILE'
  concurrency_1: \$serial
  adaptive: \$adaptive
  speedup: (\$serial / \$adaptive | math round -p 1)
  floor: \$floor
  mean_concurrency: (\$job.mean_concurrency | math round -p 1)
  peak_limit: \$job.peak_limit
  bound_at_mean_concurrency: (\$floor * $N / \$job.mean_concurrency)
  efficiency_at_mean_concurrency: (\$job.efficiency | math round -p 2)
  bound_at_peak_limit: (\$floor * $N / \$job.peak_limit)
  efficiency_at_peak_limit: ((\$floor * $N / \$job.peak_limit) / \$adaptive | math round -p 2)
}
"
