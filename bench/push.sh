#!/usr/bin/env bash
# Push benchmark (issue 15, acceptance 6): every corpus image (../shared/corpus/images.json,
# composed once into a private store, not timed) pushed to a loopback `docker-registry`
# (distribution, plain HTTP, storage in a temporary folder), a fresh registry for each
# first push, then the same push again against it (the repeat: everything is there).
#
#   loop     `strata push NAME:latest HOST/NAME:latest` for each image, one after another
#   all      `strata push --all SPEC HOST` (shared layers sent once, mounted elsewhere)
#   skopeo   `skopeo copy oci:STORE:NAME:latest docker://HOST/NAME:latest` for each image
#            (the store is an OCI layout; skopeo reads it as is)
#
# Wall time, median of RUNS rounds (each round: a fresh registry per method). Figures side by
# side on stdout and in bench/results/push.txt.
#
# Usage: bench/push.sh [STRATA]   STRATA: the binary [default: target/release/strata, built
#        if missing].  RUNS=N [default 5].  Needs docker-registry, skopeo, python3, the corpus.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STRATA=${1:-target/release/strata}
RUNS=${RUNS:-5}
if [[ ! -x $STRATA ]]; then
    cargo build --release --bin strata
fi
STRATA=$(realpath "$STRATA")
for tool in docker-registry skopeo python3 curl; do
    command -v "$tool" >/dev/null || { echo "push.sh: $tool is needed" >&2; exit 1; }
done
CORPUS=$(corpus/dir.sh)

W=$(mktemp -d)
REG_PID=
stop_registry() {
    if [[ -n $REG_PID ]]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=
    fi
}
cleanup() {
    stop_registry
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

# shellcheck source=bench/lib.sh
. bench/lib.sh
pids=()
bench_corpus_spec "$CORPUS" "$W/images.json"
SPEC=$W/images.json
STORE=$W/store
export STRATA_CACHE_DIR=$W/cache STRATA_STAGING_DIR=$W/staging
"$STRATA" compose "$SPEC" --store "$STORE" >/dev/null
IMAGES=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["images"]))' "$SPEC")
NIMAGES=$(wc -w <<<"$IMAGES")

# start_registry: a fresh registry for the next round (the previous one stopped).
start_registry() {
    stop_registry
    bench_registry "$W/registry-$(date +%s%N)"
    REG_PID=$reg_pid
    HOST=$reg
}

now() { date +%s.%N; }
# push_METHOD: one push of every image to $HOST.
push_loop() {
    for n in $IMAGES; do
        "$STRATA" push "$n:latest" "$HOST/$n:latest" --store "$STORE" --insecure-registry "$HOST" >/dev/null
    done
}
push_all() {
    "$STRATA" push --all "$SPEC" "$HOST" --store "$STORE" --insecure-registry "$HOST" >/dev/null
}
push_skopeo() {
    for n in $IMAGES; do
        skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$STORE:$n:latest" "docker://$HOST/$n:latest" >/dev/null
    done
}

declare -A TIMES
for round in $(seq "$RUNS"); do
    for m in loop all skopeo; do
        start_registry
        for phase in first repeat; do
            t0=$(now)
            "push_$m"
            t1=$(now)
            TIMES[$m.$phase]+="$(python3 -c "print(f'{$t1-$t0:.3f}')") "
        done
    done
    stop_registry
done

# The pushed digests are the store's: checked on the last registry of each kind would need
# it kept; check once here with push --all and skopeo inspect.
start_registry
push_all
for n in $IMAGES; do
    want=$(python3 -c 'import json,sys
idx=json.load(open(sys.argv[1]+"/index.json"))
print(next(m["digest"] for m in idx["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")==sys.argv[2]))' "$STORE" "$n:latest")
    got=$(skopeo inspect --tls-verify=false "docker://$HOST/$n:latest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
    [[ $want == "$got" ]] || { echo "push.sh: $n: registry has $got, store has $want" >&2; exit 1; }
done
stop_registry

median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.2f} s (min {min(v):.2f}, max {max(v):.2f})")' $1; }
commit=$(git rev-parse --short HEAD)
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo ", tree with uncommitted changes" || true)
{
    echo "# bench/push.sh — $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "# binary: $STRATA ($("$STRATA" --version 2>/dev/null || echo strata)), commit $commit$dirty"
    echo "# $NIMAGES corpus images ($IMAGES), loopback docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}'), skopeo $(skopeo --version | awk '{print $NF}'); median of $RUNS rounds, fresh registry per method and round"
    printf '%-44s | %-28s | %-28s\n' "method" "first push" "repeat"
    printf '%-44s | %-28s | %-28s\n' "strata push, per image (loop)" "$(median "${TIMES[loop.first]}")" "$(median "${TIMES[loop.repeat]}")"
    printf '%-44s | %-28s | %-28s\n' "strata push --all" "$(median "${TIMES[all.first]}")" "$(median "${TIMES[all.repeat]}")"
    printf '%-44s | %-28s | %-28s\n' "skopeo copy oci:STORE per image" "$(median "${TIMES[skopeo.first]}")" "$(median "${TIMES[skopeo.repeat]}")"
    echo "reference (issue 15, 2026-12-06): strata 1.43 s / 0.17 s, skopeo 2.59 s / 1.03 s; goal: ahead of skopeo on both, push --all below the loop"
    echo "pushed digests equal the store's (skopeo inspect after push --all): yes"
} | tee bench/results/push.txt
