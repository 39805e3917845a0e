#!/usr/bin/env bash
# Builds the example RPM repository: every examples/rpms/*.spec with rpmbuild, then
# createrepo_c, into examples/repo/out/ (git-ignored).
#
# The output is reproducible: a fixed SOURCE_DATE_EPOCH is used as build time and to clamp
# file mtimes, the build host is fixed, and createrepo_c stamps repomd.xml with the same
# time. Two runs give byte-identical RPMs and metadata, so spec.lock stays stable.
#
# Usage: examples/build-repo.sh [OUT_DIR]      (default: examples/repo/out)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/repo/out}"
# 2024-01-01T00:00:00Z. Any fixed value works; changing it changes every checksum.
export SOURCE_DATE_EPOCH=1704067200

for tool in rpmbuild createrepo_c; do
    if ! command -v "$tool" >/dev/null; then
        echo "build-repo.sh: $tool not found (on Debian: apt-get install -y rpm createrepo-c)" >&2
        exit 1
    fi
done
# The example shell package wraps a statically linked busybox.
busybox_bin=""
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox_bin="$b"; break; fi
done
[ -n "$busybox_bin" ] || { echo "build-repo.sh: no static busybox (on Debian: apt-get install -y busybox-static)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Debian's rpm keeps its own database in ~/.rpmdb and reads ~/.rpmmacros; a private HOME
# keeps the user's macros out of the build.
export HOME="$work/home"
mkdir -p "$HOME"

for spec in "$here"/rpms/*.spec; do
    rpmbuild -bb --quiet \
        --define "_topdir $work/build" \
        --define "_rpmdir $work/rpms" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "_buildhost example.invalid" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "_binary_payload w9.gzdio" \
        --define "_binary_filedigest_algorithm 8" \
        --define "__os_install_post %{nil}" \
        --define "debug_package %{nil}" \
        --define "busybox_bin $busybox_bin" \
        "$spec" >"$work/rpmbuild.log" 2>&1 || {
            cat "$work/rpmbuild.log" >&2
            echo "build-repo.sh: rpmbuild failed for $spec" >&2
            exit 1
        }
done

rm -rf "$out"
mkdir -p "$out/Packages"
cp "$work"/rpms/*.rpm "$out/Packages/"
touch -d "@$SOURCE_DATE_EPOCH" "$out"/Packages/*.rpm
createrepo_c --quiet --no-database --revision "$SOURCE_DATE_EPOCH" \
    --set-timestamp-to-revision "$out" >/dev/null
echo "example repository: $out ($(ls "$out/Packages" | wc -l) packages)"
