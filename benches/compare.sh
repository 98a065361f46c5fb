#!/usr/bin/env bash
# Runs nuaws and the AWS CLI v2 side by side on the same local moto server, in one run, and
# prints their times, peak memory and the ratios. The AWS CLI side is what a Nushell user does
# without nuaws: `^aws ... | from json`.
#
# Usage: benches/compare.sh [--release] [--runs N]
#   --release   measure target/release/nuaws (build it first: cargo build --release; slow)
# Needs: hyperfine and the AWS CLI v2 (Debian: apt-get install hyperfine awscli), or set AWS_CLI.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
profile=debug runs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release ;;
        --runs) runs="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $profile == debug ]] && cargo build --locked --bin nuaws >&2
nuaws="$target/$profile/nuaws"
aws_cli="${AWS_CLI:-/usr/bin/aws}"
for tool in hyperfine "$aws_cli" "$nuaws"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
# Debian 12's CLI (2.9) predates AWS_ENDPOINT_URL, so the endpoint is passed to it as a flag.
"$aws_cli" --version 2>&1 | grep -q '^aws-cli/2' || { echo "$aws_cli is not the AWS CLI v2" >&2; exit 2; }

py="$(bash tests/support/setup-venv.sh | tail -n1)"
work="$(mktemp -d)"
trap 'kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$py" tests/support/harness.py serve --port-file "$work/port" </dev/null >/dev/null 2>&1 &
moto_pid=$!
for _ in $(seq 600); do [[ -s "$work/port" ]] && break; sleep 0.05; done
endpoint="http://127.0.0.1:$(cat "$work/port")"
export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    NUAWS_CACHE=off  # cold rows measure the network path; the cached row turns it back on
echo "seeding $endpoint: 10,000 objects, 500 instances..." >&2
"$py" tests/support/harness.py seed-s3 --endpoint "$endpoint" --bucket bench-10k --objects 10000 >/dev/null
"$py" tests/support/harness.py seed-ec2 --endpoint "$endpoint" --instances 500 >/dev/null

nu="$nuaws -n -c"
cached="env NUAWS_CACHE=on NUAWS_CACHE_DIR=$work/cache $nuaws -n -c"
$cached 'aws ec2 instances | length' >/dev/null  # fills the disk cache
hyperfine --warmup 1 --runs "$runs" --style basic --export-json "$work/times.json" \
    -n "nuaws: start and exit" "$nu 'null'" \
    -n "aws-cli: start and exit" "$aws_cli --version" \
    -n "nuaws: list 10,000 objects" "$nu 'aws s3 ls s3://bench-10k --recursive | length'" \
    -n "aws-cli: list 10,000 objects" "$nu '^$aws_cli --endpoint-url $endpoint s3api list-objects-v2 --bucket bench-10k --output json | from json | get Contents | length'" \
    -n "nuaws: describe 500 instances" "$nu 'aws ec2 instances | length'" \
    -n "aws-cli: describe 500 instances" "$nu '^$aws_cli --endpoint-url $endpoint ec2 describe-instances --output json | from json | get Reservations.Instances | flatten | length'" \
    -n "nuaws: describe 500 instances, warm disk cache" "$cached 'aws ec2 instances | length'" \
    -n "aws-cli: describe 500 instances, warm disk cache" "$aws_cli --endpoint-url $endpoint ec2 describe-instances --output json" \
    >&2

peak_rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n1; }
rss_nuaws=$(peak_rss $nuaws -n -c 'aws s3 ls s3://bench-10k --recursive | length')
rss_cli=$(peak_rss "$aws_cli" --endpoint-url "$endpoint" s3api list-objects-v2 --bucket bench-10k --output json)

"$py" - "$work/times.json" "$rss_nuaws" "$rss_cli" "$profile" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
rss_nuaws, rss_cli, profile = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"nuaws build: {profile}")
print(f"{'work':<42}{'nuaws (median)':>16}{'aws-cli (median)':>18}{'aws-cli / nuaws':>17}")
for work in ["start and exit", "list 10,000 objects", "describe 500 instances",
             "describe 500 instances, warm disk cache"]:
    ours, theirs = results[f"nuaws: {work}"]["median"], results[f"aws-cli: {work}"]["median"]
    print(f"{work:<42}{ours*1000:>13.0f} ms{theirs*1000:>15.0f} ms{theirs/ours:>16.1f}x")
print(f"{'peak RSS, list 10,000':<42}{rss_nuaws/1024:>13.0f} MB{rss_cli/1024:>15.0f} MB{rss_cli/rss_nuaws:>16.1f}x")
PY
