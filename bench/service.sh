#!/usr/bin/env bash
# Build service status API latency: p50/p99 of GET /api/builds?limit=20 (the list a UI or a
# CI poller asks for) with 200 concurrent clients, 10,000 requests, against `strata serve
# --no-worker` on SQLite (embedded default) and on PostgreSQL (a private cluster: initdb +
# pg_ctl in a temporary folder on a loopback port). The database holds 200 queued builds of
# a local git repository. Requests are made by curl --parallel (one process, C, no GIL), so
# the client adds little of its own. Goal (issue 12): p99 < 50 ms. Figures side by side to
# stdout and bench/results/service.txt.
#
# Not yet here: service overhead (submit→built minus `strata build`) and queued-build
# throughput through two workers.
#
# Usage: bench/service.sh [STRATA]   STRATA: the binary [default: target/release/strata, built
#        if missing]. Needs curl >= 7.66, git, postgresql (scripts/install-deps.sh); root only
#        for PostgreSQL's initdb, which runs as the postgres user then.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
results="$here/results/service.txt"
strata="${1:-${CARGO_TARGET_DIR:-$root/target}/release/strata}"
if [ ! -x "$strata" ]; then
    echo "building strata (cargo build --release)" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
fi
for tool in curl git; do command -v "$tool" >/dev/null || { echo "service.sh: $tool not found" >&2; exit 1; }; done
pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$pgbin/initdb" ] || { echo "service.sh: PostgreSQL not found (apt-get install postgresql)" >&2; exit 1; }

work="$(mktemp -d /tmp/strata-bench-service.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

git init -q -b main "$work/src"
echo 'FROM scratch' > "$work/src/Dockerfile"
git -C "$work/src" add -A
git -C "$work/src" -c user.name=b -c user.email=b@example.org commit -qm bench

token="bench-admin-token-0123456789"
# run_one NAME DATABASE-ARGS...: prints "NAME p50 p99 errors"
run_one() {
    local name="$1"; shift
    local p; p="$(port)"
    "$strata" serve --no-worker --listen "127.0.0.1:$p" --data-dir "$work/data-$name" --admin-token "$token" "$@" 2>"$work/serve-$name.log" &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/" >/dev/null && break; sleep 0.1; done
    for i in $(seq 200); do
        STRATA_SERVER="http://127.0.0.1:$p" STRATA_TOKEN="$token" "$strata" submit "file://$work/src" --image "img$((i % 20))" >/dev/null 2>&1
    done
    : > "$work/urls-$name"
    for _ in $(seq 10000); do printf 'url = "http://127.0.0.1:%s/api/builds?limit=20"\noutput = "/dev/null"\n' "$p"; done >> "$work/urls-$name"
    curl -s --parallel --parallel-immediate --parallel-max 200 -H "Authorization: Bearer $token" \
         -w '%{http_code} %{time_total}\n' -K "$work/urls-$name" > "$work/times-$name" 2>/dev/null
    local errors; errors="$(awk '$1 != 200' "$work/times-$name" | wc -l)"
    awk '$1 == 200 {print $2 * 1000}' "$work/times-$name" | sort -n | awk -v name="$name" -v errors="$errors" \
        '{a[NR]=$1} END {printf "%-10s %8.1f %8.1f %8d %8d\n", name, a[int(NR*0.5)], a[int(NR*0.99)], NR, errors}'
}

mkdir -p "$work/pg"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$work/pg"
as_pg "$pgbin/initdb" -A trust -U strata -E UTF8 -D "$work/pg" >/dev/null
pgport="$(port)"
as_pg "$pgbin/pg_ctl" -D "$work/pg" -o "-h 127.0.0.1 -p $pgport -k $work/pg -c max_connections=50" -l "$work/pg/log" -w start >/dev/null

# Not a pipeline: run_one must run in this shell so that cleanup knows the servers' PIDs.
exec > >(tee "$results")
{
    echo "status API: GET /api/builds?limit=20, 200 concurrent clients, 10000 requests, 200 builds stored"
    echo "binary: $strata ($(uname -m), $(nproc) cores)"
    printf '%-10s %8s %8s %8s %8s\n' backend "p50 ms" "p99 ms" ok errors
    run_one sqlite
    run_one postgres --database "postgres://strata@127.0.0.1:$pgport/postgres"
}
