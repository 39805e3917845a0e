#!/usr/bin/env bash
# Prints the RPM corpus the tests and benchmarks use, by the rule crates/strata-corpus
# applies for the tests: $STRATA_CORPUS_DIR, else ../shared/corpus beside the checkout (CI),
# else target/corpus/current (what corpus/build.py builds). With none of them, says so on
# stderr, naming the three places and how to build one, and exits 1.
# Only file tests: this runs before every benchmark and costs nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
marker=out/repos/base/repodata/repomd.xml
if [ -n "${STRATA_CORPUS_DIR:-}" ]; then
    [ -f "$STRATA_CORPUS_DIR/$marker" ] || {
        echo "STRATA_CORPUS_DIR=$STRATA_CORPUS_DIR is not an RPM corpus (it has no $marker)" >&2
        exit 1
    }
    cd "$STRATA_CORPUS_DIR" && pwd -P
    exit 0
fi
for dir in "$root/../shared/corpus" "$root/target/corpus/current"; do
    if [ -f "$dir/$marker" ]; then
        cd "$dir" && pwd -P
        exit 0
    fi
done
echo "the RPM corpus is missing: STRATA_CORPUS_DIR is not set, and neither $root/../shared/corpus" \
     "nor $root/target/corpus/current holds $marker" >&2
echo "hint: build it with corpus/build.py (scripts/test.sh does when needed; about 10 minutes" \
     "and 400 MB the first time, see corpus/README.md)" >&2
exit 1
