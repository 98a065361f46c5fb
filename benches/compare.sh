#!/usr/bin/env bash
# Runs nuaws and the AWS CLI v2 side by side on the same local moto server, in one run, and
# prints their times, peak memory and the ratios. The AWS CLI side is what a Nushell user does
# without nuaws: `^aws ... | from json`.
#
# Usage: benches/compare.sh [--release] [--runs N]
#        benches/compare.sh --listing [benches/listing.sh options]
#   --release   measure target/release/nuaws (build it first: cargo build --release; slow)
#   --listing   instead: nuaws, rclone and the AWS CLI v2 listing 100,000 and 1,000,000 objects
#               at 0, 30 and 100 ms per request (benches/listing.sh)
# Needs: hyperfine, GNU time and the AWS CLI v2 (installed with apt-get if missing), or set AWS_CLI.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ "${1:-}" == --listing ]]; then
    shift
    exec bash benches/listing.sh "$@"
fi
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
if [[ $profile == debug ]]; then
    cargo build --locked -p nuaws --bin nuaws -p nuaws-test-servers --bin nuaws-test-server >&2
else
    cargo build --locked --profile release -p nuaws-test-servers --bin nuaws-test-server >&2
fi
nuaws="$target/$profile/nuaws"
test_server="$target/$profile/nuaws-test-server"
aws_cli="${AWS_CLI:-/usr/bin/aws}"
# On a fresh Debian machine, install what it compares against (as scripts/test installs tmux).
if ! command -v hyperfine >/dev/null || [[ ! -x "$aws_cli" ]] || [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine awscli time) >&2
    else
        sudo -n apt-get install -y -qq hyperfine awscli time >&2
    fi
fi
for tool in hyperfine "$aws_cli" "$nuaws"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
# Debian 12's CLI (2.9) predates AWS_ENDPOINT_URL, so the endpoint is passed to it as a flag.
"$aws_cli" --version 2>&1 | grep -q '^aws-cli/2' || { echo "$aws_cli is not the AWS CLI v2" >&2; exit 2; }

py="$(bash tests/support/setup-venv.sh | tail -n1)"
work="$(mktemp -d)"
trap 'kill "$moto_pid" "$proxy_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
proxy_pid=
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

# The fault proxy adds 20 ms to every request, as a far-away region would.
sleep 100000 | "$test_server" proxy --upstream "$endpoint" --latency-ms 20 --port-file "$work/proxy" >/dev/null &
proxy_pid=$!
for _ in $(seq 600); do [[ -s "$work/proxy" ]] && break; sleep 0.05; done
proxy="http://127.0.0.1:$(cat "$work/proxy")"
"$nuaws" -n -c 'aws s3 ls s3://bench-10k --recursive | first 1000 | get name | to text' > "$work/keys.txt"
head -n 100 "$work/keys.txt" > "$work/keys100.txt"

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
    -n "nuaws: the same read 3 times in one shell" "$cached 'aws ec2 instances | length; aws ec2 instances --refresh | length; aws ec2 instances | length'" \
    -n "aws-cli: the same read 3 times in one shell" "$nu '0..2 | each { ^$aws_cli --endpoint-url $endpoint ec2 describe-instances --output json | from json | get Reservations.Instances | flatten | length }'" \
    >&2
# 1,000 heads through 20 ms of latency. The AWS CLI has no bulk head: a Nushell user runs one
# process per key, 16 at a time with par-each; it is measured on 100 keys and scaled to 1,000
# (its cost is per process, so it scales linearly).
hyperfine --warmup 0 --runs 1 --style basic --export-json "$work/heads.json" \
    -n "nuaws: 1,000 heads, 20 ms latency" "$nu 'open $work/keys.txt | lines | aws s3 head --endpoint-url $proxy | length'" \
    -n "aws-cli: 100 heads, 20 ms latency" "$nu 'open $work/keys100.txt | lines | par-each --threads 16 {|u| let p = (\$u | parse \"s3://{b}/{k}\" | first); ^$aws_cli --endpoint-url $proxy s3api head-object --bucket \$p.b --key \$p.k --output json | from json } | length'" \
    >&2

peak_rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n1; }
rss_nuaws=$(peak_rss $nuaws -n -c 'aws s3 ls s3://bench-10k --recursive | length')
rss_cli=$(peak_rss "$aws_cli" --endpoint-url "$endpoint" s3api list-objects-v2 --bucket bench-10k --output json)
rss_nuaws_ec2=$(peak_rss $nuaws -n -c 'aws ec2 instances | length')
rss_cli_ec2=$(peak_rss "$aws_cli" --endpoint-url "$endpoint" ec2 describe-instances --output json)
rss_nuaws_heads=$(peak_rss $nuaws -n -c "open $work/keys.txt | lines | aws s3 head --endpoint-url $proxy | length")
rss_cli_heads=$(peak_rss "$aws_cli" --endpoint-url "$proxy" s3api head-object --bucket bench-10k --key "$(head -n1 "$work/keys.txt" | sed 's|s3://bench-10k/||')" --output json)

"$py" - "$work/times.json" "$work/heads.json" "$profile" "$rss_nuaws" "$rss_cli" "$rss_nuaws_ec2" "$rss_cli_ec2" "$rss_nuaws_heads" "$rss_cli_heads" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
results.update({r["command"]: r for r in json.load(open(sys.argv[2]))["results"]})
profile = sys.argv[3]
rss_nuaws, rss_cli, rss_nuaws_ec2, rss_cli_ec2, rss_nuaws_heads, rss_cli_heads = map(int, sys.argv[4:10])
print(f"nuaws build: {profile}")
print(f"{'work':<42}{'nuaws (median)':>16}{'aws-cli (median)':>18}{'aws-cli / nuaws':>17}")
for work in ["start and exit", "list 10,000 objects", "describe 500 instances",
             "describe 500 instances, warm disk cache"]:
    ours, theirs = results[f"nuaws: {work}"]["median"], results[f"aws-cli: {work}"]["median"]
    print(f"{work:<42}{ours*1000:>13.0f} ms{theirs*1000:>15.0f} ms{theirs/ours:>16.1f}x")
work = "the same read 3 times in one shell"
ours, theirs = results[f"nuaws: {work}"]["median"], results[f"aws-cli: {work}"]["median"]
print(f"{work:<42}{ours*1000:>13.0f} ms{theirs*1000:>15.0f} ms{theirs/ours:>16.1f}x")
ours = results["nuaws: 1,000 heads, 20 ms latency"]["median"]
theirs = results["aws-cli: 100 heads, 20 ms latency"]["median"] * 10
print(f"{'1,000 heads, 20 ms latency (cli: 100 x10)':<42}{ours*1000:>13.0f} ms{theirs*1000:>15.0f} ms{theirs/ours:>16.1f}x")
for work, ours, theirs in [("peak RSS, list 10,000", rss_nuaws, rss_cli),
                           ("peak RSS, describe 500", rss_nuaws_ec2, rss_cli_ec2),
                           ("peak RSS, heads (cli: one process)", rss_nuaws_heads, rss_cli_heads)]:
    print(f"{work:<42}{ours/1024:>13.0f} MB{theirs/1024:>15.0f} MB{theirs/ours:>16.1f}x")
PY
