# Sourced by the side-by-side benchmarks (sync_du.sh, listing.sh): builds nuaws and the test
# servers in the profile asked for, and installs the peers from Debian's packages when missing
# (Debian 12's awscli is the AWS CLI v2, 2.9; rclone 1.60), with GNU time for peak RSS.
# Sets nuaws, test_server and aws_cli; reads target.
#
# Usage: source benches/peers.sh; bench_setup <debug|release> [more Debian packages the script runs]
bench_setup() {
    local profile="$1" tool missing=0
    shift
    local cargo_profile
    cargo_profile="$([[ $profile == debug ]] && echo dev || echo release)"
    # Two builds, not one: built together, the two packages' features unify into a third set,
    # and the SDK crates already built by a plain `cargo build --release` (the nuaws that ships)
    # would be compiled again (about 25 minutes of a release build). Apart, each reuses its own.
    cargo build --locked --profile "$cargo_profile" -p nuaws --bin nuaws >&2
    cargo build --locked --profile "$cargo_profile" -p nuaws-test-servers --bin nuaws-test-server >&2
    nuaws="$target/$profile/nuaws"
    test_server="$target/$profile/nuaws-test-server"
    for tool in "$@" rclone; do command -v "$tool" >/dev/null || missing=1; done
    [[ -x /usr/bin/aws && -x /usr/bin/time ]] || missing=1
    if ((missing)); then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" awscli rclone time) >&2
    fi
    aws_cli=/usr/bin/aws
    "$aws_cli" --version 2>&1 | grep -q '^aws-cli/2' || { echo "$aws_cli is not the AWS CLI v2" >&2; exit 2; }
}
