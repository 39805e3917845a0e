#!/usr/bin/env bash
# Build service benchmark (issue 12, acceptance item 6), three sections, figures side by side
# to stdout and bench/results/service.txt (a section run alone replaces only its own block
# there; the others are kept as they were):
#
#   api         Status API latency: p50/p99 of GET /api/builds?limit=20 (the list a UI or a
#               CI poller asks for) with 200 concurrent clients, 10,000 requests, against
#               `strata serve --no-worker` on SQLite (embedded default) and on PostgreSQL (a
#               private cluster: initdb + pg_ctl in a temporary folder on a loopback port). The
#               database holds 200 queued builds of a local git repository. Requests are made
#               by curl --parallel (one process, C, no GIL), so the client adds little of its
#               own. Goal: p99 < 50 ms.
#   overhead    Service overhead: submit→built of a fully cached build (a Dockerfile FROM the
#               registry's busybox + one RUN, submitted once to warm the worker's step cache
#               and the registry, then timed: `strata submit --wait` wall time) minus the same
#               `strata build` run directly by the CLI (fully cached too: its own store and
#               cache, warmed by one build). Median of 9, each submission after a random
#               0–1 s pause (a random point of the worker's queue polling). Both with the
#               embedded default (`strata serve`, in-process worker) and with `strata serve
#               --no-worker` + one `strata worker`; the service time is split with build-info
#               (submit, queued, run, follow). Goal: < 1 s.
#   throughput  50 queued small Dockerfile builds (FROM the registry's busybox + one RUN
#               writing a distinct file: 50 paths of one git repository, nothing cached)
#               through `strata serve --no-worker` (SQLite) + 2 `strata worker --slots 1`
#               (separate stores and work dirs), in builds/minute, next to the same 50 built
#               one after another by `strata build` (CLI, one store), and CLI build + `strata
#               push` of each (the service's builds push too).
#
# overhead and throughput run against a loopback `docker-registry` (distribution, plain
# HTTP, storage in the temporary folder) holding the corpus busybox image (`strata compose
# ../shared/corpus/images.json --image busybox`, pushed as HOST:PORT/base/busybox:1).
#
# Usage: bench/service.sh [--only api|overhead|throughput]... [STRATA]
#        --only: run this section (repeatable, or comma-separated) [default: all three].
#        STRATA: the binary [default: target/release/strata, built if missing].
#        Needs curl >= 7.66, git, python3; api: postgresql (scripts/install-deps.sh), root only
#        for PostgreSQL's initdb, which runs as the postgres user then; overhead and
#        throughput: root (RUN), docker-registry, the corpus corpus/dir.sh names.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
results="$here/results/service.txt"
corpus="${STRATA_CORPUS:-$("$root/corpus/dir.sh" 2>/dev/null || true)}"
all_sections=(api overhead throughput)

usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
sections=()
strata=""
while [ $# -gt 0 ]; do
    case "$1" in
        --only) [ $# -ge 2 ] || { usage >&2; exit 2; }; IFS=, read -ra s <<< "$2"; sections+=("${s[@]}"); shift ;;
        --only=*) IFS=, read -ra s <<< "${1#--only=}"; sections+=("${s[@]}") ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "service.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) strata="$1" ;;
    esac
    shift
done
[ ${#sections[@]} -gt 0 ] || sections=("${all_sections[@]}")
for s in "${sections[@]}"; do
    [[ " ${all_sections[*]} " == *" $s "* ]] || { echo "service.sh: no section '$s' (api, overhead, throughput)" >&2; exit 2; }
done
wants() { [[ " ${sections[*]} " == *" $1 "* ]]; }

strata="${strata:-${CARGO_TARGET_DIR:-$root/target}/release/strata}"
if [ ! -x "$strata" ]; then
    echo "building strata (cargo build --release)" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
fi
for tool in curl git python3; do command -v "$tool" >/dev/null || { echo "service.sh: $tool not found" >&2; exit 1; }; done
if wants api; then
    pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -x "$pgbin/initdb" ] || { echo "service.sh: PostgreSQL not found (apt-get install postgresql)" >&2; exit 1; }
fi
if wants overhead || wants throughput; then
    [ "$(id -u)" -eq 0 ] || { echo "service.sh: overhead and throughput run RUN steps: run as root" >&2; exit 1; }
    command -v docker-registry >/dev/null || { echo "service.sh: docker-registry not found (apt-get install docker-registry)" >&2; exit 1; }
    [ -f "$corpus/images.json" ] || { echo "service.sh: the corpus is not at $corpus (set STRATA_CORPUS)" >&2; exit 1; }
fi

work="$(mktemp -d /tmp/strata-bench-service.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${pgbin:-}" ] && [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# stop PID...: ends servers this script started (the rest are ended by cleanup).
stop() { for p in "$@"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
port() { bench_port; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
wait_http() { bench_wait_http "$@"; }
gitc() { git -C "$1" -c user.name=bench -c user.email=bench@example.org "${@:2}"; }
describe="$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
machine="$(uname -m), $(nproc) cores"
loadavg() { cut -d" " -f1-3 /proc/loadavg; }
token="bench-admin-token-0123456789"

# ---------------------------------------------------------------------------------------
# api: status API latency on SQLite and PostgreSQL.
section_api() {
    git init -q -b main "$work/src"
    echo 'FROM scratch' > "$work/src/Dockerfile"
    gitc "$work/src" add -A
    gitc "$work/src" commit -qm bench

    mkdir -p "$work/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$work/pg"
    as_pg "$pgbin/initdb" -A trust -U strata -E UTF8 -D "$work/pg" >/dev/null
    local pgport; pgport="$(port)"
    as_pg "$pgbin/pg_ctl" -D "$work/pg" -o "-h 127.0.0.1 -p $pgport -k $work/pg -c max_connections=50" -l "$work/pg/log" -w start >/dev/null

    echo "status API: GET /api/builds?limit=20, 200 concurrent clients, 10000 requests, 200 builds stored"
    echo "binary: $strata (tree $describe; $machine; load average before: $(loadavg))"
    printf '%-10s %8s %8s %8s %8s\n' backend "p50 ms" "p99 ms" ok errors
    api_one sqlite
    api_one postgres --database "postgres://strata@127.0.0.1:$pgport/postgres"
}
# api_one NAME DATABASE-ARGS...: prints "NAME p50 p99 ok errors"
api_one() {
    local name="$1"; shift
    local p; p="$(port)"
    "$strata" serve --no-worker --listen "127.0.0.1:$p" --data-dir "$work/data-$name" --admin-token "$token" "$@" >"$work/serve-$name.log" 2>&1 &
    local pid=$!
    pids+=($pid)
    wait_http "http://127.0.0.1:$p/"
    for i in $(seq 200); do
        STRATA_SERVER="http://127.0.0.1:$p" STRATA_TOKEN="$token" "$strata" submit "file://$work/src" --image "img$((i % 20))" >/dev/null 2>>"$work/submit-$name.log"
    done
    local stored
    stored="$(STRATA_SERVER="http://127.0.0.1:$p" STRATA_TOKEN="$token" "$strata" builds --json --limit 1000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
    [ "$stored" -eq 200 ] || { echo "service.sh: $stored builds stored on $name, not 200" >&2; exit 1; }
    : > "$work/urls-$name"
    for _ in $(seq 10000); do printf 'url = "http://127.0.0.1:%s/api/builds?limit=20"\noutput = "/dev/null"\n' "$p"; done >> "$work/urls-$name"
    curl -s --parallel --parallel-immediate --parallel-max 200 -H "Authorization: Bearer $token" \
         -w '%{http_code} %{time_total}\n' -K "$work/urls-$name" > "$work/times-$name" 2>/dev/null
    local errors; errors="$(awk '$1 != 200' "$work/times-$name" | wc -l)"
    awk '$1 == 200 {print $2 * 1000}' "$work/times-$name" | sort -n | awk -v name="$name" -v errors="$errors" \
        '{a[NR]=$1} END {printf "%-10s %8.1f %8.1f %8d %8d\n", name, a[int(NR*0.5)], a[int(NR*0.99)], NR, errors}'
    stop "$pid"
}

# ---------------------------------------------------------------------------------------
# The loopback registry (as crates/strata-registry/tests/common/mod.rs starts it) with the
# corpus busybox image pushed as $base.
registry_up() {
    bench_registry "$work/registry"
    mkdir -p "$work/base"
    bench_corpus_spec "$corpus" "$work/base/images.json"
    "$strata" compose "$work/base/images.json" --image busybox --store "$work/base/store" --cache-dir "$work/base/cache" >"$work/base/compose.log" 2>&1 \
        || { cat "$work/base/compose.log" >&2; exit 1; }
    base="$reg/base/busybox:1"
    "$strata" push busybox "$base" --insecure-registry "$reg" --store "$work/base/store" >"$work/base/push.log" 2>&1 \
        || { cat "$work/base/push.log" >&2; exit 1; }
    # What the worker passes to `strata build` besides the store (--pull: FROM resolved in
    # the registry every time), so that the CLI runs the same build.
    build_flags=(--insecure-registry "$reg")
    "$strata" build --help | grep -q -- '--pull' && build_flags+=(--pull)
    registry_ready=1
}

# serve_up NAME SERVE-ARGS...: starts `strata serve` (pid in serve_pid, URL in server).
serve_up() {
    local name="$1"; shift
    local p; p="$(port)"
    server="http://127.0.0.1:$p"
    "$strata" serve --listen "127.0.0.1:$p" --data-dir "$work/$name/data" --admin-token "$token" \
        --registry "$reg" --insecure-registry "$reg" "$@" >"$work/$name/serve.log" 2>&1 &
    serve_pid=$!
    pids+=($serve_pid)
    wait_http "$server/"
}
# worker_up NAME DIR: starts a `strata worker --slots 1` with its own store and work dir under
# DIR (pid appended to worker_pids).
worker_up() {
    local wtoken; wtoken="$(STRATA_SERVER="$server" STRATA_TOKEN="$token" "$strata" token create --role worker --name "$1")"
    "$strata" worker --server "$server" --token "$wtoken" --name "$1" --slots 1 --store "$2/store" --work-dir "$2/work" \
        --insecure-registry "$reg" >"$2.log" 2>&1 &
    worker_pids+=($!)
    pids+=($!)
}
client() { STRATA_SERVER="$server" STRATA_TOKEN="$token" "$strata" "$@"; }
# info_json ID FILE: build-info --json of build ID into FILE.
info_json() { client build-info "$1" --json > "$2"; }

# ---------------------------------------------------------------------------------------
# overhead: a fully cached build through the service minus the same build by the CLI.
runs="${SERVICE_RUNS:-9}"
section_overhead() {
    local load; load="$(loadavg)"
    [ -n "${registry_ready:-}" ] || registry_up
    local src="$work/cached-src"
    git init -q -b main "$src"
    printf 'FROM %s\nRUN echo cached > /cached\n' "$base" > "$src/Dockerfile"
    gitc "$src" add -A
    gitc "$src" commit -qm cached

    local mode
    for mode in embedded worker; do
        mkdir -p "$work/ov-$mode"
        worker_pids=()
        if [ "$mode" = embedded ]; then
            serve_up "ov-$mode"
        else
            serve_up "ov-$mode" --no-worker
            worker_up w1 "$work/ov-$mode/w1"
        fi
        local i out t0 t1 id
        for i in $(seq 0 "$runs"); do
            # A random pause first, so that the submission lands at a random point of the
            # worker's idle polling (back to back, it would always land just after a poll).
            sleep "$(awk -v r="$RANDOM" 'BEGIN {printf "%.2f", r / 32768}')"
            t0="$(now)"
            out="$(client submit "file://$src" --image cached --wait 2>>"$work/ov-$mode/submit.log")" \
                || { echo "service.sh: submit --wait failed ($mode):" >&2; tail -20 "$work/ov-$mode/submit.log" >&2; exit 1; }
            t1="$(now)"
            id="$(sed -n 's/.*:build-\([0-9]*\)@.*/\1/p' <<< "$out" | head -1)"
            [ -n "$id" ] || { echo "service.sh: no build id in: $out" >&2; exit 1; }
            [ "$i" -eq 0 ] && continue   # the warm-up: fills the step cache and the registry
            info_json "$id" "$work/ov-$mode/info-$i.json"
            client logs "$id" > "$work/ov-$mode/log-$i.txt"
            grep -q '1 of 1 steps cached' "$work/ov-$mode/log-$i.txt" \
                || { echo "service.sh: build $id was not fully cached:" >&2; cat "$work/ov-$mode/log-$i.txt" >&2; exit 1; }
            echo "$t0 $t1 $work/ov-$mode/info-$i.json" >> "$work/ov-$mode/times"
        done
        stop "$serve_pid" "${worker_pids[@]}"
    done

    # The CLI: the same Dockerfile, its own store and cache, warmed by one build; then
    # build alone and build + push (the blobs are in the registry: only config and manifest
    # go up).
    local ctx="$work/cli-ov/ctx" cs="$work/cli-ov/store" cc="$work/cli-ov/cache"
    mkdir -p "$ctx"
    cp "$src/Dockerfile" "$ctx/"
    "$strata" build "$ctx" -t cached --store "$cs" --cache-dir "$cc" "${build_flags[@]}" >/dev/null 2>&1
    "$strata" push cached "$reg/cli-cached:latest" --insecure-registry "$reg" --store "$cs" >/dev/null 2>&1
    local tb tp
    for i in $(seq "$runs"); do
        t0="$(now)"
        "$strata" build "$ctx" -t cached --store "$cs" --cache-dir "$cc" "${build_flags[@]}" > "$work/cli-ov/build-$i.log" 2>&1
        t1="$(now)"
        "$strata" push cached "$reg/cli-cached:latest" --insecure-registry "$reg" --store "$cs" >/dev/null 2>&1
        tp="$(now)"
        grep -q '1 of 1 steps cached' "$work/cli-ov/build-$i.log" \
            || { echo "service.sh: the CLI build was not fully cached:" >&2; cat "$work/cli-ov/build-$i.log" >&2; exit 1; }
        awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$work/cli-ov/build"
        awk -v a="$t0" -v b="$tp" 'BEGIN {print b - a}' >> "$work/cli-ov/build-push"
    done
    tb="$(median < "$work/cli-ov/build")"
    tp="$(median < "$work/cli-ov/build-push")"

    echo "service overhead: submit→built of a fully cached Dockerfile build (FROM $base + 1 RUN; the step in the worker's cache, the layers in the registry) minus the same \`strata build ${build_flags[*]}\` by the CLI (fully cached: own store and cache, warmed), median of $runs after one warm-up, each submitted after a random 0–1 s pause"
    echo "binary: $strata (tree $describe; $machine; load average before: $load); SQLite; loopback docker-registry"
    echo "service = \`strata submit --wait\` wall time; split by build-info: submit = start → created (client + server resolving the ref), queued = created → started, run = started → finished (checkout, strata build, push build-N and latest with read-back, RPM list), follow = finished → client exit"
    printf '%-34s %8s %8s %8s %8s %8s\n' run "total s" "submit s" "queued s" "run s" "follow s"
    local row totals=()
    for mode in embedded worker; do
        row="$(python3 - "$work/ov-$mode/times" <<'EOF'
import datetime, json, statistics, sys
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
cols = [[], [], [], [], []]
for line in open(sys.argv[1]):
    t0, t1, path = line.split()
    t0, t1, info = float(t0), float(t1), json.load(open(path))
    created, started, finished = ts(info["created"]), ts(info["started"]), ts(info["finished"])
    for c, v in zip(cols, [t1 - t0, created - t0, started - created, finished - started, t1 - finished]):
        c.append(v)
print(" ".join("%8.2f" % statistics.median(c) for c in cols))
EOF
)"
        case "$mode" in
            embedded) printf '%-34s %s\n' "service: strata serve (in-process)" "$row" ;;
            worker) printf '%-34s %s\n' "service: serve + 1 strata worker" "$row" ;;
        esac
        totals+=("$(awk '{print $1}' <<< "$row")")
    done
    printf '%-34s %8.2f\n' "cli: strata build" "$tb"
    printf '%-34s %8.2f\n' "cli: strata build + strata push" "$tp"
    printf '%-34s %8.2f   (goal < 1 s)\n' "overhead: in-process − cli build" "$(awk -v a="${totals[0]}" -v b="$tb" 'BEGIN {print a - b}')"
    printf '%-34s %8.2f   (goal < 1 s)\n' "overhead: 1 worker − cli build" "$(awk -v a="${totals[1]}" -v b="$tb" 'BEGIN {print a - b}')"
}

# ---------------------------------------------------------------------------------------
# throughput: 50 queued builds through 2 workers, and the same 50 one after another by the CLI.
nbuilds="${SERVICE_BUILDS:-50}"
section_throughput() {
    local load; load="$(loadavg)"
    [ -n "${registry_ready:-}" ] || registry_up
    local src="$work/many-src" i n
    git init -q -b main "$src"
    for i in $(seq -w 1 "$nbuilds"); do
        mkdir -p "$src/p$i"
        printf 'FROM %s\nRUN echo %s > /bench-%s\n' "$base" "$i" "$i" > "$src/p$i/Dockerfile"
    done
    gitc "$src" add -A
    gitc "$src" commit -qm many

    # The service: queue all 50 first, then start both workers; the clock runs from the
    # workers' start to the last build's finish (build-info).
    mkdir -p "$work/tp"
    worker_pids=()
    serve_up tp --no-worker
    for i in $(seq -w 1 "$nbuilds"); do
        client submit "file://$src" --path "p$i" --image "t$i" >> "$work/tp/ids" 2>>"$work/tp/submit.log"
    done
    local t0; t0="$(now)"
    worker_up w1 "$work/tp/w1"
    worker_up w2 "$work/tp/w2"
    local deadline=$((SECONDS + 1800)) states
    while :; do
        states="$(client builds --json --limit 1000 | python3 -c 'import json,sys; b=json.load(sys.stdin); print(" ".join(sorted({x["state"] for x in b})))')"
        [ "$states" = built ] && break
        [[ " $states " == *" failed "* || " $states " == *" canceled "* ]] && { echo "service.sh: a throughput build did not build:" >&2; client builds >&2; exit 1; }
        [ $SECONDS -lt $deadline ] || { echo "service.sh: throughput builds not done after 30 min: $states" >&2; exit 1; }
        sleep 0.5
    done
    local id cached=0
    while read -r id; do
        info_json "$id" "$work/tp/info-$id.json"
        client logs "$id" > "$work/tp/log-$id.txt"
        grep -q '0 of 1 steps cached' "$work/tp/log-$id.txt" || cached=$((cached + 1))
    done < "$work/tp/ids"
    [ "$cached" -eq 0 ] || { echo "service.sh: $cached service builds had their RUN cached" >&2; exit 1; }
    stop "$serve_pid" "${worker_pids[@]}"
    local svc
    svc="$(python3 - "$t0" "$work/tp" <<'EOF'
import collections, datetime, glob, json, statistics, sys
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
t0, infos = float(sys.argv[1]), [json.load(open(p)) for p in glob.glob(sys.argv[2] + "/info-*.json")]
wall = max(ts(i["finished"]) for i in infos) - t0
by = collections.Counter(i["worker"].split()[0] for i in infos)
print("%d %.1f %.1f %.2f %s" % (len(infos), wall, 60 * len(infos) / wall, statistics.mean(i["run_seconds"] for i in infos),
      ",".join("%s:%d" % kv for kv in sorted(by.items()))))
EOF
)"

    # The CLI: one store and cache, the 50 one after another; each timed as build, then push.
    local cs="$work/cli-tp/store" cc="$work/cli-tp/cache" t1 t2
    mkdir -p "$work/cli-tp"
    for i in $(seq -w 1 "$nbuilds"); do
        t0="$(now)"
        "$strata" build "$src/p$i" -t "t$i" --store "$cs" --cache-dir "$cc" "${build_flags[@]}" > "$work/cli-tp/build-$i.log" 2>&1 \
            || { cat "$work/cli-tp/build-$i.log" >&2; exit 1; }
        t1="$(now)"
        "$strata" push "t$i" "$reg/cli/t$i:latest" --insecure-registry "$reg" --store "$cs" >/dev/null 2>&1
        t2="$(now)"
        grep -q '0 of 1 steps cached' "$work/cli-tp/build-$i.log" \
            || { echo "service.sh: CLI build $i had its RUN cached" >&2; cat "$work/cli-tp/build-$i.log" >&2; exit 1; }
        echo "$t0 $t1 $t2" >> "$work/cli-tp/times"
    done

    echo "throughput: $nbuilds queued small Dockerfile builds (FROM $base + 1 RUN writing a distinct file; $nbuilds paths of one git repo; no step cached, each RUN runs)"
    echo "binary: $strata (tree $describe; $machine; load average before: $load); SQLite; loopback docker-registry"
    echo "service = strata serve --no-worker + 2 strata worker --slots 1 (own stores and work dirs), all $nbuilds queued before the workers start, clock from their start to the last finish; every service build also pushes (build-N and latest, read back) and records its RPM list"
    echo "cli = strata build one after another, one store (build only; build + strata push of each to the same registry)"
    echo "s/build: mean time of one build (service: build-info run_seconds, on a worker; cli: the command's wall time)"
    printf '%-34s %8s %8s %12s %14s  %s\n' run builds "wall s" "builds/min" "s/build" "builds per worker"
    read -r n wall bpm med by <<< "$svc"
    printf '%-34s %8d %8.1f %12.1f %14.2f  %s\n' "service: 2 workers (build + push)" "$n" "$wall" "$bpm" "$med" "$by"
    awk -v n="$nbuilds" '{b += $2 - $1; p += $3 - $1} END {
        printf "%-34s %8d %8.1f %12.1f %14.2f\n", "cli: strata build", n, b, 60 * n / b, b / n;
        printf "%-34s %8d %8.1f %12.1f %14.2f\n", "cli: strata build + strata push", n, p, 60 * n / p, p / n }' "$work/cli-tp/times"
}

# ---------------------------------------------------------------------------------------
# Each section's block is printed as it completes and replaces that section's block in
# $results (blocks are separated by a blank line and named by their first word(s)).
for s in "${all_sections[@]}"; do
    wants "$s" || continue
    echo "service.sh: $s" >&2
    # Not a pipeline: the section must run in this shell so that cleanup knows its servers.
    "section_$s" > "$work/block-$s"
    cat "$work/block-$s"
    echo
done
python3 - "$results" "$work" <<'EOF'
import os, sys
results, work = sys.argv[1], sys.argv[2]
names = {"api": "status API:", "overhead": "service overhead:", "throughput": "throughput:"}
old = {}
if os.path.exists(results):
    for block in open(results).read().split("\n\n"):
        for name, prefix in names.items():
            if block.strip().startswith(prefix):
                old[name] = block.strip("\n")
for name in names:
    path = os.path.join(work, "block-" + name)
    if os.path.exists(path):
        old[name] = open(path).read().strip("\n")
with open(results, "w") as f:
    f.write("\n\n".join(old[n] for n in names if n in old) + "\n")
EOF
