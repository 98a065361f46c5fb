#!/usr/bin/env bash
# `aws s3 sync` and `aws s3 du` side by side with the AWS CLI v2 and rclone, on the same local
# servers in one run: a no-op sync of 10,000 up-to-date files to moto (after a first sync that
# uploads them), and sizing buckets of 100,000 and 1,000,000 objects on the synthetic S3 server of
# tests/servers (moto would be the bottleneck there). Prints the median time, the peak RSS and the
# ratios.
#
# Usage: benches/sync_du.sh [--release] [--runs N] [--du-sizes "100000 1000000"]
# Needs: hyperfine, GNU time, the AWS CLI v2 and rclone (installed with apt-get if missing).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
profile=debug runs=3 du_sizes="100000 1000000"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release ;;
        --runs) runs="$2"; shift ;;
        --du-sizes) du_sizes="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
source benches/peers.sh
bench_setup "$profile" hyperfine

py="$(bash tests/support/setup-venv.sh | tail -n1)"
work="$(mktemp -d)"
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 1200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; echo "timed out waiting for $1" >&2; exit 1; }

"$py" tests/support/harness.py serve --port-file "$work/moto" </dev/zero >/dev/null 2>&1 &
wait_for "$work/moto"
moto="http://127.0.0.1:$(cat "$work/moto")"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null NUAWS_CACHE=off
# Every endpoint here is plain http on loopback; a CA bundle named for a proxy elsewhere makes
# rclone's SDK refuse to start ("unable to load custom CA bundle").
unset AWS_CA_BUNDLE
# rclone's S3 remote `bench`, from the environment.
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=bench \
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=bench RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG=/dev/null \
    RCLONE_CONFIG_BENCH_LIST_VERSION=2  # the synthetic server serves ListObjectsV2 only; rclone 1.60 asks v1 of "Other"

# 10,000 small files in 100 directories, uploaded once by nuaws.
"$py" - "$work/src" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/d{d:03}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}.txt", "w") as out:
            out.write(f"file {d} {f}\n" * (f % 7 + 1))
PY
"$py" tests/support/harness.py seed-s3 --endpoint "$moto" --bucket sync-bench --objects 0 >/dev/null
echo "first sync of 10,000 files to $moto..." >&2
AWS_ENDPOINT_URL="$moto" "$nuaws" -n -c "aws s3 sync $work/src s3://sync-bench/ | where action != upload | length" >&2
# Each tool once more before timing: rclone records modification times of its own on first contact.
AWS_ENDPOINT_URL="$moto" "$nuaws" -n -c "aws s3 sync $work/src s3://sync-bench/ | where action != skip | length" >&2
RCLONE_CONFIG_BENCH_ENDPOINT="$moto" rclone sync "$work/src" bench:sync-bench >&2
"$aws_cli" --endpoint-url "$moto" s3 sync "$work/src" s3://sync-bench/ >/dev/null

hyperfine --warmup 1 --runs "$runs" --style basic --export-json "$work/sync.json" \
    -n "nuaws: no-op sync of 10,000" "env AWS_ENDPOINT_URL=$moto $nuaws -n -c 'aws s3 sync $work/src s3://sync-bench/ | where action != skip | length'" \
    -n "aws-cli: no-op sync of 10,000" "$aws_cli --endpoint-url $moto s3 sync $work/src s3://sync-bench/" \
    -n "rclone: no-op sync of 10,000" "env RCLONE_CONFIG_BENCH_ENDPOINT=$moto rclone sync $work/src bench:sync-bench" \
    >&2
peak_rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n1; }
rss=(
    "$(peak_rss env AWS_ENDPOINT_URL="$moto" "$nuaws" -n -c "aws s3 sync $work/src s3://sync-bench/ | length")"
    "$(peak_rss "$aws_cli" --endpoint-url "$moto" s3 sync "$work/src" s3://sync-bench/)"
    "$(peak_rss env RCLONE_CONFIG_BENCH_ENDPOINT="$moto" rclone sync "$work/src" bench:sync-bench)"
)
echo "sync ${rss[*]}" > "$work/rss"

for n in $du_sizes; do
    rm -f "$work/synthetic"
    sleep 100000 | "$test_server" synthetic-s3 --bucket "du$n" --objects "$n" --port-file "$work/synthetic" >/dev/null &
    wait_for "$work/synthetic"
    ep="http://127.0.0.1:$(cat "$work/synthetic")"
    hyperfine --warmup 0 --runs 1 --style basic --export-json "$work/du$n.json" \
        -n "nuaws: du of $n" "env AWS_ENDPOINT_URL=$ep $nuaws -n -c 'aws s3 du s3://du$n | get bytes.0'" \
        -n "aws-cli: du of $n" "$aws_cli --endpoint-url $ep s3 ls --recursive --summarize s3://du$n/" \
        -n "rclone: du of $n" "env RCLONE_CONFIG_BENCH_ENDPOINT=$ep rclone size --fast-list bench:du$n" \
        >&2
    echo "du$n $(peak_rss env AWS_ENDPOINT_URL="$ep" "$nuaws" -n -c "aws s3 du s3://du$n | get bytes.0") \
        $(peak_rss "$aws_cli" --endpoint-url "$ep" s3 ls --recursive --summarize "s3://du$n/") \
        $(peak_rss env RCLONE_CONFIG_BENCH_ENDPOINT="$ep" rclone size --fast-list "bench:du$n")" >> "$work/rss"
    kill %?"synthetic-s3" 2>/dev/null || true
done

"$py" - "$work" "$profile" "$du_sizes" <<'PY'
import json, sys
work, profile, sizes = sys.argv[1], sys.argv[2], sys.argv[3].split()
rss = {line.split()[0]: list(map(int, line.split()[1:])) for line in open(f"{work}/rss")}
print(f"nuaws build: {profile}")
print(f"{'work':<28}{'nuaws':>12}{'aws-cli':>12}{'rclone':>12}{'cli/nuaws':>11}{'rclone/nuaws':>14}")
def row(name, file, work_name, rss_key):
    results = {r["command"]: r["median"] for r in json.load(open(f"{work}/{file}"))["results"]}
    t = [results[f"{tool}: {work_name}"] for tool in ("nuaws", "aws-cli", "rclone")]
    print(f"{name:<28}{t[0]:>10.2f} s{t[1]:>10.2f} s{t[2]:>10.2f} s{t[1]/t[0]:>10.1f}x{t[2]/t[0]:>13.1f}x")
    m = rss[rss_key]
    print(f"{'  peak RSS':<28}{m[0]/1024:>9.0f} MB{m[1]/1024:>9.0f} MB{m[2]/1024:>9.0f} MB{m[1]/m[0]:>10.1f}x{m[2]/m[0]:>13.1f}x")
row("no-op sync of 10,000", "sync.json", "no-op sync of 10,000", "sync")
for n in sizes:
    row(f"du of {int(n):,}", f"du{n}.json", f"du of {n}", f"du{n}")
PY
