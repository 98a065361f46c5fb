#!/usr/bin/env bash
# What a bucket in another region costs: `aws s3 head` of one object of a bucket in eu-west-1,
# from a us-east-1 shell, through the fault proxy's emulation of real S3's wrong-region answers
# with fixed added latency per request. Measures the first touch in a cold process (one 301, then
# the request in eu-west-1), a later touch in the same process, and the first touch in a new
# process whose disk cache learned the region; and counts the refusals the proxy sent for each.
#
# Usage: benches/region_first_touch.sh        # 20 ms per request, synthetic S3 upstream
#        LATENCY_MS=50 PROFILE=release benches/region_first_touch.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
LATENCY_MS="${LATENCY_MS:-20}"
PROFILE="${PROFILE:-dev}"
dir_of_profile() { [[ "$PROFILE" == dev ]] && echo debug || echo "$PROFILE"; }

cargo build --profile "$PROFILE" -p nuaws --bin nuaws -p nuaws-test-servers --bin nuaws-test-server >&2
bin="$CARGO_TARGET_DIR/$(dir_of_profile)"
work="$(mktemp -d)"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 600); do [[ -s "$1" ]] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; exit 1; }

sleep 3600 | "$bin/nuaws-test-server" synthetic-s3 --bucket faraway --objects 1000 --port-file "$work/upstream" >/dev/null &
wait_for "$work/upstream"
upstream="http://127.0.0.1:$(cat "$work/upstream")"
sleep 3600 | "$bin/nuaws-test-server" proxy --upstream "$upstream" --latency-ms "$LATENCY_MS" \
    --bucket-regions faraway=eu-west-1 --port-file "$work/proxy" >/dev/null &
wait_for "$work/proxy"
proxy="http://127.0.0.1:$(cat "$work/proxy")"
# The same server as a bucket of the shell's own region would be: the baseline of a cold process.
sleep 3600 | "$bin/nuaws-test-server" proxy --upstream "$upstream" --latency-ms "$LATENCY_MS" --port-file "$work/home" >/dev/null &
wait_for "$work/home"
home="http://127.0.0.1:$(cat "$work/home")"

nuaws() {
    local endpoint="${2:-$proxy}"
    env -i PATH="$PATH" HOME="$work" NUAWS_CACHE_DIR="$work/cache" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
        AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL="$endpoint" \
        "$bin/nuaws" --no-config-file -c "$1"
}
refusals() { curl -s "$proxy/__proxy/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["region_errors"])'; }
reset() { curl -s -X POST "$proxy/__proxy/reset-stats" >/dev/null; }

url='s3://faraway/obj/000000001'
rm -rf "$work/cache"
baseline=$(nuaws "timeit { aws s3 head $url --no-cache | ignore } | into int" "$home")
rm -rf "$work/cache"
cold=$(nuaws "let first = (timeit { aws s3 head $url --no-cache | ignore }); let later = (timeit { aws s3 head $url --no-cache | ignore }); [\$first \$later] | each { into int } | str join ' '")
cold_refusals=$(refusals)
reset
warm=$(nuaws "timeit { aws s3 head $url --no-cache | ignore } | into int")
warm_refusals=$(refusals)
read -r first later <<<"$cold"
cat <<OUT
latency added per request: ${LATENCY_MS} ms; build: $PROFILE
same-region bucket, cold process:     $((baseline / 1000000)) ms  (the baseline: session start and one request)
first touch, cold process:            $((first / 1000000)) ms  (refusals in that process: $cold_refusals)
later touch, same process:            $((later / 1000000)) ms
first touch, new process, warm disk:  $((warm / 1000000)) ms  (refusals: $warm_refusals)
OUT
