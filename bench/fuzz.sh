#!/usr/bin/env bash
# Fuzzing benchmark (not CI): one libFuzzer target per parser of untrusted input, each run for
# SECONDS from seeds made of real data, one target at a time, with a memory limit, so that
# "0 crashes, memory bounded" is a measured figure:
#
#   repodata_primary    primary.xml → index, accessors, cache file round trip  (strata-repo)
#   repodata_filelists  filelists.xml → path index onto a fixed primary         (strata-repo)
#   rpm_header          .rpm → headers, installed blob, index rows (strata-rpmdb), file list,
#                       scriptlets, triggers, payload stream (strata-package)
#   cpio                decompressed payload → cpio entries and contents        (strata-package)
#   tar                 layer blob (tar, gzip, zstd) → extracted into a temp dir (strata-rootfs)
#   dockerfile          Dockerfile + .dockerignore → parse, scope, expand, match (strata-dockerfile)
#
# Every target runs under bwrap: the host read-only, TMPDIR a private 1 GiB tmpfs, no network;
# only fuzz/ is writable (the tar target extracts hostile tars as root). Limits per run:
# -rss_limit_mb (an input that takes the process past it is an "oom" finding), -timeout per
# input, -max_len per target (65536 for Dockerfiles: BuildKit's line limit, deep enough to nest
# substitutions past the stack). With no sanitizer (stable toolchain), libFuzzer cannot hook
# malloc, so -malloc_limit_mb is inert and memory is bounded by the RSS check alone.
#
# Findings go to fuzz/artifacts/<run>/<target>/ (gitignored); the corpus grows in
# fuzz/corpus-run/<target>/ (gitignored; kept between runs, FUZZ_FRESH=1 starts from the seeds
# alone). Reproduce one: fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>.
# Table to stdout and to bench/results/fuzz.txt.
#
# Usage: bench/fuzz.sh [SECONDS [TARGET...]]    SECONDS per target, default 600; all targets
#        by default. Needs: cargo-fuzz (cargo install cargo-fuzz), bwrap (apt bubblewrap),
#        python3, rpm2cpio, zstd; the corpus corpus/dir.sh names (or STRATA_CORPUS_REPOS).
#        Env: FUZZ_RSS_MB (default 2048), FUZZ_TIMEOUT (per input, default 20 s), FUZZ_FRESH.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
fuzz="$root/fuzz"
results="$here/results/fuzz.txt"
seconds="${1:-600}"
shift || true
all=(repodata_primary repodata_filelists rpm_header cpio tar dockerfile)
targets=("${all[@]}")
[ $# -eq 0 ] || targets=("$@")
rss_mb="${FUZZ_RSS_MB:-2048}"
timeout_s="${FUZZ_TIMEOUT:-20}"
repos="${STRATA_CORPUS_REPOS:-$("$root/corpus/dir.sh")/out/repos}"

declare -A max_len=(
    [repodata_primary]=65536 [repodata_filelists]=65536 [rpm_header]=131072
    [cpio]=65536 [tar]=65536 [dockerfile]=65536
)
for t in "${targets[@]}"; do
    [ -n "${max_len[$t]:-}" ] || { echo "fuzz.sh: unknown target $t (one of: ${all[*]})" >&2; exit 2; }
done
for tool in cargo cargo-fuzz bwrap python3 rpm2cpio; do
    command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (see the header of this script)" >&2; exit 1; }
done
[ -d "$repos" ] || { echo "fuzz.sh: no corpus repos at $repos (set STRATA_CORPUS_REPOS)" >&2; exit 1; }

# Build: the stable toolchain, no sanitizer (the sanitizers need nightly's -Z flags; with
# RUSTC_BOOTSTRAP cargo-fuzz's remaining unstable flags pass on stable), debug assertions and
# overflow checks on, as in the test builds.
echo "building fuzz targets (cargo fuzz build, fuzz/target)" >&2
(cd "$root" && RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build -O --debug-assertions --sanitizer none --fuzz-dir fuzz)
bin_dir="$fuzz/target/x86_64-unknown-linux-gnu/release"

echo "generating seeds from $repos and the tests" >&2
seeds="$fuzz/target/seeds"
rm -rf "$seeds"
nice -n 19 python3 "$fuzz/seeds.py" "$repos" "$seeds" >&2

run_id="$(date -u +%Y%m%dT%H%M%SZ)"
logs="$fuzz/artifacts/$run_id"
mkdir -p "$logs"
row() { printf '%-19s|%7s |%11s |%8s |%7s |%7s |%13s |%8s |%5s |%5s |%5s |%8s\n' "$@"; }
{
    commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    git -C "$root" diff --quiet HEAD -- crates 2>/dev/null || commit="$commit + uncommitted changes in crates/"
    echo "# bench/fuzz.sh — $(date -u +%Y-%m-%d), commit $commit, $(nproc) cores, nice 19; ${seconds} s per target, -rss_limit_mb=$rss_mb, -timeout=$timeout_s, no sanitizer (stable $(rustc --version | cut -d' ' -f2)), debug assertions on"
    row target seconds executions "exec/s" cov ft "corpus" "new" crash oom tmout "peak RSS"
} >"$logs/table.txt"

for t in "${targets[@]}"; do
    corpus="$fuzz/corpus-run/$t"
    [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
    mkdir -p "$corpus" "$logs/$t"
    # Seeds committed in fuzz/corpus/<target>/ (hand-written) and generated ones; both read-only
    # inputs, new units go to the run corpus.
    dirs=("$corpus" "$seeds/$t")
    [ -d "$fuzz/corpus/$t" ] && dirs+=("$fuzz/corpus/$t")
    echo "fuzzing $t for ${seconds}s" >&2
    start=$(date +%s)
    set +e
    nice -n 19 bwrap --ro-bind / / --dev /dev --proc /proc --size $((1 << 30)) --tmpfs /tmp \
        --bind "$fuzz" "$fuzz" --setenv TMPDIR /tmp --unshare-pid --unshare-ipc --unshare-net \
        --die-with-parent --cap-add ALL -- \
        "$bin_dir/$t" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
        -timeout="$timeout_s" -max_len="${max_len[$t]}" -print_final_stats=1 \
        -artifact_prefix="$logs/$t/" "${dirs[@]}" >"$logs/$t.log" 2>&1
    status=$?
    set -e
    elapsed=$(($(date +%s) - start))
    stat() { sed -n "s/^stat::$1: *//p" "$logs/$t.log" | tail -1; }
    last="$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -1)"
    field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
    count() { find "$logs/$t" -maxdepth 1 -name "$1-*" | wc -l; }
    row "$t" "$elapsed" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" "$(field cov)" \
        "$(field ft)" "$(field corp)" "$(stat new_units_added)" "$(count crash)" "$(count oom)" \
        "$(count timeout)" "$(stat peak_rss_mb) MB" >>"$logs/table.txt"
    if [ $status -ne 0 ]; then
        echo "  $t stopped with status $status after ${elapsed}s: see $logs/$t.log and $logs/$t/" >>"$logs/table.txt"
    fi
done
echo "findings, logs: fuzz/artifacts/$run_id/" >>"$logs/table.txt"
cp "$logs/table.txt" "$results"
cat "$results"
