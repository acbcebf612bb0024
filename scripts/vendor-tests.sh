#!/usr/bin/env bash
# The patched engine.io/socket.io crates (vendor/) with their own tests: upstream's and
# the patch's. They run in a workspace of their own, made under target/ from copies of
# the two crates (a Cargo.toml inside vendor/ would be a second workspace root in the
# tree the image's build copies), locked by vendor/tests.lock (the dependency versions
# of the backend's Cargo.lock, plus the crates' dev-dependencies). About 2 minutes the
# first time. Extra arguments go to `cargo test`.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

dir="$ROOT/target/vendor-tests"
mkdir -p "$dir"
for crate in engineioxide socketioxide; do
    rm -rf "${dir:?}/$crate"
    cp -a "vendor/$crate" "$dir/$crate"  # -a keeps times: unchanged crates are not rebuilt
done
cat >"$dir/Cargo.toml" <<'TOML'
[workspace]
resolver = "2"
members = ["engineioxide", "socketioxide"]

[patch.crates-io]
engineioxide = { path = "engineioxide" }
TOML
cp vendor/tests.lock "$dir/Cargo.lock"
log "the patched crates' own tests (vendor/engineioxide, vendor/socketioxide)"
CARGO_TARGET_DIR="$ROOT/target/vendor" cargo test --manifest-path "$dir/Cargo.toml" \
    --workspace --all-features --locked -q "$@"
