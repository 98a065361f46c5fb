#!/usr/bin/env bash
# No leaks, shown (the short run): the debug nuaws binary under valgrind memcheck
# (--leak-check=full) runs a representative script against a moto server on loopback:
# listings from the network, then from the memory and disk caches, EC2 listings and a filter,
# a write, a read and a delete of an object, a bulk job of heads, completions' listing code
# through `aws cache warm`, an AWS error and a malformed URL. Prints valgrind's leak summary and
# every "definitely lost" record whose stack names nuaws's own code (aws_core, nu_cmd_aws,
# nuaws): there must be none. Suppressions (benches/memcheck.supp) cover third-party code only,
# each with a comment saying why.
#
# Usage: benches/memcheck.sh [--nuaws PATH] [--log FILE]
# Needs: valgrind (Debian's; installed with apt-get if missing) and the moto venv.
# Exits non-zero when nuaws's own code loses memory.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
nuaws="" log=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --nuaws) nuaws="$2"; shift ;;
        --log) log="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$nuaws" ]]; then
    cargo build --locked -p nuaws --bin nuaws >&2
    nuaws="$target/debug/nuaws"
fi
command -v valgrind >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind) >&2
source benches/moto.sh

work="$(mktemp -d)"
log="${log:-$work/memcheck.log}"
moto_pid=""
cleanup() { [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
moto_start "$work" memcheck 60 3 5

cat > "$work/script.nu" <<'EOF'
for round in 1..3 {
    aws s3 ls s3://memcheck/data/ -R | length
    aws s3 ls s3://memcheck/data/p001/ --no-cache | length
    aws s3 buckets | length
    aws ec2 instances | length
    aws ec2 instances --filter {instance-state-name: running} | length
    "hello" | aws s3 save s3://memcheck/tmp/k
    aws s3 open --raw s3://memcheck/tmp/k | bytes length
    aws s3 rm s3://memcheck/tmp/k | ignore
    aws s3 ls s3://memcheck/data/p002/ -R | first 10 | aws s3 head | length
    aws cache warm | ignore
    try { aws s3 ls s3://no-such-bucket-here/ } catch { |e| $e.msg | str length }
    let malformed = "s3://Bad_Bucket/"
    try { aws s3 ls $malformed } catch { |e| $e.msg | str length }
    aws cache stats | to nuon | str length
    aws metrics | to nuon | str length
}
EOF

env -i PATH=/usr/bin:/bin HOME="$work/home" NUAWS_CACHE_DIR="$work/cache" AWS_ENDPOINT_URL="$endpoint" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials" \
    valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --num-callers=40 \
        --suppressions="$repo/benches/memcheck.supp" --log-file="$log" \
        "$nuaws" -n "$work/script.nu" >"$work/out" 2>&1 || { cat "$work/out" >&2; echo "nuaws failed under valgrind" >&2; exit 1; }

sed -n '/LEAK SUMMARY/,/suppressed:/p' "$log" | sed 's/^==[0-9]*== //'
# The "definitely lost" records whose stacks pass through nuaws's own code.
own=$(awk '/are definitely lost in loss record/ { rec = $0; inrec = 1; next }
           inrec && /^==[0-9]+== $/ { if (hit) print rec; inrec = 0; hit = 0; next }
           inrec && /(aws_core|nu_cmd_aws|nuaws::)/ { hit = 1 }' "$log")
if [[ -n "$own" ]]; then
    echo "definitely lost in nuaws's own code:" >&2
    echo "$own" >&2
    exit 1
fi
echo "definitely lost in nuaws's own code: 0 bytes"
