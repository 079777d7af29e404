#!/usr/bin/env bash
# Runs every check and test of Sealpost: the one command the README gives, and what CI runs.
#
# On a fresh Debian machine it first installs the real servers and clients the integration
# tests talk to (Dovecot, Postfix's smtp-sink/smtp-source, swaks, s-nail, mutt, curl, aiosmtpd,
# systemd-analyze, chromium and chromium-driver, PostgreSQL; wrk for `cargo bench --bench
# api`), and
# cargo-fuzz for the fuzz targets and cargo-deny (scripts/deb.sh installs cargo-deb and
# lintian). A missing one is installed, never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
have() { command -v "$1" >/dev/null 2>&1; }
have dovecot || [ -x /usr/sbin/dovecot ] || need_debs+=(dovecot-imapd)
have smtp-sink || [ -x /usr/sbin/smtp-sink ] || need_debs+=(postfix)
have swaks || need_debs+=(swaks libnet-ssleay-perl libio-socket-ssl-perl)
have s-nail || need_debs+=(s-nail)
have mutt || need_debs+=(mutt)
have systemd-analyze || need_debs+=(systemd)
have openssl || need_debs+=(openssl)
have curl || need_debs+=(curl ca-certificates)
have wrk || need_debs+=(wrk)
# The web view's browser tests drive Debian's chromium through chromium-driver.
{ have chromium && have chromedriver; } || need_debs+=(chromium chromium-driver)
have python3 || need_debs+=(python3 python3-pip)
# The store's tests run on PostgreSQL too, on a server of their own (scripts/postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || have initdb || need_debs+=(postgresql)

if [ ${#need_debs[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_debs[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_debs[@]}" >/dev/null
fi
pip_install() {
  python3 -m pip install --quiet "$@" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$@"
}
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "test.sh: installing aiosmtpd" >&2
  pip_install 'aiosmtpd==1.4.6'
fi
# A second DKIM implementation checks Sealpost's signatures (tests/peers/dkim_verify.py);
# PyNaCl lets it check Ed25519 ones.
if ! python3 -c 'import dkim, nacl' 2>/dev/null; then
  echo "test.sh: installing dkimpy and PyNaCl" >&2
  pip_install 'dkimpy==1.1.8' 'PyNaCl==1.6.2'
fi
# The API's contract test (tests/suite/api_contract.rs) runs schemathesis against the daemon.
if ! python3 -c 'import schemathesis' 2>/dev/null; then
  echo "test.sh: installing schemathesis" >&2
  pip_install 'schemathesis==4.32.5'
fi
# Postfix's tools live in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"
# A clean clone builds everything once: incremental compilation's caches only cost time there.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi

cargo fmt --all -- --check
# Dependency hygiene (deny.toml): licenses, duplicate versions, sources. The advisory check
# needs the RustSec database from GitHub; see the README.
if ! cargo deny --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-deny" >&2
  cargo install --quiet --locked cargo-deny@0.20.2
fi
cargo deny check licenses bans sources
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --no-run
# The fuzz targets (a workspace and target directory of their own) build in the background
# while the tests run: the tests mostly wait on servers and sockets, and the machine has a
# second core (beside clippy or the test build, which keep both cores busy, it gained
# nothing). Built at opt-level 1: they compile in about half the time, and twenty seconds of
# fuzzing is a smoke test either way (scripts/fuzz.sh on its own builds fully optimised).
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${FUZZ_OPT_LEVEL:-1}"
fuzz_log="$(mktemp)"
FUZZ_BUILD_ONLY=1 bash scripts/fuzz.sh >"$fuzz_log" 2>&1 &
fuzz_build=$!
# One PostgreSQL server for the whole run: every store test and integration test makes a
# database of its own on it.
pg_dir="$(mktemp -d -t sealpost-pg.XXXXXX)"
# A failing step ends the script; the build in the background and the server end with it.
trap '{ pkill -TERM -P "$fuzz_build" || true; kill "$fuzz_build" || true; bash scripts/postgres.sh stop "$pg_dir" || true; } 2>/dev/null' EXIT
pg_env="$(bash scripts/postgres.sh start "$pg_dir")"
export "${pg_env?}"
cargo test --locked
# The Debian package, from the debug build the tests just used: lintian, then installed into a
# throwaway root and run from there (scripts/deb.sh builds the release package).
DEB_PROFILE=dev DEB_NO_BUILD=1 bash scripts/deb.sh --check
if ! wait "$fuzz_build"; then
  cat "$fuzz_log" >&2
  echo "test.sh: building the fuzz targets failed" >&2
  exit 1
fi
# What strangers send, fuzzed briefly on every run (scripts/fuzz.sh runs longer on demand):
# each target for FUZZ_SECONDS, starting from its seeds and the hostile fixtures.
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
