#!/usr/bin/env bash
# Every test: installs what the end-to-end tests need that Cargo does not
# (Debian packages, a Python SMTP server, the browser test's npm packages),
# builds the binaries the tests start, and runs the whole suite.
# Needs ../shared/corpus beside the repository; apt-get needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

corpus="$(pwd)/../shared/corpus"
if [[ ! -d "$corpus/loghub" ]]; then
    echo "ERROR: the end-to-end tests need the shared corpus at $corpus" >&2
    echo "       (loghub/*_2k.log and apache_access/); it is missing." >&2
    exit 1
fi

# Debian packages: Chromium for the web UI test, systemd-journal-remote to
# write real journal files and journalctl to read them for the journald
# tests, rsyslog for the syslog tests.
packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v journalctl >/dev/null 2>&1 || packages+=(systemd)
[[ -x /lib/systemd/systemd-journal-remote || -x /usr/lib/systemd/systemd-journal-remote ]] \
    || packages+=(systemd-journal-remote)
# rsyslog forwards to the syslog listener in the syslog tests; `logger`
# (bsdutils) sends single messages.
[[ -x /usr/sbin/rsyslogd || -x /sbin/rsyslogd ]] || packages+=(rsyslog)
command -v logger >/dev/null 2>&1 || packages+=(bsdutils)
# curl and gzip send compressed bulk requests in the Elasticsearch tests.
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v gzip >/dev/null 2>&1 || packages+=(gzip)
if (( ${#packages[@]} )); then
    echo "installing ${packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

# Python packages of real clients: aiosmtpd, the SMTP server the alert
# tests deliver to; elasticsearch, the official client the bulk API tests
# ship with; the OpenTelemetry SDK and its OTLP/HTTP exporter, which the
# OTLP tests export through.
pip_install() {
    python3 -m pip install --quiet --disable-pip-version-check "$@" \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
python3 -c 'import aiosmtpd' 2>/dev/null || pip_install aiosmtpd
python3 -c 'import elasticsearch' 2>/dev/null || pip_install 'elasticsearch>=8,<10'
python3 -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' 2>/dev/null \
    || pip_install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http

# The web UI test drives Chromium through playwright-core (Node.js 20).
npm ci --prefix tests/browser --no-audit --no-fund --silent

cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
