#!/usr/bin/env bash
# The layer planner at scale (issue 18): the 100 images of bench/scale-fleet.txt, resolved
# from the metadata-only scale repository (63k packages; corpus out/scale), planned by
# strata_layers::plan with the default settings (the cost model, lan profile), Cost::OFF
# (bytes only, the plan before the model) and Cost::WAN, afresh and re-planned from the
# plan itself (crates/strata-lock/examples/plan_scale). The goal: planned in under 1 s,
# fleet bytes <= 1.10x the floor, every image within its cap (100 layers).
#
# The resolve is timed too (wall seconds, cold = empty --cache-dir, warm = the same cache
# again), for context: planning is part of every `strata resolve`.
# Table to stdout and bench/results/plan-scale.txt. The same fleet's plan is asserted (not
# timed) by crates/strata-lock/tests/plan_scale.rs.
#
# Usage: bench/plan-scale.sh [SCALE_REPO_DIR]        Needs: cargo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
scale="$(cd "${1:-$("$root/corpus/dir.sh")/out/scale}" && pwd)"
results="$here/results/plan-scale.txt"
[ -f "$scale/repodata/repomd.xml" ] || { echo "plan-scale.sh: $scale is not a repository (no repodata/repomd.xml)" >&2; exit 1; }

echo "building strata and the plan_scale example (cargo build --release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p strata-lock --example plan_scale
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
release="${target_dir:-$root/target}/release"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$release/examples/plan_scale" --spec "$here/scale-fleet.txt" "$scale" >"$work/fleet.json"

resolve_times=()
for mode in cold warm; do
    [ "$mode" = cold ] && rm -rf "$work/cache"
    start=$(date +%s.%N)
    "$release/strata" resolve "$work/fleet.json" --cache-dir "$work/cache" >"$work/resolve.out" 2>&1 \
        || { cat "$work/resolve.out" >&2; echo "plan-scale.sh: resolving the fleet failed" >&2; exit 1; }
    end=$(date +%s.%N)
    resolve_times+=("$mode $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s")
done

rc=0
(cd "$work" && "$release/examples/plan_scale" fleet.lock) >"$work/plan.txt" || rc=$?

{
    echo "# strata_layers::plan on the scale fleet (bench/scale-fleet.txt) from $scale"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r), $("$release/strata" --version 2>/dev/null || echo strata) $(git -C "$root" rev-parse --short HEAD 2>/dev/null || true)$(git -C "$root" diff --quiet HEAD -- crates/strata-layers 2>/dev/null || echo ' (+ uncommitted changes in crates/strata-layers)')"
    echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "# strata resolve of the fleet (wall, plan included): ${resolve_times[0]}, ${resolve_times[1]}"
    cat "$work/plan.txt"
} | tee "$results"

if [ "$rc" -ne 0 ]; then
    echo "plan-scale.sh: plan_scale failed (exit $rc)" >&2
    exit 1
fi
