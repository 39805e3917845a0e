#!/usr/bin/env bash
# Layering and caching benchmark on the corpus fleet (../shared/corpus/images.json, then
# images-updates.json: security updates plus a bash rebuild), strata's layer plan (the
# default: the cost model, lan profile) next to
#
#   old      the plan before the cost model, as fine as sharing allows: "per_layer": "0ms";
#   single   one layer per image: the classic `dnf --installroot` + tar image, strata's
#            "layers": {"mode": "single"};
#   floor    every package its own layer, each compressed once (mode "package"), plus
#            the images' top layers: what no plan can beat.
#
# Figures (all compressed bytes, gzip):
#   1. fleet: unique bytes stored for all five images;
#   2. update: per image, what a client holding the release must pull for the update;
#   3. no-op: wall time of `strata compose` with nothing to do (median of 11), next to a
#      forced rebuild of every image, and a check that the no-op wrote nothing.
# Each mode composes into its own store and cache; the updates reuse each mode's lock, so
# the recorded plan carries over as it does for a user. Table to stdout and to
# bench/results/layers.txt.
#
# Usage: bench/layers.sh        Needs: cargo, python3, root (compose runs scriptlets).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
corpus="$("$root/corpus/dir.sh")"
results="$here/results/layers.txt"
[ "$(id -u)" -eq 0 ] || { echo "layers.sh: run as root (compose runs scriptlets in namespaces)" >&2; exit 1; }

echo "building strata (cargo build --release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
strata="${CARGO_TARGET_DIR:-$root/target}/release/strata"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

spec() { # spec MODE CORPUS_SPEC: writes $work/MODE/images.json
    mkdir -p "$work/$1"
    python3 - "$corpus" "$2" "$1" "$work/$1/images.json" <<'PY'
import json, sys
corpus, name, mode, out = sys.argv[1:]
s = json.load(open(f"{corpus}/{name}"))
for r in s["repos"]:
    r["baseurl"] = f"{corpus}/{r['baseurl']}"
if mode == "old":
    s["layers"] = {"per_layer": "0ms"}
elif mode != "auto":
    s["layers"] = {"mode": mode}
json.dump(s, open(out, "w"), indent=1)
PY
}

compose() { # compose MODE ROUND [ARGS...]: report JSON in $work/MODE.ROUND.json
    local mode=$1 round=$2
    shift 2
    STRATA_CACHE_DIR="$work/cache-$mode" "$strata" compose "$work/$mode/images.json" \
        --store "$work/store-$mode" --report --json "$@" >"$work/$mode.$round.json"
}

modes="auto old single package"
for mode in $modes; do
    echo "composing the release ($mode)" >&2
    spec "$mode" images.json
    compose "$mode" release
done
for mode in $modes; do
    echo "composing the updates ($mode)" >&2
    spec "$mode" images-updates.json
    compose "$mode" update
done

echo "timing the no-op and a forced rebuild (auto)" >&2
snap() { find "$work/store-auto" "$work/cache-auto" "$work/auto" -printf '%p %s %T@\n' | sort; }
snap >"$work/before"
noop=()
for _ in $(seq 11); do
    t0=$(date +%s.%N)
    STRATA_CACHE_DIR="$work/cache-auto" "$strata" compose "$work/auto/images.json" --store "$work/store-auto" >/dev/null
    t1=$(date +%s.%N)
    noop+=("$(python3 -c "print($t1 - $t0)")")
done
snap >"$work/after"
if cmp -s "$work/before" "$work/after"; then wrote="nothing"; else wrote="SOMETHING ($(diff "$work/before" "$work/after" | grep -c '^>') entries)"; fi
t0=$(date +%s.%N)
STRATA_CACHE_DIR="$work/cache-auto" "$strata" compose "$work/auto/images.json" --store "$work/store-auto" --force >/dev/null
t1=$(date +%s.%N)
force=$(python3 -c "print($t1 - $t0)")

python3 - "$work" "$wrote" "$force" "${noop[@]}" <<'PY' | tee "$results"
import json, sys, statistics, datetime, os
work, wrote, force, noop = sys.argv[1], sys.argv[2], float(sys.argv[3]), [float(x) for x in sys.argv[4:]]
modes = ("auto", "old", "single", "package")
r = {(m, k): json.load(open(f"{work}/{m}.{k}.json"))["report"] for m in modes for k in ("release", "update")}
mib = lambda b: f"{b / 2**20:8.1f} MiB"
print(f"# bench/layers.sh — {datetime.date.today()}, {os.cpu_count()} cores; corpus fleet, gzip")
print("1. fleet (images.json): unique compressed bytes stored")
a, o, s, f = (r[(m, "release")]["unique_layer_bytes"] for m in modes)
print(f"   strata {mib(a)} | old default {mib(o)} | single layer per image {mib(s)} | floor {mib(f)} | strata/floor {a / f:.3f} (goal <= 1.10)")
la, lo, lf = (r[(m, "release")]["unique_layers"] for m in ("auto", "old", "package"))
print(f"   distinct layers: strata {la}, old default {lo}, floor {lf}")
print("   layers per image (top layer included), strata / old default / floor:")
for img in sorted(r[("auto", "release")]["images"]):
    print(f"   {img:<10} | " + " / ".join(str(len(r[(m, "release")]["images"][img]["layers"])) for m in ("auto", "old", "package")))
print("2. update (images-updates.json): bytes a client holding the release pulls")
print(f"   {'image':<10} | {'strata':>12} | {'old default':>12} | {'single':>12} | {'floor':>12} | strata/floor (goal <= 1.25)")
worst = 0
for img in sorted(r[("auto", "update")]["images"]):
    u = {m: r[(m, "update")]["images"][img]["update_bytes"] for m in modes}
    ratio = u["auto"] / u["package"]
    worst = max(worst, ratio)
    print(f"   {img:<10} | {mib(u['auto'])} | {mib(u['old'])} | {mib(u['single'])} | {mib(u['package'])} | {ratio:.3f}")
print(f"   worst strata/floor: {worst:.3f}")
print("3. no-op compose (all five images up to date, warm caches)")
print(f"   strata compose: median {statistics.median(noop) * 1000:.0f} ms (min {min(noop) * 1000:.0f}, max {max(noop) * 1000:.0f}, 11 runs; goal < 100 ms), wrote {wrote}")
print(f"   strata compose --force (rebuild all five, layers from the cache): {force:.2f} s")
PY
