#!/usr/bin/env bash
# The main job end to end on the example shipped with the project:
#   1. installs rpm and createrepo-c when missing (Debian/Ubuntu; sudo when not root),
#   2. builds strata (release),
#   3. builds the example RPM repository from examples/rpms/ (examples/build-repo.sh),
#   4. resolves examples/spec.json into examples/strata.lock and prints a summary.
#
# Usage: examples/demo.sh
# Environment: STRATA_CACHE_DIR (metadata cache; default: a folder under examples/repo/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v rpmbuild >/dev/null || missing+=(rpm)
command -v createrepo_c >/dev/null || missing+=(createrepo-c)
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    if ! command -v apt-get >/dev/null; then
        echo "demo.sh: please install ${missing[*]} (no apt-get on this machine)" >&2
        exit 1
    fi
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "demo.sh: cargo not found; install Rust from https://rustup.rs" >&2
    exit 1
fi

step "building strata (cargo build --release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
strata="${target_dir:-$root/target}/release/strata"

step "building the example repository"
"$here/build-repo.sh"

# A cache of our own keeps the demo from depending on (or polluting) ~/.cache.
export STRATA_CACHE_DIR="${STRATA_CACHE_DIR:-$here/repo/out/.cache}"

step "strata resolve examples/spec.json"
"$strata" resolve "$here/spec.json"

step "lock summary ($here/strata.lock)"
"$strata" resolve "$here/spec.json" --locked --json >"$here/repo/out/lock.json"
if command -v python3 >/dev/null; then
    python3 - "$here/repo/out/lock.json" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
for name, image in lock["images"].items():
    pkgs = image["packages"]
    print(f"{name} ({len(pkgs)} packages)")
    for p in pkgs:
        epoch = f"{p['epoch']}:" if p["epoch"] else ""
        print(f"  {p['name']}-{epoch}{p['version']}-{p['release']}.{p['arch']}  [{p['repo']}]")
PY
else
    cat "$here/repo/out/lock.json"
fi
step "done: $here/strata.lock is up to date with examples/spec.json"
