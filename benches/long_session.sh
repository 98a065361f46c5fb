#!/usr/bin/env bash
# No leaks, shown: one nuaws REPL (in tmux, so Tab completion runs as a user's does) runs
# thousands of commands against a moto server on loopback, and its resident memory (VmRSS of
# /proc/PID/status) is sampled after every batch. Each batch is one call of a command (`batch`,
# defined once) that runs ROUNDS rounds of the mix below, then BATCH_TABS completions typed with Tab:
#   cache hits     aws s3 ls (memory tier), aws ec2 instances, aws s3 buckets
#   network reads  aws s3 ls --no-cache, aws s3 head, aws s3 open
#   writes         aws s3 save, aws s3 rm (they also drop cache entries)
#   a bulk job     20 keys | aws s3 head (the request engine, its limiter and dedup)
#   errors         a missing bucket (an AWS error), a malformed URL (a spanned parse error)
# Prints one line per batch (commands so far, RSS in KB) and then the least-squares slope of
# RSS over the later half of the batches, in KB per 1000 commands: the early batches fill
# caches and the allocator's pools, and only growth after that is a leak.
#
# Usage: benches/long_session.sh [--release] [--batches N] [--rounds N] [--nuaws PATH]
# Needs: tmux (installed with apt-get if missing) and the moto venv (tests/support/setup-venv.sh).
# Output ends with `slope_kb_per_1000_commands: X`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$HOME/.cache/nuaws/target}"
profile=debug batches=24 rounds=20 nuaws=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release ;;
        --batches) batches="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --nuaws) nuaws="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [[ -z "$nuaws" ]]; then
    cargo build --locked --profile "$([[ $profile == debug ]] && echo dev || echo release)" -p nuaws --bin nuaws >&2
    nuaws="$target/$profile/nuaws"
fi
command -v tmux >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux) >&2
source benches/moto.sh

work="$(mktemp -d)"
session="nuaws-long-session-$$"
moto_pid=""
cleanup() {
    tmux kill-session -t "$session" 2>/dev/null || true
    [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
moto_start "$work" long-session 200 10 20

# One round: 13 commands (the bulk line is two). Keep commands_per_round in step with it.
commands_per_round=13
cat > "$work/batch.nu" <<EOF
def batch [] {
for round in 1..$rounds {
    aws s3 ls s3://long-session/data/ | ignore
    aws s3 ls s3://long-session/data/p001/ --no-cache | ignore
    aws ec2 instances | ignore
    aws s3 buckets | ignore
    aws s3 head s3://long-session/data/p001/sub1/obj-000001.txt | ignore
    let key = \$"s3://long-session/tmp/k(\$round)"
    "hello" | aws s3 save \$key
    aws s3 open --raw \$key | ignore
    aws s3 rm \$key | ignore
    aws s3 ls s3://long-session/data/p002/ -R | first 20 | aws s3 head | ignore
    try { aws s3 ls s3://no-such-bucket-here/ } catch { null }
    let malformed = "s3://Bad_Bucket/"
    try { aws s3 ls \$malformed } catch { null }
    aws cache stats | ignore
}
open /proc/self/status | lines | where \$it starts-with 'VmRSS' | first | split words | get 1 | \$in + "\n" | save --append $work/rss
}
EOF

tmux new-session -d -s "$session" -x 160 -y 40 \
    "env -i PATH=/usr/bin:/bin TERM=xterm-256color HOME=$work/home NUAWS_CACHE_DIR=$work/cache AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials $nuaws"
mkdir -p "$work/home"
screen() { tmux capture-pane -t "$session" -p; }
until screen | grep -q '> '; do sleep 0.2; done
pid="$(tmux list-panes -t "$session" -F '#{pane_pid}')"

# Completion works (the names are listed) before it is counted. Bucket names complete from the
# cache, so the shell lists the buckets once first, as a user's first command would.
tmux send-keys -t "$session" "aws s3 buckets | length" Enter
for _ in $(seq 1 300); do screen | grep -qx '[0-9]\+ *' && break; sleep 0.1; done
tmux send-keys -t "$session" "clear" Enter
tmux send-keys -t "$session" "aws s3 ls s3://long-" Tab
for _ in $(seq 1 100); do screen | grep -q 's3://long-session/' && break; tmux send-keys -t "$session" Tab; sleep 0.2; done
screen | grep -q 's3://long-session/' || { screen >&2; echo "Tab never showed the bucket" >&2; exit 1; }
tmux send-keys -t "$session" C-c
sleep 0.5
# The batch is parsed once, as a command (`def`), and each batch calls it: the REPL keeps every
# block it parses for the whole session, so sourcing it each time would add nushell's ~100 kB
# per parse to the slope (docs/quality.md, "Leaks"). Typed lines are parsed too, but are short.
tmux send-keys -t "$session" "source $work/batch.nu" Enter
sleep 1

tabs_per_batch=20
commands=0
printf '%8s %10s\n' commands rss_kb
for batch in $(seq 1 "$batches"); do
    tmux send-keys -t "$session" "clear; batch" Enter
    for _ in $(seq 1 6000); do [[ $(grep -c . "$work/rss" 2>/dev/null || true) -ge $batch ]] && break; sleep 0.1; done
    [[ $(grep -c . "$work/rss" 2>/dev/null || true) -ge $batch ]] || { screen >&2; echo "batch $batch did not finish" >&2; exit 1; }
    for _ in $(seq 1 "$tabs_per_batch"); do
        # The pauses let the completer answer and the line clear before the next keys.
        tmux send-keys -t "$session" "aws s3 ls s3://long-session/data/p00" Tab
        sleep 0.2
        tmux send-keys -t "$session" C-c
        sleep 0.2
    done
    sleep 0.5
    commands=$((commands + rounds * commands_per_round + tabs_per_batch))
    rss="$(grep . "$work/rss" | sed -n "${batch}p")"
    echo "$commands $rss" >> "$work/samples"
    printf '%8s %10s\n' "$commands" "$rss"
done
kill -0 "$pid" 2>/dev/null || { echo "nuaws exited during the session" >&2; exit 1; }
screen | grep -q 'panicked' && { screen >&2; echo "nuaws panicked" >&2; exit 1; }

# Least squares over the later half of the batches: KB per 1000 commands.
awk -v from=$((batches / 2 + 1)) 'NR >= from { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
    END { slope = (n * sxy - sx * sy) / (n * sxx - sx * sx); printf "slope_kb_per_1000_commands: %.1f\n", slope * 1000 }' "$work/samples"
