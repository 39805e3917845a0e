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
