#!/usr/bin/env bash
# Installs wasm-bindgen-cli with every dependency pinned by the Cargo.lock beside this script.
#
#   tools/wasm-bindgen-cli/install.sh VERSION [cargo install options, e.g. --root DIR]
#
# Why not `cargo install --locked wasm-bindgen-cli`: the lock the crate ships pins a yanked
# webpki-roots (1.0.11), which `--locked` refuses. This lock is that one with webpki-roots at
# 1.0.10 and nothing else changed. The crate's source is fetched by cargo (checksum checked
# against the index), copied, given this lock, and installed with `--locked`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${1:?usage: install.sh VERSION [cargo install options]}"
shift
locked="$(awk '/^name = "wasm-bindgen-cli"$/ { getline; print }' "$here/Cargo.lock" | cut -d'"' -f2)"
if [ "$locked" != "$version" ]; then
  echo "install.sh: $here/Cargo.lock is for wasm-bindgen-cli $locked, not $version;" \
    "regenerate it (see tools/wasm-bindgen-cli/README.md)" >&2
  exit 2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A throw-away package whose only dependency is the CLI crate: `cargo fetch` brings its source.
mkdir -p "$work/fetch/src"
printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nwasm-bindgen-cli = "=%s"\n' \
  "$version" >"$work/fetch/Cargo.toml"
: >"$work/fetch/src/lib.rs"
cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wasm-bindgen-cli-$version" | head -n 1)"
[ -f "$src/Cargo.toml" ] || { echo "install.sh: cargo fetch left no source for wasm-bindgen-cli $version" >&2; exit 1; }
cp -r "$src" "$work/cli"
cp "$here/Cargo.lock" "$work/cli/Cargo.lock"
cargo install --locked --force --path "$work/cli" "$@"
