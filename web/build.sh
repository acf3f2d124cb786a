#!/usr/bin/env bash
# Build the wasm module the page loads: the convoy library for wasm32 (WebGPU through wgpu, the
# same WGSL as native), then wasm-bindgen's JavaScript glue, into web/pkg/. Everything comes
# from the Rust toolchain and crates.io: the wasm32 target by rustup, wasm-bindgen-cli by cargo
# at exactly the version Cargo.lock pins for the library (the two must match).
#
#   bash web/build.sh            # build web/pkg/
#   bash web/build.sh --serve    # build, then serve web/ on http://127.0.0.1:8080 (PORT to change)
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown' || rustup target add wasm32-unknown-unknown
version=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  # not --locked: its own lock file may name dependency versions a registry mirror lacks
  # a debug build: it compiles in a third of the time and is fast enough for one module
  cargo install wasm-bindgen-cli --version "$version" --debug
fi
cargo rustc --lib --release --target wasm32-unknown-unknown --crate-type cdylib
wasm-bindgen --target web --no-typescript --out-dir web/pkg --out-name convoy \
  target/wasm32-unknown-unknown/release/convoy.wasm
echo "built web/pkg/ ($(du -h web/pkg/convoy_bg.wasm | cut -f1) of wasm)"
if [ "${1:-}" = "--serve" ]; then
  exec node web/serve.mjs
fi
echo "serve with: node web/serve.mjs"
