# Sourced by the leak checks (long_session.sh, memcheck.sh): a moto server on a free loopback
# port for the calling script, seeded with one bucket and some EC2 instances, and ended with it.
# Not for the timed benchmarks (they start their servers in peers.sh's way, beside the peers').
#
# moto_start WORK BUCKET OBJECTS PREFIXES INSTANCES: sets `endpoint` and `moto_pid`, exports the
# test credentials. The caller's EXIT trap kills `$moto_pid`.
moto_start() {
    local work="$1" bucket="$2" objects="$3" prefixes="$4" instances="$5" python
    python="$(bash tests/support/setup-venv.sh | tail -n1)"
    # Its stdin is a pipe from `sleep`, so it lives until the script ends or kills it.
    sleep 1000000 | "$python" tests/support/harness.py serve --port-file "$work/port" >/dev/null 2>&1 &
    moto_pid=$!
    for _ in $(seq 1 1200); do [[ -s "$work/port" ]] && break; sleep 0.05; done
    [[ -s "$work/port" ]] || { echo "moto did not start" >&2; exit 1; }
    endpoint="http://127.0.0.1:$(cat "$work/port")"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
    "$python" tests/support/harness.py seed-s3 --endpoint "$endpoint" --bucket "$bucket" --objects "$objects" --prefixes "$prefixes" >/dev/null
    "$python" tests/support/harness.py seed-ec2 --endpoint "$endpoint" --instances "$instances" >/dev/null
}
