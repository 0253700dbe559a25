#!/bin/sh
# emu installer: downloads the emu executable for this OS and CPU, verifies that file's
# release SHA256SUMS against its ECDSA P-256 signature (openssl) and the archive against
# SHA256SUMS, runs the new binary, and installs it atomically into
# ${EMU_INSTALL:-~/.emu}/bin. Safe to run again: an identical emu is left alone. It fails
# closed: without openssl or a release key it installs nothing (unless told
# --insecure-skip-signature), and plain http is accepted only from this machine.
#
# The whole script is one function called on the last line, so a download cut short by
# `curl | sh` runs nothing at all.
#
#   curl -fsSL https://github.com/OWNER/emu/releases/latest/download/install.sh | sh
#   sh install.sh --version 1.4.0
#
# The release workflow publishes this file with the repository and the release public
# key filled in (the @@…@@ markers below); a copy straight from the source tree needs
# --base-url and EMU_INSTALL_PUBLIC_KEY.
#
# Environment: EMU_INSTALL (install root), EMU_VERSION (pin), EMU_INSTALL_BASE_URL (a
# directory holding one release: SHA256SUMS, SHA256SUMS.sig, emu-<target>.tar.gz; for
# mirrors and tests), EMU_INSTALL_PUBLIC_KEY (PEM file of the release key).
set -eu

main() {

REPO="@@EMU_REPO@@"
RELEASE_PUBLIC_KEY="@@EMU_RELEASE_PUBLIC_KEY@@"

say() { printf '%s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$1" >&2
  [ -n "${2:-}" ] && printf 'hint: %s\n' "$2" >&2
  exit 1
}

usage() {
  cat <<USAGE
Install emu, one executable, into \${EMU_INSTALL:-~/.emu}/bin.

usage: install.sh [--version V] [--prefix DIR] [--base-url URL] [--help]

  --version V     install release V (default: the latest; env EMU_VERSION)
  --prefix DIR    install into DIR/bin (default: ~/.emu; env EMU_INSTALL)
  --base-url URL  download from URL, a directory holding one release
                  (env EMU_INSTALL_BASE_URL; for mirrors; https, or http
                  to this machine)
  --insecure-skip-signature
                  install without checking the release signature (only when
                  openssl cannot be installed; the sha256 is still checked)
  --help          this text

SHA256SUMS is checked against its signature by the release key (needs openssl), and
the archive against SHA256SUMS, before anything is installed; the new emu must run
and, with --version, report exactly that version.
USAGE
}

version="${EMU_VERSION:-}"
prefix="${EMU_INSTALL:-${HOME:?HOME is not set}/.emu}"
base_url="${EMU_INSTALL_BASE_URL:-}"
skip_signature=no
while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || die "--version needs a value"; version=$2; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix=$2; shift 2 ;;
    --base-url) [ $# -ge 2 ] || die "--base-url needs a value"; base_url=$2; shift 2 ;;
    --insecure-skip-signature) skip_signature=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1" "Run sh install.sh --help." ;;
  esac
done
version=${version#v}

# --- where am I ---------------------------------------------------------------------
os=$(uname -s)
arch=$(uname -m)
case "$arch" in
  x86_64 | amd64) arch=x86_64 ;;
  arm64 | aarch64) arch=aarch64 ;;
  *) die "unsupported CPU: $arch" "emu ships for x86_64 and aarch64." ;;
esac
case "$os" in
  Linux) target="$arch-unknown-linux-gnu" ;;
  Darwin)
    # A shell under Rosetta reports x86_64 on Apple silicon: install the native build.
    if [ "$arch" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
      say "Rosetta detected: installing the native Apple silicon build"
      arch=aarch64
    fi
    target="$arch-apple-darwin"
    ;;
  *) die "unsupported OS: $os" "emu ships for Linux and macOS here; on Windows, download emu-x86_64-pc-windows-msvc.zip from the releases page." ;;
esac

if [ -z "$base_url" ]; then
  case $REPO in
    @@*) die "this copy of install.sh does not know where releases are" "Use the install.sh published with a release, or give --base-url URL." ;;
  esac
  if [ -n "$version" ]; then
    base_url="https://github.com/$REPO/releases/download/v$version"
  else
    base_url="https://github.com/$REPO/releases/latest/download"
  fi
fi
base_url=${base_url%/}
case "$base_url" in
  https://*) ;;
  http://127.* | http://localhost | http://localhost[:/]* | "http://[::1]"*) ;;
  *) die "refusing to download from $base_url: only https (or http to this machine) is accepted" "Anyone on the path could replace a plain-http download; use the https URL." ;;
esac
archive="emu-$target.tar.gz"

# --- tools ----------------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is installed" "Install curl and run this again."
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1; }
else
  die "no sha256 tool (sha256sum, shasum or openssl)" "Install coreutils."
fi

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t emu-install)
trap 'rm -rf "$tmp"' EXIT INT TERM

# --- download and verify --------------------------------------------------------------
say "downloading emu for $target from $base_url"
fetch "$base_url/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download $base_url/SHA256SUMS" "Check the version and your connection."

key_file=""
if [ -n "${EMU_INSTALL_PUBLIC_KEY:-}" ]; then
  key_file=$EMU_INSTALL_PUBLIC_KEY
  [ -r "$key_file" ] || die "cannot read EMU_INSTALL_PUBLIC_KEY=$key_file"
elif [ "${RELEASE_PUBLIC_KEY#@@}" = "$RELEASE_PUBLIC_KEY" ]; then
  key_file="$tmp/release.pub.pem"
  printf '%s\n' "$RELEASE_PUBLIC_KEY" > "$key_file"
fi
if [ "$skip_signature" = yes ]; then
  say "warning: --insecure-skip-signature: the SHA256SUMS signature is NOT checked (sha256 still is)"
elif [ -z "$key_file" ]; then
  die "this copy of install.sh has no release key, so it cannot check the release signature; nothing was installed" "Use the install.sh published with a release, or set EMU_INSTALL_PUBLIC_KEY to the release key (PEM)."
elif ! command -v openssl >/dev/null 2>&1; then
  die "openssl is not installed, so the release signature cannot be checked; nothing was installed" "Install openssl (apt-get install openssl, brew install openssl) and run this again."
else
  fetch "$base_url/SHA256SUMS.sig" "$tmp/SHA256SUMS.sig" || die "cannot download $base_url/SHA256SUMS.sig" "The release is incomplete; nothing was installed."
  if ! openssl dgst -sha256 -verify "$key_file" -signature "$tmp/SHA256SUMS.sig" "$tmp/SHA256SUMS" >/dev/null 2>&1; then
    die "the signature of SHA256SUMS does not verify with the release key; nothing was installed" "The download was tampered with or is not an emu release."
  fi
  say "SHA256SUMS signature verified"
fi

expected=$(awk -v f="$archive" '($2 == f || $2 == "*" f) && $1 ~ /^[0-9a-f]+$/ && length($1) == 64 { print $1; exit }' "$tmp/SHA256SUMS")
[ -n "$expected" ] || die "SHA256SUMS lists no $archive" "This release has no build for $target."
fetch "$base_url/$archive" "$tmp/$archive" || die "cannot download $base_url/$archive"
actual=$(sha256 "$tmp/$archive")
if [ "$actual" != "$expected" ]; then
  die "$archive has sha256 $actual, SHA256SUMS says $expected; nothing was installed" "The download was damaged or tampered with. Run the installer again."
fi

mkdir "$tmp/x"
tar -xzf "$tmp/$archive" -C "$tmp/x" || die "cannot unpack $archive"
[ -f "$tmp/x/emu" ] || die "$archive holds no emu executable"
chmod 0755 "$tmp/x/emu"
# The new binary must run, and be the version asked for, before it replaces anything.
version_line=$("$tmp/x/emu" --version 2>/dev/null || true)
[ -n "$version_line" ] || die "the downloaded emu does not run on this machine; nothing was installed" "Report this with your OS and CPU (uname -a)."
if [ -n "$version" ] && [ "$version_line" != "$version" ]; then
  die "the downloaded emu says it is $version_line, not $version; nothing was installed" "The release is mislabelled or was tampered with."
fi

# --- install --------------------------------------------------------------------------
bin="$prefix/bin"
if [ -f "$bin/emu" ] && cmp -s "$tmp/x/emu" "$bin/emu"; then
  say "emu is already installed and up to date: $bin/emu"
else
  mkdir -p "$bin"
  cp "$tmp/x/emu" "$bin/.emu.install.$$"
  chmod 0755 "$bin/.emu.install.$$"
  mv -f "$bin/.emu.install.$$" "$bin/emu"
  say "installed emu $version_line to $bin/emu"
fi

case ":${PATH:-}:" in
  *":$bin:"*) ;;
  *)
    shell_name=$(basename "${SHELL:-sh}")
    case "$shell_name" in
      fish) line="fish_add_path $bin" ;;
      zsh) line="echo 'export PATH=\"$bin:\$PATH\"' >> ~/.zshrc" ;;
      bash) line="echo 'export PATH=\"$bin:\$PATH\"' >> ~/.bashrc" ;;
      *) line="export PATH=\"$bin:\$PATH\"   # add to your shell's startup file" ;;
    esac
    say "$bin is not on your PATH; add it with:"
    say "  $line"
    ;;
esac
}

main "$@"
