#!/usr/bin/env bash
# Builds the Leptos UI into app/ui/dist without trunk: cargo (wasm32, size
# profile) -> wasm-bindgen -> wasm-opt (npm binaryen 132; never Debian's 108,
# which breaks wasm-bindgen's output at run time) -> static files.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out=app/ui/dist
cargo build -p ocop-ui --bin ocop-ui --target wasm32-unknown-unknown --profile wasm-release
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
wasm-bindgen --target web --no-typescript --out-dir "$out.tmp" --out-name ocop_ui \
  target/wasm32-unknown-unknown/wasm-release/ocop-ui.wasm
wasm_opt=node_modules/.bin/wasm-opt
if [ -x "$wasm_opt" ]; then
  "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types \
    "$out.tmp/ocop_ui_bg.wasm" -o "$out.tmp/ocop_ui_bg.wasm"
else
  echo "wasm-opt not found (run npm ci): the UI is built unoptimized" >&2
fi
cp app/ui/web/index.html app/ui/web/style.css "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "ui: $(du -b "$out/ocop_ui_bg.wasm" | cut -f1) bytes wasm, $(gzip -9c "$out/ocop_ui_bg.wasm" | wc -c) gzip"
