#!/usr/bin/env bash
# Compose benchmark: every image of the corpus spec (images.json of corpus/dir.sh), with a
# warm RPM cache, built by strata and by the classic pipeline on the same machine and data.
#
#   strata   `strata compose SPEC --locked` into a fresh, empty store (RPMs already in its
#            cache from a first, untimed run): install with scriptlets, rpmdb, gzip layer,
#            config, store. Measured as one command for all images.
#   classic  per image: `dnf --installroot R install <the same locked NEVRAs>` with
#            scriptlets on (RPMs from the local repos, metadata cache warm from an untimed
#            first run), then `tar -C R -c . | gzip` (one layer). Times summed; peak = max.
#            The installroots are on the same tmpfs (/dev/shm) strata stages on, when there
#            is one, so neither side pays for disk the other avoids.
# Wall time and peak RSS from /usr/bin/time -f '%e %M'. Table to stdout and to
# bench/results/compose.txt.
#
# Usage: bench/compose.sh        Needs: cargo, dnf, rpm, GNU time, gzip, root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
corpus="$("$root/corpus/dir.sh")"
results="$here/results/compose.txt"
for tool in cargo dnf rpm gzip python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "compose.sh: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "compose.sh: run as root (scriptlets run in namespaces; dnf --installroot)" >&2; exit 1; }

echo "building strata (cargo build --release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
strata="$root/target/release/strata"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
echo '%_dbpath /var/lib/rpm' >"$work/home/.rpmmacros"
python3 - "$corpus" "$work/spec.json" <<'PY'
import json, sys
corpus, out = sys.argv[1], sys.argv[2]
s = json.load(open(f"{corpus}/images.json"))
for r in s["repos"]:
    r["baseurl"] = f"{corpus}/{r['baseurl']}"
json.dump(s, open(out, "w"), indent=1)
PY
export STRATA_CACHE_DIR="$work/cache"

wall=0 peak=0
measure() { # measure CMD... (stdout/stderr to $work/last.log)
    /usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$work/last.log" 2>&1 || { cat "$work/last.log" >&2; exit 1; }
    read -r wall kb < <(tail -1 "$work/time")
    peak=$(( kb / 1024 ))
}

echo "warming strata's RPM cache and lock (untimed)" >&2
"$strata" compose "$work/spec.json" --store "$work/warm-store" >/dev/null
rm -rf "$work/warm-store"
measure "$strata" compose "$work/spec.json" --locked --store "$work/store"
s_wall=$wall s_peak=$peak
images=$(python3 -c "import json;print(' '.join(json.load(open('$work/spec.lock'))['images']))")

dnf_opts=(--releasever 12 --disablerepo='*' --repofrompath "base,file://$corpus/out/repos/base"
          --nogpgcheck --setopt=install_weak_deps=False --setopt=cachedir="$work/dnfcache" -y -q)
echo "warming dnf's metadata cache (untimed)" >&2
HOME="$work/home" dnf "${dnf_opts[@]}" --installroot "$work/warm-root" makecache >/dev/null 2>&1 || true
rm -rf "$work/warm-root"
roots="$work"
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
    roots="$(mktemp -d /dev/shm/strata-bench-XXXXXX)"
    trap 'rm -rf "$work" "$roots"' EXIT
fi
c_wall=0 c_peak=0 rows=()
for img in $images; do
    nevras=$(python3 -c "import json;l=json.load(open('$work/spec.lock'));print(' '.join(p['name']+'-'+p['version']+'-'+p['release']+'.'+p['arch'] for p in l['images']['$img']['packages']))")
    measure env HOME="$work/home" dnf "${dnf_opts[@]}" --installroot "$roots/root-$img" install $nevras
    d_wall=$wall d_peak=$peak
    measure sh -c "tar -C '$roots/root-$img' --numeric-owner --xattrs -c . | gzip > '$work/$img.tar.gz'"
    t_wall=$wall
    rows+=("$(printf '%-10s | dnf --installroot %6.2f s | tar|gzip %6.2f s' "$img" "$d_wall" "$t_wall")")
    c_wall=$(python3 -c "print(round($c_wall + $d_wall + $t_wall, 2))")
    [ "$d_peak" -gt "$c_peak" ] && c_peak=$d_peak
    [ "$peak" -gt "$c_peak" ] && c_peak=$peak
    rm -rf "$roots/root-$img"
done

{
    echo "# bench/compose.sh — $(date -u +%Y-%m-%d), $(nproc) cores; all images of images.json, warm RPM cache"
    echo "classic pipeline per image:"
    printf '  %s\n' "${rows[@]}"
    printf '%-28s | %8s | %8s\n' "tool" "wall" "peak MB"
    printf '%-28s | %7.2fs | %8s\n' "strata compose (all images)" "$s_wall" "$s_peak"
    printf '%-28s | %7.2fs | %8s\n' "dnf --installroot + tar|gzip" "$c_wall" "$c_peak"
    python3 -c "print(f'ratio strata/classic: {$s_wall/$c_wall:.3f}  (goal <= 0.1; peak goal < 200 MiB)')"
} | tee "$results"
