#!/usr/bin/env bash
# Create (or reuse) the Python venv that runs tests/support/harness.py: a local
# moto server plus boto3, used as the fake AWS endpoint for nuaws's
# integration tests and README demo.
#
# Idempotent: the pinned versions are written to a stamp file inside the venv
# once installation succeeded; when the stamp matches, nothing is installed and
# the script only prints the interpreter path.
#
# Usage:  tests/support/setup-venv.sh          # venv at <repo>/.venv
#         NUAWS_VENV=/tmp/v tests/support/setup-venv.sh
#         NUAWS_PYTHON=python3.12 tests/support/setup-venv.sh
#
# The last line printed on stdout is always the venv's python path, so callers
# can do:  PY="$(tests/support/setup-venv.sh | tail -n1)"
set -euo pipefail

# Pins. boto3 1.43.120 was released the same day as moto 5.2.5 (2026-10-27),
# i.e. it is the SDK that moto release was tested against. botocore is pinned
# to the same number so the resolver has nothing to choose.
MOTO_VERSION="5.2.5"
BOTO3_VERSION="1.43.120"
BOTOCORE_VERSION="1.43.120"
# awscrt at botocore's own `crt` pin: without it moto computes the CRC64NVME of a multipart
# upload as a CRC32 (its fallback, moto/s3/utils.py), so the full-object checksums nuaws asks
# for would read back wrong and fail the SDK's validation of downloads.
AWSCRT_VERSION="0.36.0"
PINS=("moto[server]==${MOTO_VERSION}" "boto3==${BOTO3_VERSION}" "botocore==${BOTOCORE_VERSION}" "awscrt==${AWSCRT_VERSION}")

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
venv="${NUAWS_VENV:-${repo}/.venv}"
python_bin="${NUAWS_PYTHON:-python3}"
venv_py="${venv}/bin/python"
stamp="${venv}/.nuaws-harness-stamp"
want="$(printf '%s\n' "${PINS[@]}")"

# Progress messages go to stderr so stdout stays machine-readable.
log() { printf 'setup-venv: %s\n' "$*" >&2; }

if [[ ! -x "${venv_py}" ]]; then
    log "creating venv at ${venv}"
    "${python_bin}" -m venv "${venv}"
fi

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]] \
    && "${venv_py}" -c 'import moto, boto3' >/dev/null 2>&1; then
    : # already installed at the pinned versions
else
    log "installing ${PINS[*]} (takes a minute)"
    rm -f "${stamp}"
    "${venv_py}" -m pip install --quiet --disable-pip-version-check \
        --no-input "${PINS[@]}" >&2
    # Write the stamp only after a successful install, atomically.
    printf '%s\n' "${PINS[@]}" >"${stamp}.tmp"
    mv "${stamp}.tmp" "${stamp}"
    log "done"
fi

echo "${venv_py}"
