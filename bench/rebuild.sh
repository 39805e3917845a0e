#!/usr/bin/env bash
# Automatic rebuilds benchmark (issue 13, acceptance 3 and 6), figures side by side to stdout
# and bench/results/rebuild.txt:
#
#   update     From the webhook call (POST /api/repos/refresh with a bearer token) that
#              finds the `updates` repo changed — it gained every package of the corpus's
#              updates repo — to the rebuild event's last build finished: the event's own
#              latency_seconds (noticed → last build ended) next to this script's wall clock
#              (curl starts → `strata events` says the event ended), with the number of
#              registered images rebuilt and skipped. The server has the corpus images
#              (../shared/corpus/images.json, repos `base` and an `updates` repo that starts
#              empty, served over loopback HTTP by python3 -m http.server) and the seeds'
#              web site (a Dockerfile FROM the service's web) registered; their first builds
#              warmed the worker's caches (every base RPM); the update RPMs themselves are
#              fetched over loopback during the timed run. Goal: < 30 s.
#   unchanged  A second server (own data dir and database; updates empty again) with 100
#              registered images (a spec of the five corpus images, each under 20 names),
#              then refreshes with nothing changed: webhook wall time (curl), median and max
#              of 10, and `strata rebuild-plan` (the dry run). Goal: < 1 s. Then the dry run
#              alone with a change pending (updates gains every update, so all 100 images are
#              re-resolved and would be rebuilt), median of 5.
#
# The service is `strata serve` (SQLite, in-process worker, --repo-interval 0: repositories
# are checked on refresh only) pushing to a loopback `docker-registry` (plain HTTP).
#
# Usage: bench/rebuild.sh [STRATA]
#        STRATA: the binary [default: target/release/strata, built if missing].
#        STRATA_TREE: what the header names as its source [default: git describe --dirty].
#        Needs root (RUN steps, composing), curl, git, python3, createrepo_c,
#        docker-registry, the corpus corpus/dir.sh names (or $STRATA_CORPUS).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
results="$here/results/rebuild.txt"
corpus="$(cd "${STRATA_CORPUS:-$("$root/corpus/dir.sh")}" && pwd)"

case "${1:-}" in -h|--help) sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;; esac
strata="${1:-${CARGO_TARGET_DIR:-$root/target}/release/strata}"
if [ ! -x "$strata" ]; then
    echo "building strata (cargo build --release)" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
fi
[ "$(id -u)" -eq 0 ] || { echo "rebuild.sh: composing and RUN steps need root" >&2; exit 1; }
for tool in curl git python3 createrepo_c docker-registry; do
    command -v "$tool" >/dev/null || { echo "rebuild.sh: $tool not found" >&2; exit 1; }
done
[ -f "$corpus/images.json" ] || { echo "rebuild.sh: the corpus is not at $corpus (set STRATA_CORPUS)" >&2; exit 1; }
"$strata" serve --help | grep -q -- --repo-interval || { echo "rebuild.sh: $strata has no automatic rebuilds (serve --repo-interval)" >&2; exit 1; }

work="$(mktemp -d /tmp/strata-bench-rebuild.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
port() { bench_port; }
now() { date +%s.%N; }
wait_http() { bench_wait_http "$@"; }
gitc() { git -C "$1" -c user.name=bench -c user.email=bench@example.org "${@:2}"; }
token="bench-admin-token-0123456789"
client() { STRATA_SERVER="$server" STRATA_TOKEN="$token" "$strata" "$@"; }
describe="${STRATA_TREE:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)}"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
machine="$(uname -m), $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r)"
loadavg() { cut -d" " -f1-3 /proc/loadavg; }
load_before="$(loadavg)"

# The served repos: base (the corpus repo) and updates (a symlink to the current version,
# replaced by renaming a new symlink over it).
mkdir -p "$work/srv"
ln -s "$corpus/out/repos/base" "$work/srv/base"
published=0
# publish RPM...: a new version of updates holding these RPMs, made with createrepo_c in a
# fresh folder, then swapped in atomically.
publish() {
    published=$((published + 1))
    local dir="$work/updates-$published"
    mkdir -p "$dir/Packages"
    [ $# -eq 0 ] || cp -l "$@" "$dir/Packages/" 2>/dev/null || cp "$@" "$dir/Packages/"
    createrepo_c --quiet --no-database "$dir"
    ln -s "$dir" "$work/srv/updates.new"
    mv -T "$work/srv/updates.new" "$work/srv/updates"
}
publish
hport="$(port)"
python3 -m http.server --bind 127.0.0.1 --directory "$work/srv" "$hport" >"$work/http.log" 2>&1 &
pids+=($!)
repos="http://127.0.0.1:$hport"
wait_http "$repos/base/repodata/repomd.xml"

bench_registry "$work/registry"

# A: the corpus spec over HTTP (COPIES > 1: each image under that many names).
# spec_repo DIR COPIES
spec_repo() {
    mkdir -p "$1"
    python3 - "$corpus/images.json" "$1/strata.json" "$repos" "$2" <<'EOF'
import json, sys
src, dst, repos, copies = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
spec = json.load(open(src))
spec["repos"] = [{"id": "base", "baseurl": repos + "/base"}, {"id": "updates", "baseurl": repos + "/updates"}]
if copies > 1:
    spec["images"] = {"%s-%02d" % (name, i): image for i in range(1, copies + 1) for name, image in spec["images"].items()}
json.dump(spec, open(dst, "w"), indent=2)
EOF
    git init -q -b main "$1"
    gitc "$1" add -A
    gitc "$1" commit -qm spec
}
spec_repo "$work/a" 1
# B: the seeds' web site on the service's web.
mkdir -p "$work/b/mysite"
cat > "$work/b/Dockerfile" <<EOF
FROM $reg/web:latest
MAINTAINER Release Engineering <releng@example.com>
ADD ./mysite.tar /tmp/
RUN mv /tmp/mysite/* /var/www/html/ && rm /var/www/html/index.nginx-debian.html
EXPOSE 80
ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]
EOF
echo '<html><body>Hello from mysite</body></html>' > "$work/b/mysite/index.html"
tar -C "$work/b" -cf "$work/b/mysite.tar" mysite
rm -r "$work/b/mysite"
git init -q -b main "$work/b"
gitc "$work/b" add -A
gitc "$work/b" commit -qm site

# serve_up NAME: `strata serve` with its own data dir (pid in serve_pid, URL in server).
serve_up() {
    local sport; sport="$(port)"
    server="http://127.0.0.1:$sport"
    "$strata" serve --listen "127.0.0.1:$sport" --data-dir "$work/$1" --admin-token "$token" \
        --registry "$reg" --insecure-registry "$reg" --repo-interval 0 >"$work/serve-$1.log" 2>&1 &
    serve_pid=$!
    pids+=($serve_pid)
    wait_http "$server/"
}
serve_up data

# submit_wait NAME ARGS...: `strata submit ARGS... --wait`, its wall time in seconds on stdout.
submit_wait() {
    local name="$1" t0 t1; shift
    t0="$(now)"
    client submit "$@" --wait >"$work/submit-$name.log" 2>&1 \
        || { echo "rebuild.sh: submit $name failed:" >&2; tail -30 "$work/submit-$name.log" >&2; exit 1; }
    t1="$(now)"
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}'
}
echo "warming up: the corpus images and the site, built and registered" >&2
first_a="$(submit_wait a "file://$work/a")"
first_b="$(submit_wait b "file://$work/b" --image site)"
tracked="$(client tracked --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

# await_event ID: polls `strata events --json` every 0.1 s until event ID is not running;
# prints its state.
await_event() {
    local deadline=$((SECONDS + 1800)) state
    while :; do
        state="$(client events --json | python3 -c 'import json,sys; print(next(e["state"] for e in json.load(sys.stdin) if e["id"] == int(sys.argv[1])))' "$1")"
        [ "$state" != running ] && { echo "$state"; return; }
        [ $SECONDS -lt $deadline ] || { echo "rebuild.sh: event $1 still running after 30 min" >&2; exit 1; }
        sleep 0.1
    done
}
webhook() { curl -sS --fail-with-body -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{}' "$server/api/repos/refresh"; }

# update: every update RPM appears; the webhook; wait for the event.
echo "timing: the full update set" >&2
publish "$corpus"/out/repos/updates/Packages/*.rpm
t0="$(now)"
webhook > "$work/refresh.json"
event="$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["event"]; print(e["id"] if e else "")' "$work/refresh.json")"
[ -n "$event" ] || { echo "rebuild.sh: the refresh after the update started no event:" >&2; cat "$work/refresh.json" >&2; exit 1; }
state="$(await_event "$event")"
t1="$(now)"
client events --json > "$work/events.json"
for id in $(python3 -c 'import json,sys; print(" ".join(str(b) for e in json.load(open(sys.argv[1])) if e["id"] == int(sys.argv[2]) for b in e["builds"]))' "$work/events.json" "$event"); do
    client build-info "$id" --json > "$work/rebuild-$id.json"
done
read -r latency rebuilt skipped built longest images < <(python3 - "$work/events.json" "$event" "$tracked" "$work" <<'EOF'
import datetime, glob, json, sys
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
e = next(e for e in json.load(open(sys.argv[1])) if e["id"] == int(sys.argv[2]))
infos = [json.load(open("%s/rebuild-%d.json" % (sys.argv[4], b))) for b in e["builds"]]
rebuilt = len(e["plan"]["rebuilds"])
longest = max((i["run_seconds"] for i in infos), default=0)
print("%.2f %d %d %d %.1f %s" % (e["latency_seconds"] or -1, rebuilt, int(sys.argv[3]) - rebuilt,
      sum(i["state"] == "built" for i in infos), longest, ",".join(r["image"] for r in e["plan"]["rebuilds"])))
EOF
)
wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
[ "$state" = done ] || { echo "rebuild.sh: event $event ended $state:" >&2; client events --json >&2; tail -50 "$work/serve-data.log" >&2; exit 1; }

# unchanged: a second server (own data dir and database, so its first builds resolve the
# repos as they are then) with 100 registered images, updates empty again; then refreshes
# that find nothing.
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
publish
serve_up data-100
echo "registering 100 images" >&2
spec_repo "$work/c" 20
first_c="$(submit_wait c "file://$work/c")"
[ "$(client builds --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] || { echo "rebuild.sh: the second server has other builds" >&2; exit 1; }
tracked_c="$(client tracked --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
builds_before="$(client builds --json --limit 10000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
: > "$work/unchanged"
: > "$work/plan"
for _ in $(seq 10); do
    t0="$(now)"; webhook > "$work/refresh-unchanged.json"; t1="$(now)"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["event"] is None and not r["plan"]["rebuilds"] else 1)' "$work/refresh-unchanged.json" \
        || { echo "rebuild.sh: a refresh with nothing changed did something:" >&2; cat "$work/refresh-unchanged.json" >&2; exit 1; }
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$work/unchanged"
    t0="$(now)"; client rebuild-plan --json > /dev/null; t1="$(now)"
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$work/plan"
done
# The dry run with a change pending: updates gains every update, so every registered image
# is re-resolved and changes (nothing is executed).
publish "$corpus"/out/repos/updates/Packages/*.rpm
: > "$work/plan-changed"
for _ in $(seq 5); do
    t0="$(now)"; client rebuild-plan --json > "$work/plan-changed.json"; t1="$(now)"
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >> "$work/plan-changed"
done
pending="$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(p["rebuilds"]), len(p["unchanged"]))' "$work/plan-changed.json")"
builds_after="$(client builds --json --limit 10000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
[ "$builds_before" = "$builds_after" ] || { echo "rebuild.sh: refreshes with nothing changed (or rebuild-plan) started builds" >&2; exit 1; }
stats() { sort -g | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.3f %.3f\n", m, a[NR]}'; }
read -r un_med un_max < <(stats < "$work/unchanged")
read -r plan_med plan_max < <(stats < "$work/plan")
read -r pc_med pc_max < <(stats < "$work/plan-changed")
read -r pending_rebuilds pending_unchanged <<< "$pending"

{
    echo "automatic rebuilds (issue 13): strata serve (SQLite, in-process worker, --repo-interval 0) + loopback docker-registry; repos base + updates over loopback HTTP (python3 -m http.server)"
    echo "binary: $strata ($("$strata" --version)); tree $describe"
    echo "machine: $machine; load average before: $load_before; $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "warm-up (not timed for the goal): corpus spec, 5 images, first build ${first_a} s; site (Dockerfile FROM web) ${first_b} s; 100-image spec (second server, fresh caches) ${first_c} s"
    echo
    echo "update: updates gains all $(ls "$corpus"/out/repos/updates/Packages/*.rpm | wc -l) corpus update RPMs; webhook → event's last build finished"
    printf '%-28s %10s %10s %8s %8s %10s %s\n' run "event s" "wall s" rebuilt skipped "goal" "images (plan order)"
    printf '%-28s %10s %10s %8s %8s %10s %s\n' "full update ($tracked registered)" "$latency" "$wall" "$rebuilt" "$skipped" "< 30 s" "$images"
    echo "event s = the event's latency_seconds (noticed → last build ended); wall s = curl start → strata events says done (0.1 s polling); all $built rebuilds built, the longest build ran ${longest} s"
    echo
    echo "unchanged: refresh with nothing changed, $tracked_c registered images, 10 runs (no event, no build)"
    printf '%-28s %10s %10s %10s\n' run "median s" "max s" goal
    printf '%-28s %10s %10s %10s\n' "webhook (curl wall)" "$un_med" "$un_max" "< 1 s"
    printf '%-28s %10s %10s %10s\n' "strata rebuild-plan" "$plan_med" "$plan_max" ""
    echo
    echo "dry run with a change pending: updates gains every update, $tracked_c registered images re-resolved, 5 runs (nothing executed)"
    printf '%-28s %10s %10s %10s %10s\n' run "median s" "max s" rebuilds unchanged
    printf '%-28s %10s %10s %10s %10s\n' "strata rebuild-plan" "$pc_med" "$pc_max" "$pending_rebuilds" "$pending_unchanged"
} | tee "$work/results"
mkdir -p "$(dirname "$results")"
cp "$work/results" "$results"
