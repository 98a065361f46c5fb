#!/usr/bin/env bash
# A no-op `aws s3 sync --checksum` of 1,000 files of 64 KiB against moto, three ways: with the
# cache off (every file read), a first run with it on (read and stored), a rerun (none read).
# Usage: benches/checksum_rerun.sh (after `cargo build -p nuaws`; CARGO_TARGET_DIR as for cargo).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nuaws="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}/debug/nuaws"
py=$repo/.venv/bin/python
work=$(mktemp -d)
"$py" $repo/tests/support/harness.py serve --port-file "$work/port" </dev/zero >/dev/null 2>&1 &
for _ in $(seq 600); do [[ -s $work/port ]] && break; sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat $work/port)" AWS_ACCESS_KEY_ID=b AWS_SECRET_ACCESS_KEY=b AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
"$py" - "$work/src" <<'PY'
import os, sys, time
root = sys.argv[1]
old = time.time() - 3600
for d in range(10):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(100):
        p = f"{root}/d{d}/f{f:03}.bin"
        with open(p, "wb") as out:
            out.write(os.urandom(64 * 1024))
        os.utime(p, (old, old))
PY
"$py" $repo/tests/support/harness.py put-objects --endpoint "$AWS_ENDPOINT_URL" --bucket hash-bench --objects '[]' >/dev/null
NUAWS_CACHE=off $nuaws --no-config-file -c "aws s3 sync $work/src s3://hash-bench/ | length" >/dev/null
t() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(echo "$(date +%s.%N) - $s" | bc)"; }
echo "off:    $(NUAWS_CACHE=off t $nuaws --no-config-file -c "aws s3 sync $work/src s3://hash-bench/ --checksum | where reason != 'same checksum' | length")"
export NUAWS_CACHE_DIR=$work/cache
echo "fill:   $(t $nuaws --no-config-file -c "aws s3 sync $work/src s3://hash-bench/ --checksum | length")"
echo "cached: $(t $nuaws --no-config-file -c "aws s3 sync $work/src s3://hash-bench/ --checksum | length")"
$nuaws --no-config-file -c "aws s3 sync $work/src s3://hash-bench/ --checksum | ignore; aws metrics --session | where operation == HashFile | select hits_disk misses | to nuon"
kill %1; rm -rf "$work"
