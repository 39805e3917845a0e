#!/usr/bin/env bash
# Runs every test of the workspace: unit tests and the end-to-end tests, which drive the real
# `strata` binary on the RPM corpus in ../shared/corpus and check its answers with rpm and dnf.
#
#   1. scripts/install-deps.sh (rpm, createrepo-c, dnf, libsolv-tools, zstd, time),
#   2. cargo nextest run --workspace --no-fail-fast, or cargo test --workspace --no-fail-fast
#      when cargo-nextest is not installed.
#
# Extra arguments go to the test runner (e.g. `scripts/test.sh resolve_errors`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/install-deps.sh"

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found; install Rust from https://rustup.rs" >&2
    exit 1
fi

# Without the corpus the end-to-end tests fail one by one with the same message; say it once.
corpus="$root/../shared/corpus/out/repos/base/repodata/repomd.xml"
if [ ! -f "$corpus" ]; then
    echo "test.sh: the RPM corpus is missing ($corpus); see ../shared/corpus/README.md" >&2
    exit 1
fi

echo "--- $(cargo --version); $(rpm --version); $(dnf --version 2>/dev/null | head -1 | sed 's/^/dnf /')"

if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    echo "--- cargo-nextest not installed: using cargo test"
    exec cargo test --workspace --no-fail-fast "$@"
fi
