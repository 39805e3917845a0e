#!/usr/bin/env bash
# Dockerfile build benchmark: a five-step Dockerfile (COPY, RUN, ENV, RUN, WORKDIR) on a
# small base image, built cold (no step cache: --no-cache) and fully cached (the same
# build again), by
#
#   strata   `strata build` (RUN through runc, overlay roots), its own store;
#   buildah  `buildah bud --layers` (vfs storage, chroot isolation), the same base copied in;
#   docker   `docker build` against a private dockerd with its own containerd (BuildKit
#            when it works here, else the classic builder; the table says which).
#
# Each figure is the median wall time of 5 runs on the same machine, in the same run. The
# base image (busybox-static) is in every tool's storage before timing starts. Table to
# stdout and to bench/results/build.txt.
#
# Usage: bench/build.sh        Needs: root, cargo, busybox-static, buildah, skopeo,
#                              docker.io, containerd, runc (scripts/install-deps.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
results="$here/results/build.txt"
[ "$(id -u)" -eq 0 ] || { echo "build.sh: run as root (RUN needs an OCI runtime and overlay mounts)" >&2; exit 1; }
for tool in cargo busybox buildah skopeo dockerd containerd docker python3; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done

echo "building strata (cargo build --release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
strata="${CARGO_TARGET_DIR:-$root/target}/release/strata"

work="$(mktemp -d)"
dockerd_pid="" containerd_pid=""
cleanup() {
    [ -n "$dockerd_pid" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null || true
    [ -n "$containerd_pid" ] && kill "$containerd_pid" 2>/dev/null && wait "$containerd_pid" 2>/dev/null || true
    umount -R "$work"/docker/* 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export STRATA_CACHE_DIR="$work/cache"
store="$work/store"

# The base: busybox-static, a few applet links, passwd/group.
base="$work/bb"
mkdir -p "$base/root/bin" "$base/root/etc" "$base/root/tmp"
cp "$(command -v busybox)" "$base/root/bin/busybox"
for a in sh cat echo mkdir id pwd ls; do ln -s busybox "$base/root/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$base/root/etc/passwd"
printf 'root:x:0:\n' >"$base/root/etc/group"
printf 'FROM scratch\nCOPY root/ /\nCMD ["/bin/sh"]\n' >"$base/Dockerfile"
"$strata" build --json -t bb --store "$store" "$base" >/dev/null

ctx="$work/ctx"
mkdir -p "$ctx"
head -c 1048576 /dev/urandom | base64 >"$ctx/data.txt"
cat >"$ctx/Dockerfile" <<'EOF'
FROM bb
COPY data.txt /data/
RUN cat /data/data.txt > /data/copy
ENV STEP=4
RUN echo "$STEP" > /data/step
WORKDIR /app
EOF

median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.3f}')" "$@"; }
time_it() { # time_it CMD... → seconds on stdout; the command's output to $work/last.log
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$work/last.log" 2>&1 || { echo "failed: $*" >&2; cat "$work/last.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 -c "print($t1 - $t0)"
}
measure() { # measure NAME COLD_CMD -- CACHED_CMD: 5 cold (each followed by nothing), 5 cached
    local name=$1; shift
    local cold=() cached=() cold_cmd=() cached_cmd=()
    while [ "$1" != "--" ]; do cold_cmd+=("$1"); shift; done
    shift
    cached_cmd=("$@")
    for _ in 1 2 3 4 5; do cold+=("$(time_it "${cold_cmd[@]}")"); done
    "${cached_cmd[@]}" >/dev/null 2>&1
    for _ in 1 2 3 4 5; do cached+=("$(time_it "${cached_cmd[@]}")"); done
    printf '%s %s %s\n' "$name" "$(median "${cold[@]}")" "$(median "${cached[@]}")" >>"$work/rows"
}

echo "strata" >&2
measure strata "$strata" build -t bench --no-cache --store "$store" "$ctx" -- "$strata" build -t bench --store "$store" "$ctx"

echo "buildah" >&2
broot="$work/buildah/root" brun="$work/buildah/run"
skopeo copy -q "oci:$store:bb:latest" "containers-storage:[vfs@$broot+$brun]localhost/bb:latest"
bah=(buildah --root "$broot" --runroot "$brun" --storage-driver vfs bud --isolation chroot --pull=false --layers -t bench)
measure buildah "${bah[@]}" --no-cache "$ctx" -- "${bah[@]}" "$ctx"

echo "docker" >&2
d="$work/docker"
mkdir -p "$d/cd" "$d/data" "$d/exec"
cat >"$d/cd/config.toml" <<EOF
version = 2
root = "$d/cd/root"
state = "$d/cd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/cd/containerd.sock"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/cd/opt"
EOF
containerd --config "$d/cd/config.toml" >"$d/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 100); do [ -S "$d/cd/containerd.sock" ] && break; sleep 0.1; done
echo "{\"deprecated-key-path\": \"$d/key.json\"}" >"$d/daemon.json"
dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
    --host "unix://$d/docker.sock" --containerd "$d/cd/containerd.sock" --bridge none --iptables=false \
    --ip-forward=false --ip-masq=false --exec-opt native.cgroupdriver=cgroupfs --default-ulimit nofile=1024:1024 \
    --default-ulimit nproc=4096:4096 >"$d/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST="unix://$d/docker.sock"
for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
"$strata" save bb -o "$work/bb.tar" --store "$store"
docker load -q -i "$work/bb.tar" >/dev/null
builder="BuildKit"
if ! DOCKER_BUILDKIT=1 docker build -q --network none -t bench "$ctx" >/dev/null 2>&1; then
    builder="classic builder (BuildKit fails here)"
    export DOCKER_BUILDKIT=0
else
    export DOCKER_BUILDKIT=1
fi
measure "docker" docker build -q --network none --no-cache -t bench "$ctx" -- docker build -q --network none -t bench "$ctx"

python3 - "$work/rows" "$builder" <<'PY' | tee "$results"
import sys, datetime, os
rows = [l.split() for l in open(sys.argv[1])]
print(f"# bench/build.sh — {datetime.date.today()}, {os.cpu_count()} cores; five-step Dockerfile (COPY 1.4 MB, RUN, ENV, RUN, WORKDIR) on a busybox base; median of 5")
print(f"{'tool':<10} | {'cold':>9} | {'cached':>9}")
for name, cold, cached in rows:
    print(f"{name:<10} | {float(cold):8.3f}s | {float(cached):8.3f}s")
t = {r[0]: (float(r[1]), float(r[2])) for r in rows}
s = t["strata"]
others = {k: v for k, v in t.items() if k != "strata"}
print(f"docker used the {sys.argv[2]}")
print(f"goals: cached < 0.200 s: {'met' if s[1] < 0.2 else 'NOT met'} ({s[1]:.3f} s); "
      f"cached faster than both: {'met' if all(s[1] < v[1] for v in others.values()) else 'NOT met'}; "
      f"cold faster than both: {'met' if all(s[0] < v[0] for v in others.values()) else 'NOT met'}")
PY
