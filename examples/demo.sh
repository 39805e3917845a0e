#!/usr/bin/env bash
# The main job end to end on the example shipped with the project:
#   1. installs rpm and createrepo-c when missing (Debian/Ubuntu; sudo when not root),
#   2. builds strata (release),
#   3. builds the example RPM repository from examples/rpms/ (examples/build-repo.sh),
#   4. resolves examples/spec.json into examples/spec.lock and prints a summary,
#   5. composes every image into a store (examples/repo/out/store; needs root, like
#      rpm --root: files get their owners, scriptlets run in namespaces), lists and inspects
#      them, saves one as a docker-archive and runs the program in it (chrooted into its
#      unpacked layers, so no container engine is needed).
#
# Usage: examples/demo.sh
# Environment: STRATA_CACHE_DIR (metadata cache; default: a folder under examples/repo/).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v rpmbuild >/dev/null || missing+=(rpm)
command -v createrepo_c >/dev/null || missing+=(createrepo-c)
command -v busybox >/dev/null || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    if ! command -v apt-get >/dev/null; then
        echo "demo.sh: please install ${missing[*]} (no apt-get on this machine)" >&2
        exit 1
    fi
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "demo.sh: cargo not found; install Rust from https://rustup.rs" >&2
    exit 1
fi

step "building strata (cargo build --release)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
strata="${target_dir:-$root/target}/release/strata"

step "building the example repository"
"$here/build-repo.sh"

# A cache of our own keeps the demo from depending on (or polluting) ~/.cache.
export STRATA_CACHE_DIR="${STRATA_CACHE_DIR:-$here/repo/out/.cache}"

step "strata resolve examples/spec.json"
"$strata" resolve "$here/spec.json"

step "lock summary ($here/spec.lock)"
"$strata" resolve "$here/spec.json" --locked --json >"$here/repo/out/lock.json"
if command -v python3 >/dev/null; then
    python3 - "$here/repo/out/lock.json" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
for name, image in lock["images"].items():
    pkgs = image["packages"]
    print(f"{name} ({len(pkgs)} packages)")
    for p in pkgs:
        epoch = f"{p['epoch']}:" if p["epoch"] else ""
        print(f"  {p['name']}-{epoch}{p['version']}-{p['release']}.{p['arch']}  [{p['repo']}]")
PY
else
    cat "$here/repo/out/lock.json"
fi

store="$here/repo/out/store"
step "strata compose examples/spec.json --store $store"
as_root env STRATA_CACHE_DIR="$STRATA_CACHE_DIR" "$strata" compose "$here/spec.json" --locked --store "$store"

step "strata images"
as_root "$strata" images --store "$store"

step "strata inspect hello-full (packages from the image's own rpmdb)"
as_root "$strata" inspect hello-full --store "$store" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("\n".join(d["packages"]))'

step "strata build examples/build (a Dockerfile FROM hello-full)"
as_root env STRATA_CACHE_DIR="$STRATA_CACHE_DIR" "$strata" build -t hello-site --store "$store" "$here/build"

archive="$here/repo/out/hello-site.tar"
step "strata save hello-site -o $archive (docker-archive)"
as_root "$strata" save hello-site --store "$store" -o "$archive"

step "running hello-site (its layers unpacked from the archive, chrooted)"
rootfs="$(mktemp -d)"
for layer in $(tar -xOf "$archive" manifest.json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)[0]["Layers"]))'); do
    tar -xOf "$archive" "$layer" | as_root tar -x -C "$rootfs"
done
as_root chroot "$rootfs" /usr/bin/hello
as_root chroot "$rootfs" /bin/cat /etc/motd /etc/hello.out /etc/message
as_root rm -rf "$rootfs"
echo "(load it into an engine with: docker load -i $archive   or   podman load -i $archive)"
step "done: examples/spec.lock and the images in $store are up to date with examples/spec.json"
