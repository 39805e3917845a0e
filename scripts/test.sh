#!/usr/bin/env bash
# Runs every test of the workspace: unit tests and the end-to-end tests, which drive the real
# `strata` binary on the RPM corpus and check its answers with rpm and dnf.
#
#   1. scripts/install-deps.sh (rpm, createrepo-c, dnf, libsolv-tools, zstd, time, ...),
#   2. the RPM corpus: ../shared/corpus beside the checkout when it is there (CI; a file test,
#      nothing is built), else corpus/build.py builds one from Debian 12 packages fetched with
#      apt into target/corpus (the first time about 10 minutes and 400 MB on 2 cores; a
#      later run checks its inputs in about a second and rebuilds nothing unless apt's indexes
#      changed). STRATA_CORPUS=build builds it even beside ../shared/corpus; a
#      STRATA_CORPUS_DIR already set is used as it is. The tests get STRATA_CORPUS_DIR.
#   3. cargo nextest run --workspace --no-fail-fast, or cargo test --workspace --no-fail-fast
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

marker=out/repos/base/repodata/repomd.xml
if [ -n "${STRATA_CORPUS_DIR:-}" ] && [ "${STRATA_CORPUS:-}" != build ]; then
    # Chosen by the caller: checked, never replaced (a wrong one fails here, once).
    STRATA_CORPUS_DIR="$("$root/corpus/dir.sh")"
elif [ "${STRATA_CORPUS:-}" != build ] && [ -f "$root/../shared/corpus/$marker" ]; then
    STRATA_CORPUS_DIR="$(cd "$root/../shared/corpus" && pwd)"
else
    echo "--- the RPM corpus: corpus/build.py (from Debian 12 packages via apt; cached in target/corpus)"
    started=$SECONDS
    STRATA_CORPUS_DIR="$(python3 "$root/corpus/build.py")"
    echo "--- the RPM corpus is $STRATA_CORPUS_DIR ($((SECONDS - started)) s)"
fi
export STRATA_CORPUS_DIR
[ -n "${started:-}" ] || echo "--- the RPM corpus is $STRATA_CORPUS_DIR (nothing built)"

echo "--- $(cargo --version); $(rpm --version); $(dnf --version 2>/dev/null | head -1 | sed 's/^/dnf /')"

if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    echo "--- cargo-nextest not installed: using cargo test"
    exec cargo test --workspace --no-fail-fast "$@"
fi
