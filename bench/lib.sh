# Shared by the benchmark scripts (sourced, not run): free ports, waiting for a server, the
# loopback docker-registry, and the corpus spec with absolute repository paths.
#
# The caller keeps an array `pids` of what it started and kills them on exit; the functions
# here append to it.

# bench_port: a free TCP port on loopback.
bench_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bench_wait_http URL: waits up to 15 s for anything to answer at URL.
bench_wait_http() {
    for _ in $(seq 150); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "$(basename "$0"): nothing answers at $1" >&2
    return 1
}

# bench_registry DIR: a docker-registry (distribution, plain HTTP, storage under DIR) on a
# free loopback port, as crates/strata-registry/tests/common/mod.rs starts it. Sets `reg`
# (HOST:PORT) and `reg_pid`, and appends the pid to `pids`.
bench_registry() {
    local dir="$1" port
    port="$(bench_port)"
    reg="127.0.0.1:$port"
    mkdir -p "$dir"
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' \
        "$dir/data" "$reg" > "$dir/config.yml"
    REGISTRY_CONFIGURATION_PATH="$dir/config.yml" docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
    reg_pid=$!
    pids+=("$reg_pid")
    bench_wait_http "http://$reg/v2/" || { cat "$dir/log" >&2; return 1; }
}

# bench_corpus_spec CORPUS OUT: the corpus's images.json with its relative repository
# baseurls made absolute (as the tests' copy_corpus_spec does), written to OUT.
bench_corpus_spec() {
    python3 - "$1/images.json" "$2" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
spec = json.load(open(src))
for repo in spec["repos"]:
    url = repo.get("baseurl", "")
    if url and "://" not in url and not url.startswith("/"):
        repo["baseurl"] = os.path.join(os.path.dirname(os.path.abspath(src)), url)
json.dump(spec, open(dst, "w"), indent=2)
PY
}

# Host paths docker, containerd and podman create on first use (as tests/common/runtime's
# HOST_PATHS, deepest first). bench_host_paths_present prints those that exist now;
# bench_host_paths_restore BEFORE removes, once empty, those that did not exist then, unless
# a test's private engine is alive (/run/strata-test-engines/live: it may be using them).
bench_host_paths=(/run/docker/plugins /run/docker /run/containerd/s /run/containerd /etc/docker
    /opt/containerd/bin /opt/containerd/lib /opt/containerd
    /var/lib/containers/cache/blob-info-cache-v1.boltdb /var/lib/containers/cache /var/lib/containers
    /run/containers/networks /run/containers /run/runc /run/netns)
bench_host_paths_present() {
    local p
    for p in "${bench_host_paths[@]}"; do [[ -e $p || -L $p ]] && echo "$p"; done
    return 0
}
bench_host_paths_restore() {
    local p live
    for live in /run/strata-test-engines/live/*; do
        live=${live##*/}
        [[ -d /proc/${live%%-*} ]] && return 0
    done
    for p in "${bench_host_paths[@]}"; do
        grep -qxF "$p" <<<"$1" && continue
        if [[ -d $p && ! -L $p ]]; then
            mountpoint -q "$p" && umount -l "$p"
            rmdir "$p" 2>/dev/null
        elif [[ -e $p || -L $p ]]; then
            rm -f "$p"
        fi
    done
    return 0
}

# bench_umount_under DIR: unmounts everything mounted at or below DIR, deepest first.
bench_umount_under() {
    local m
    python3 - "$1" <<'PY' | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
import sys, os, re
top = os.path.realpath(sys.argv[1])
unesc = lambda s: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
mounts = [unesc(l.split()[4]) for l in open("/proc/self/mountinfo")]
for m in sorted({m for m in mounts if m == top or m.startswith(top + "/")}, key=len, reverse=True):
    print(m)
PY
}

# bench_dockerd DIR: a private dockerd with its own containerd, everything under DIR (data,
# exec root, sockets, pidfile, logs), as tests/common/runtime/docker.rs starts it: no bridge,
# no iptables rules, no sysctl change, cgroupfs. Loopback registries are insecure by default
# for docker. Defines `dk` (the docker client on it) and appends both pids to `pids`.
bench_dockerd() {
    local d="$1" sock
    mkdir -p "$d/containerd" "$d/data" "$d/exec" "$d/client"
    sock="$d/containerd/containerd.sock"
    printf 'version = 2\nroot = "%s"\nstate = "%s"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n\n[grpc]\n  address = "%s"\n\n[debug]\n  level = "warn"\n\n[plugins]\n  [plugins."io.containerd.internal.v1.opt"]\n    path = "%s"\n' \
        "$d/containerd/root" "$d/containerd/state" "$sock" "$d/containerd/opt" >"$d/containerd/config.toml"
    printf '{"deprecated-key-path": "%s"}\n' "$d/key.json" >"$d/daemon.json"
    containerd --config "$d/containerd/config.toml" >"$d/containerd.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 150); do [[ -S $sock ]] && break; sleep 0.1; done
    [[ -S $sock ]] || { tail -20 "$d/containerd.log" >&2; return 1; }
    dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" --host "unix://$d/docker.sock" --containerd "$sock" \
        --bridge none --iptables=false --ip-forward=false --ip-masq=false \
        --exec-opt native.cgroupdriver=cgroupfs --shutdown-timeout 5 --log-level warn \
        >"$d/dockerd.log" 2>&1 &
    pids+=($!)
    bench_docker_dir=$d
    dk() { env -u DOCKER_HOST -u DOCKER_CONTEXT DOCKER_CONFIG="$bench_docker_dir/client" docker --host "unix://$bench_docker_dir/docker.sock" "$@"; }
    for _ in $(seq 300); do dk info >/dev/null 2>&1 && return 0; sleep 0.2; done
    tail -20 "$d/dockerd.log" >&2
    return 1
}

# bench_podman DIR: a private rootful podman configuration under DIR (as
# tests/common/runtime/podman.rs: its own containers.conf, registries.conf, auth file, file
# locks). Storage driver overlay, else vfs when overlay does not work here (`podman_driver`).
# Defines `pm` (podman on the current root) and `pm_fresh` (a new, empty root: the previous
# one unmounted and removed).
bench_podman() {
    local d="$1"
    bench_podman_dir=$d
    bench_podman_n=0
    mkdir -p "$d/tmp" "$d/networks"
    printf '[containers]\nnetns = "none"\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "%s"\nimage_copy_tmp_dir = "%s"\nlock_type = "file"\n\n[network]\nnetwork_config_dir = "%s"\n' \
        "$d/tmp" "$d/tmp" "$d/networks" >"$d/containers.conf"
    printf 'unqualified-search-registries = []\n' >"$d/registries.conf"
    printf '{}\n' >"$d/auth.json"
    pm() {
        local d=$bench_podman_dir n=$bench_podman_n
        env -u CONTAINER_HOST -u CONTAINER_CONNECTION CONTAINERS_CONF="$d/containers.conf" CONTAINERS_STORAGE_CONF="$d/storage.conf" \
            CONTAINERS_REGISTRIES_CONF="$d/registries.conf" REGISTRY_AUTH_FILE="$d/auth.json" TMPDIR="$d/tmp" \
            podman --root "$d/root-$n" --runroot "$d/run-$n" --tmpdir "$d/tmp" --network-config-dir "$d/networks" \
            --storage-driver "$podman_driver" --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"
    }
    pm_fresh() {
        local d=$bench_podman_dir n=$bench_podman_n
        bench_umount_under "$d/root-$n"
        bench_umount_under "$d/run-$n"
        rm -rf "$d/root-$n" "$d/run-$n"
        bench_podman_n=$((n + 1))
    }
    for podman_driver in overlay vfs; do
        printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' "$podman_driver" "$d/root-0" "$d/run-0" >"$d/storage.conf"
        pm info >/dev/null 2>"$d/info.err" && { pm_fresh; return 0; }
        pm_fresh
    done
    cat "$d/info.err" >&2
    return 1
}
