#!/usr/bin/env bash
# Builds the Debian package, sealpost_<version>_<arch>.deb, under target/debian/:
# the binary in /usr/bin, the unit (with /usr/bin), the commented configuration as a conffile
# in /etc/sealpost, the README, man pages and shell completions generated from the command
# definitions, and a postinst that creates the keyring (0600, root) unless one exists.
#
#   bash scripts/deb.sh            a release build
#   bash scripts/deb.sh --check    then lintian (no errors allowed), and the package unpacked
#                                  into a throwaway root: `sealpost --version`, `check-config`
#                                  and the postinst run from there
#
# DEB_PROFILE=dev packages the debug build instead, and DEB_NO_BUILD=1 takes the binary that
# is there: scripts/test.sh checks the one `cargo test` just built (the package's shape is the
# same; a separate `cargo build` would compile every dependency again, as the features a
# binary-only build selects differ from the tests'). cargo-deb and lintian are installed when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

check=""
[ "${1:-}" = "--check" ] && check=1
profile="${DEB_PROFILE:-release}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! cargo deb --version >/dev/null 2>&1; then
  echo "deb.sh: installing cargo-deb" >&2
  cargo install --quiet --locked cargo-deb@3.8.0
fi
if [ -n "$check" ] && ! command -v lintian >/dev/null 2>&1; then
  echo "deb.sh: installing lintian" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends lintian >/dev/null
fi

case "$profile" in dev) out=debug ;; *) out="$profile" ;; esac
if [ -z "${DEB_NO_BUILD:-}" ]; then
  cargo build --locked --profile "$profile" --bin sealpost
elif [ ! -x "target/$out/sealpost" ]; then
  echo "deb.sh: DEB_NO_BUILD is set but target/$out/sealpost is not there" >&2
  exit 1
fi
rm -rf target/deb-assets
mkdir -p target/deb-assets
"target/$out/sealpost" generate --out target/deb-assets
gzip -9n target/deb-assets/man/*.1
sed 's#/usr/local/bin/sealpost#/usr/bin/sealpost#g' systemd/sealpost.service \
  > target/deb-assets/sealpost.service
# Stripped whatever the profile: the release profile keeps line tables for backtraces, and
# cargo-deb would otherwise ship them (lintian: unstripped-binary-or-object). The package is
# the same shape from either build.
deb=$(cargo deb --locked --no-build --strip --profile "$profile" | tail -n 1)
echo "deb.sh: built $deb" >&2
[ -n "$check" ] || exit 0

lintian --fail-on error --suppress-tags-from-file packaging/lintian-suppressed "$deb"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$root/DEBIAN"
fail() { echo "deb.sh: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
"$root/usr/bin/sealpost" --version | grep -qx "sealpost $version" \
  || fail "sealpost --version from the package does not say $version"
grep -qx 'ExecStart=/usr/bin/sealpost --config /etc/sealpost/sealpost.toml serve' \
  "$root/lib/systemd/system/sealpost.service" || fail "the unit does not run /usr/bin/sealpost"
grep -qx '/etc/sealpost/sealpost.toml' "$root/DEBIAN/conffiles" \
  || fail "the configuration is not a conffile"
for f in usr/share/man/man1/sealpost.1.gz usr/share/man/man1/sealpost-backup.1.gz \
         usr/share/bash-completion/completions/sealpost usr/share/zsh/vendor-completions/_sealpost \
         usr/share/fish/vendor_completions.d/sealpost.fish usr/share/doc/sealpost/README.md \
         usr/share/doc/sealpost/copyright; do
  [ -s "$root/$f" ] || fail "$f is missing from the package"
done
SEALPOST_GENERAL__DATA_DIR="$root/var/lib/sealpost" \
  "$root/usr/bin/sealpost" --config "$root/etc/sealpost/sealpost.toml" check-config >/dev/null \
  || fail "check-config fails on the packaged configuration"
# The postinst makes the keyring once, 0600, and never touches it again.
DPKG_ROOT="$root" sh "$root/DEBIAN/postinst" configure
keyring="$root/etc/sealpost/keyring"
[ "$(stat -c %a "$keyring")" = 600 ] || fail "the keyring is not 0600"
before=$(sha256sum < "$keyring")
DPKG_ROOT="$root" sh "$root/DEBIAN/postinst" configure
[ "$(sha256sum < "$keyring")" = "$before" ] || fail "the postinst overwrote the keyring"
echo "deb.sh: $deb checked (lintian, --version, check-config, unit, conffile, postinst)" >&2
