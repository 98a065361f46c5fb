#!/usr/bin/env bash
# Listing far from the server: nuaws, rclone and the AWS CLI v2 list every object of a synthetic
# bucket (tests/servers: `nuaws-test-server synthetic-s3`, keys obj/%09d, pages of 1000) through
# the fault proxy adding 0, 30 and 100 ms to every request, as a nearby or far region would.
# Prints wall time and peak RSS per tool, beside the sequential bound: pages x latency, what one
# paginator waiting for each page in turn cannot beat (nuaws lists key ranges at once).
#
# Usage: benches/listing.sh [--release] [--sizes "100000 1000000"] [--latencies "0 30 100"]
#                           [--tools "nuaws rclone aws-cli"]
# Needs: GNU time, the AWS CLI v2 and rclone (installed with apt-get if missing).
# Called by benches/compare.sh --listing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
profile=debug sizes="100000 1000000" latencies="0 30 100" tools="nuaws rclone aws-cli"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release ;;
        --sizes) sizes="$2"; shift ;;
        --latencies) latencies="$2"; shift ;;
        --tools) tools="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
source benches/peers.sh
bench_setup "$profile"

work="$(mktemp -d)"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 1200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; echo "timed out waiting for $1" >&2; exit 1; }
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null NUAWS_CACHE=off
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=bench \
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=bench RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG=/dev/null \
    RCLONE_CONFIG_BENCH_LIST_VERSION=2

# One measured run: "seconds peak-KB objects" of the command, its output counted as lines.
measure() {
    local out="$work/out" stats="$work/time"
    /usr/bin/time -o "$stats" -f '%e %M' "$@" > "$out" 2>"$work/err" || { cat "$work/err" >&2; echo "failed: $*" >&2; exit 1; }
    echo "$(cat "$stats") $(tail -n1 "$out")"
}

printf '%-10s %-8s %-8s %12s %12s %10s %10s\n' objects latency tool seconds "peak RSS" objects "seq bound"
for n in $sizes; do
    rm -f "$work/synthetic"
    sleep 1000000 | "$test_server" synthetic-s3 --bucket "list$n" --objects "$n" --port-file "$work/synthetic" >/dev/null &
    wait_for "$work/synthetic"
    upstream="http://127.0.0.1:$(cat "$work/synthetic")"
    pages=$(( (n + 999) / 1000 ))
    for ms in $latencies; do
        rm -f "$work/proxy"
        sleep 1000000 | "$test_server" proxy --upstream "$upstream" --latency-ms "$ms" --port-file "$work/proxy" >/dev/null &
        wait_for "$work/proxy"
        ep="http://127.0.0.1:$(cat "$work/proxy")"
        bound=$(awk -v p="$pages" -v ms="$ms" 'BEGIN { printf "%.1f s", p * ms / 1000 }')
        for tool in $tools; do
            case "$tool" in
                nuaws) result=$(measure env AWS_ENDPOINT_URL="$ep" "$nuaws" -n -c "aws s3 ls s3://list$n -R | length") ;;
                rclone) result=$(measure sh -c "RCLONE_CONFIG_BENCH_ENDPOINT=$ep rclone lsf -R --files-only bench:list$n | wc -l") ;;
                aws-cli) result=$(measure sh -c "$aws_cli --endpoint-url $ep s3 ls --recursive s3://list$n/ | wc -l") ;;
                *) echo "unknown tool $tool" >&2; exit 2 ;;
            esac
            read -r seconds kb objects <<< "$result"
            [[ "$objects" == "$n" ]] || { echo "$tool listed $objects objects of $n" >&2; exit 1; }
            printf '%-10s %-8s %-8s %10s s %9.0f MB %10s %10s\n' "$n" "${ms} ms" "$tool" "$seconds" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')" "$objects" "$bound"
        done
        kill %?"proxy --upstream" 2>/dev/null || true
    done
    kill %?"synthetic-s3" 2>/dev/null || true
done
echo "nuaws build: $profile"
