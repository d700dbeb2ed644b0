#!/usr/bin/env bash
# Builds Berth's site into target/site the way `cargo leptos build --split` does, with plain cargo
# and the helpers it runs (berth-wasm-split from tools/wasm-split, the wasm-bindgen CLI pinned to
# Cargo.lock, npm's wasm-opt 132), so neither CI nor a newcomer has to compile cargo-leptos
# (~11 minutes on 2 cores) first.
#   tools/build-site.sh [--release] [--server] [--lint]
#     --release   the `wasm-release` profile and wasm-opt (what production and the e2e run use);
#                 without it a dev WASM (bigger, quick to build, not optimised)
#     --server    also build the server binary (release with --release, else dev)
#     --lint      lint app + frontend for the browser with clippy in the same compilation
#                 (-D warnings), instead of a second `cargo clippy --target wasm32` pass
# Output: target/site/pkg/berth.js, berth.wasm (the main module), the lazy routes' parts
# (split_*.wasm, chunk_*.wasm, their loader __wasm_split.*.js and __wasm_split_manifest.json),
# berth.css, snippets/, and public/ files at target/site/: the layout cargo-leptos makes, so
# `cargo leptos watch --split` keeps working for those who install it. Servers built by our
# scripts carry LEPTOS_OUTPUT_NAME=berth (tools/lib.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

release=false server=false lint=false
for arg in "$@"; do
  case "$arg" in
    --release) release=true ;;
    --server) server=true ;;
    --lint) lint=true ;;
    *) die "unknown option $arg (use --release, --server, --lint)" ;;
  esac
done
ensure_wasm_split
build_site "$release" "$lint"
if $server; then
  if $release; then cargo build --release -p server; else cargo build -p server; fi
fi
