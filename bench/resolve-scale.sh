#!/usr/bin/env bash
# Resolution benchmark on the metadata-only scale repository (all 63,440 packages of
# Debian bookworm main as RPM metadata): strata against libsolv (testsolv) and dnf.
#
# For each request, weak dependencies off, each tool runs cold and warm:
#   strata   cold = empty --cache-dir; warm = second run on the same cache dir.
#   libsolv  cold = zstd -dc primary | rpmmd2solv > x.solv, then testsolv (times added,
#            peak = the larger); warm = testsolv on the existing x.solv.
#   dnf      cold = fresh cachedir and installroot; warm = second run, same cachedir.
# Wall time and peak RSS come from /usr/bin/time -f '%e %M'. The table goes to stdout and
# to bench/results/resolve-scale.txt.
#
# Usage: bench/resolve-scale.sh [SCALE_REPO_DIR]
# Needs: cargo, zstd, libsolv-tools (rpmmd2solv, testsolv), dnf, python3, GNU time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
scale="$(cd "${1:-$("$root/corpus/dir.sh")/out/scale}" && pwd)"
results="$here/results/resolve-scale.txt"

# A small request and three large desktop/document stacks (hundreds to ~1,200 packages).
requests=("nginx python3-django" "libreoffice" "texlive-full" "kde-full")

for tool in cargo zstd rpmmd2solv testsolv dnf python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || {
        echo "resolve-scale.sh: $tool not found (apt-get install -y zstd libsolv-tools dnf time)" >&2
        exit 1
    }
done
primary_zst=("$scale"/repodata/*-primary.xml.zst)
[ -f "${primary_zst[0]}" ] || { echo "resolve-scale.sh: no primary.xml.zst in $scale" >&2; exit 1; }

echo "building strata (cargo build --release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
strata="${target_dir:-$root/target}/release/strata"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Debian's rpm keeps its database under ~/.rpmdb; dnf in an installroot wants the
# standard path, as in the corpus validation.
mkdir -p "$work/home"
echo '%_dbpath /var/lib/rpm' >"$work/home/.rpmmacros"

failures=0
rows=()
# Results of the last measure(): wall seconds, peak MB, exit status.
wall=0 peak=0 rc=0
measure() { # measure OUTFILE CMD... : runs CMD with stdout to OUTFILE, stderr to OUTFILE.err
    local out="$1"; shift
    rc=0
    /usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$out" 2>"$out.err" || rc=$?
    # On failure /usr/bin/time first writes "Command exited with non-zero status N".
    read -r wall kb < <(tail -1 "$work/time")
    peak=$(( kb / 1024 ))
}
row() { rows+=("$(printf '%-8s | %-22s | %-4s | %7s | %7s | %s' "$@")"); printf '%s\n' "${rows[-1]}" >&2; }

strata_names() { # package names of a --json lock, one per line, sorted
    python3 -c 'import json,sys
for i in json.load(open(sys.argv[1]))["images"].values():
    for p in i["packages"]: print(p["name"])' "$1" | sort -u
}
libsolv_names() { # "  - name-[epoch:]version-release.arch" lines of testsolv's result
    sed -n 's/^  - \(.*\)-[^-]*-[^-]*$/\1/p' "$1" | sort -u
}

for i in "${!requests[@]}"; do
    req="${requests[$i]}"
    read -r -a names <<<"$req"

    # strata
    mkdir -p "$work/strata$i"
    {
        printf '{"repos": [{"id": "scale", "baseurl": "%s"}],\n' "$scale"
        printf ' "images": {"bench": {"packages": ['
        sep=""
        for n in "${names[@]}"; do printf '%s"%s"' "$sep" "$n"; sep=", "; done
        printf '], "install_weak_deps": false, "arch": "x86_64"}}}\n'
    } >"$work/strata$i/spec.json"
    for mode in cold warm; do
        [ "$mode" = cold ] && rm -rf "$work/strata-cache$i"
        measure "$work/strata$i/$mode.json" "$strata" resolve "$work/strata$i/spec.json" \
            --json --cache-dir "$work/strata-cache$i"
        if [ "$rc" -eq 0 ]; then
            strata_names "$work/strata$i/$mode.json" >"$work/names-strata$i"
            row strata "$req" "$mode" "$wall" "$peak" "$(wc -l <"$work/names-strata$i")"
        else
            row strata "$req" "$mode" "$wall" "$peak" "FAILED (exit $rc): $(tail -1 "$work/strata$i/$mode.json.err")"
            failures=$((failures + 1))
        fi
    done

    # libsolv. Debian's libsolv defaults to Debian semantics; "system x86_64 rpm" selects
    # rpm version ordering and noarch, as the corpus build's installability checks do.
    {
        # testsolv opens repo files relative to the testcase's folder.
        echo "repo scale 0 solv x.solv"
        echo "system x86_64 rpm"
        echo "solverflags ignorerecommended"
        for n in "${names[@]}"; do echo "job install name $n"; done
    } >"$work/solv$i.tc"
    # One conversion per cold run, decompression included (strata pays for it too).
    rm -f "$work/x.solv"
    measure "$work/convert$i.out" bash -c 'set -o pipefail; zstd -dc "$1" | rpmmd2solv >"$2"' \
        convert "${primary_zst[0]}" "$work/x.solv"
    conv_wall=$wall conv_peak=$peak conv_rc=$rc
    for mode in cold warm; do
        measure "$work/solv$i.$mode" testsolv "$work/solv$i.tc"
        count="$(sed -n 's/^\([0-9]*\) installed packages:$/\1/p' "$work/solv$i.$mode")"
        if [ "$mode" = cold ]; then
            wall="$(awk -v a="$wall" -v b="$conv_wall" 'BEGIN { printf "%.2f", a + b }')"
            peak=$(( peak > conv_peak ? peak : conv_peak ))
            rc=$(( rc | conv_rc ))
        fi
        if [ "$rc" -eq 0 ] && [ -n "$count" ] && ! grep -q '^Problem' "$work/solv$i.$mode"; then
            row libsolv "$req" "$mode" "$wall" "$peak" "$count"
            libsolv_names "$work/solv$i.$mode" >"$work/names-libsolv$i"
        else
            row libsolv "$req" "$mode" "$wall" "$peak" \
                "FAILED (exit $rc): $(head -c 200 "$work/solv$i.$mode" "$work/solv$i.$mode.err" | tr '\n' ' ')"
            failures=$((failures + 1))
        fi
    done

    # dnf. --assumeno makes it exit 1 after printing the transaction ("Operation aborted").
    for mode in cold warm; do
        [ "$mode" = cold ] && rm -rf "$work/dnf-cache$i" "$work/dnf-root$i"
        measure "$work/dnf$i.$mode" env HOME="$work/home" dnf \
            --installroot "$work/dnf-root$i" --setopt=cachedir="$work/dnf-cache$i" \
            --releasever 12 --setopt=reposdir=/nonexistent --disablerepo='*' \
            --repofrompath "scale,file://$scale" --enablerepo scale --nogpgcheck \
            --setopt=install_weak_deps=False --assumeno install "${names[@]}"
        count="$(sed -n 's/^Install  *\([0-9]*\) Packages\?$/\1/p' "$work/dnf$i.$mode")"
        if [ -n "$count" ] && grep -q 'Operation aborted' "$work/dnf$i.$mode" "$work/dnf$i.$mode.err"; then
            row dnf "$req" "$mode" "$wall" "$peak" "$count"
        else
            row dnf "$req" "$mode" "$wall" "$peak" "FAILED (exit $rc): $(tail -1 "$work/dnf$i.$mode.err")"
            failures=$((failures + 1))
        fi
    done
done

# Same request, different answers are worth a look: RPM leaves the choice among
# alternative providers to the resolver, so a difference is not necessarily a bug.
notes=()
for i in "${!requests[@]}"; do
    a="$work/names-strata$i" b="$work/names-libsolv$i"
    [ -f "$a" ] && [ -f "$b" ] || continue
    only_strata="$(comm -23 "$a" "$b" | tr '\n' ' ')"
    only_libsolv="$(comm -13 "$a" "$b" | tr '\n' ' ')"
    if [ -z "$only_strata$only_libsolv" ]; then
        notes+=("${requests[$i]}: strata and libsolv chose the same package names")
    else
        notes+=("${requests[$i]}: only strata: ${only_strata:-none}")
        notes+=("${requests[$i]}: only libsolv: ${only_libsolv:-none}")
    fi
done

{
    echo "# strata resolve vs libsolv vs dnf on $scale"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(uname -r)"
    echo "# $("$strata" --version 2>/dev/null || echo strata), libsolv $(dpkg-query -W -f='${Version}' libsolv-tools 2>/dev/null || echo '?'), dnf $(dnf --version 2>/dev/null | head -1)"
    echo "# weak deps off; peak = max RSS (MB); packages = size of the install set"
    printf '%-8s | %-22s | %-4s | %7s | %7s | %s\n' tool request mode "wall s" "peak MB" packages
    printf '%s\n' "--------------------------------------------------------------------------"
    printf '%s\n' "${rows[@]}"
    echo
    printf '# %s\n' "${notes[@]}"
} | tee "$results"

if [ "$failures" -gt 0 ]; then
    echo "resolve-scale.sh: $failures run(s) failed; see the table" >&2
    exit 1
fi
