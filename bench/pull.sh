#!/usr/bin/env bash
# Pull benchmark for strata's layer plans (issue 18, acceptance 1 and 2): the corpus fleet
# (../shared/corpus images.json, then images-updates.json) composed under three plans
#
#   single   "layers": {"mode": "single"}: one layer per image;
#   old      "layers": {"per_layer": "0ms"}: the bytes-only plan (no cost-model merges);
#            a binary that refuses that key gets no layers key instead (the stand-in, said
#            in the table's header); OLD_LAYERS='JSON' overrides;
#   new      no layers key: strata's default plan;
#   floor    "layers": {"mode": "package"}: every package its own layer (bytes only, no pulls)
#
# and pushed to ONE loopback docker-registry as REG/PLAN/NAME:release and :update. Then, for
# docker (a private dockerd + containerd, data in a temp dir) and podman (a fresh --root per
# run), each image's cold pull into an empty engine, the fleet's cold pull (all five images one
# after another into an empty engine) and each image's update pull (engine holding :release,
# `pull :update`): wall time, median of RUNS. Bytes from the registry's manifests: per image
# cold bytes (its layers), update bytes (layers of :update not in :release), fleet unique bytes.
# Twice: straight from the registry on loopback, and through bench/throttle.py (a TCP proxy on
# loopback limiting all its connections together to BW, default 100Mbit) under the same
# repository names; the proxy's byte count of each pull is checked against the manifests.
#
# Docker keeps layers as chains, so its update pull takes every layer above the first one
# :update does not share, in order, with :release; the table gives those bytes for docker.
# Table (bench/pull_report.py) per network and engine on stdout and in
# bench/results/pull.txt; progress on stderr. RUNS=3, both engines, both networks: ~50 min.
#
# Usage: bench/pull.sh     Needs root, docker.io (dockerd, containerd), podman, runc,
#        docker-registry, python3, the corpus.
#   STRATA=PATH   the binary [default: cargo build --release --bin strata]
#   RUNS=N        [3]    BW=RATE [100Mbit]    NETS="loopback throttled"   ENGINES="docker podman"
#   KINDS="cold fleet update"   which pulls to time (the bytes table is always whole)
#   RESULTS=FILE  [bench/results/pull.txt]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
RUNS=${RUNS:-3}
BW=${BW:-100Mbit}
NETS=${NETS:-loopback throttled}
ENGINES=${ENGINES:-docker podman}
KINDS=${KINDS:-cold fleet update}
RESULTS=${RESULTS:-$here/results/pull.txt}
PLANS="single old new"
[ "$(id -u)" -eq 0 ] || { echo "pull.sh: run as root (compose runs scriptlets, dockerd)" >&2; exit 1; }
for tool in dockerd containerd docker podman runc docker-registry python3 curl; do
    command -v "$tool" >/dev/null || { echo "pull.sh: $tool is needed" >&2; exit 1; }
done
corpus="$("$root/corpus/dir.sh")"
if [[ -z ${STRATA:-} ]]; then
    echo "building strata (cargo build --release)" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin strata
    STRATA="${CARGO_TARGET_DIR:-$root/target}/release/strata"
fi
STRATA=$(realpath "$STRATA")
t_start=$EPOCHSECONDS
say() { echo "[$(date +%T)] $*" >&2; }

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
work="$(mktemp -d /tmp/pullbench.XXXXXX)" # short: dockerd's and containerd's sockets live here
pids=()
host_before=$(bench_host_paths_present)
cleanup() {
    set +e
    local p
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        p=${pids[i]}
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    bench_umount_under "$work"
    rm -rf "$work"
    bench_host_paths_restore "$host_before"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the images --------------------------------------------------------------------------
old_layers=${OLD_LAYERS:-'{"per_layer": "0ms"}'}
old_note="\"layers\": $old_layers"
spec() { # spec PLAN CORPUS_SPEC: writes $work/PLAN/images.json (same name for both rounds)
    local layers
    case $1 in
        single) layers='{"mode": "single"}' ;;
        package) layers='{"mode": "package"}' ;;
        old) layers=$old_layers ;;
        new) layers= ;;
    esac
    mkdir -p "$work/$1"
    python3 - "$corpus" "$2" "$layers" "$work/$1/images.json" <<'PY'
import json, sys
corpus, name, layers, out = sys.argv[1:]
s = json.load(open(f"{corpus}/{name}"))
for r in s["repos"]:
    if "://" not in r["baseurl"] and not r["baseurl"].startswith("/"):
        r["baseurl"] = f"{corpus}/{r['baseurl']}"
if layers:
    s["layers"] = json.loads(layers)
json.dump(s, open(out, "w"), indent=1)
PY
}
compose() { # compose PLAN ROUND: report JSON in $work/PLAN.ROUND.json
    STRATA_CACHE_DIR="$work/cache-$1" "$STRATA" compose "$work/$1/images.json" \
        --store "$work/store-$1" --report --json >"$work/$1.$2.json" 2>"$work/$1.$2.err"
}

bench_registry "$work/registry"
images=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["images"]))' "$corpus/images.json")
round_spec() { [[ $1 == release ]] && echo images.json || echo images-updates.json; }
for round in release update; do
    for plan in $PLANS package; do
        say "composing the $round ($plan)"
        spec "$plan" "$(round_spec "$round")"
        if ! compose "$plan" "$round"; then
            if [[ $plan == old && -z ${OLD_LAYERS:-} ]] && grep -qi 'per_layer' "$work/$plan.$round.err"; then
                say "this strata refuses $old_layers: the old default's stand-in is no layers key"
                old_layers= old_note='stand-in: no layers key (this strata refuses "per_layer")'
                rm -rf "$work/store-old" "$work/cache-old" "$work/old"
                [[ $round == release ]] || { echo "pull.sh: per_layer refused only in the update round" >&2; exit 1; }
                spec "$plan" "$(round_spec "$round")"
                compose "$plan" "$round" || { cat "$work/$plan.$round.err" >&2; exit 1; }
            else
                cat "$work/$plan.$round.err" >&2
                exit 1
            fi
        fi
        for n in $images; do
            "$STRATA" push "$n:latest" "$reg/$plan/$n:$round" --store "$work/store-$plan" \
                --insecure-registry "$reg" >/dev/null
        done
    done
done

# --- the network: straight, or through the throttling proxy ------------------------------
proxy=
if [[ " $NETS " == *" throttled "* ]]; then
    python3 "$here/throttle.py" --upstream "$reg" --rate "$BW" --port-file "$work/proxy.port" \
        --stats "$work/proxy.stats" >/dev/null 2>"$work/proxy.log" &
    pids+=($!)
    for _ in $(seq 100); do [[ -s $work/proxy.port ]] && break; sleep 0.1; done
    proxy="127.0.0.1:$(cat "$work/proxy.port")"
    bench_wait_http "http://$proxy/v2/"
fi
proxy_down() { [[ -n $proxy ]] && { sleep 0.3; awk '$1 == "down" {print $2}' "$work/proxy.stats"; } || echo 0; }

# --- the engines -------------------------------------------------------------------------
storage_note=
if [[ " $ENGINES " == *" docker "* ]]; then
    say "starting a private dockerd"
    bench_dockerd "$work/docker"
    storage_note+="docker $(dk version --format '{{.Server.Version}}') ($(dk info --format '{{.Driver}}')), "
fi
if [[ " $ENGINES " == *" podman "* ]]; then
    bench_podman "$work/podman"
    storage_note+="podman $(podman --version | awk '{print $NF}') ($podman_driver, fresh --root per run), "
fi

# engine_empty ENGINE: no image, no layer left (docker: rmi + prune, checked on the data dir;
# podman: a fresh root).
engine_empty() {
    case $1 in
        docker)
            local ids
            ids=$(dk images -aq)
            [[ -z $ids ]] || dk rmi -f $ids >/dev/null
            dk system prune -af >/dev/null
            if [[ -n $(dk images -aq) ]] || [[ -n $(ls "$work/docker/data/overlay2" 2>/dev/null | grep -vx l) ]]; then
                echo "pull.sh: docker still holds layers after rmi + prune" >&2
                exit 1
            fi
            ;;
        podman) pm_fresh ;;
    esac
}
pull() { # pull ENGINE REF
    case $1 in
        docker) dk pull -q "$2" >/dev/null ;;
        podman) pm pull -q --tls-verify=false "$2" >/dev/null ;;
    esac
}
# timed NET ENGINE PLAN KIND IMAGE RUN REF...: pulls the REFs one after another, one line to
# $work/times.tsv (seconds, and the proxy's byte count when throttled).
timed() {
    local net=$1 engine=$2 plan=$3 kind=$4 image=$5 run=$6 b0 t0 t1 b1
    shift 6
    b0=$(proxy_down)
    t0=$EPOCHREALTIME
    for ref in "$@"; do pull "$engine" "$ref"; done
    t1=$EPOCHREALTIME
    b1=$(proxy_down)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$net" "$engine" "$plan" "$kind" "$image" "$run" \
        "$(python3 -c "print(f'{$t1 - $t0:.3f}')")" "$((b1 - b0))" >>"$work/times.tsv"
}

: >"$work/times.tsv"
for net in $NETS; do
    if [[ $net == throttled ]]; then host=$proxy; else host=$reg; fi
    for engine in $ENGINES; do
        for run in $(seq "$RUNS"); do
            for plan in $PLANS; do
                say "$net $engine run $run/$RUNS: $plan"
                if [[ " $KINDS " == *" cold "* ]]; then
                    for n in $images; do
                        engine_empty "$engine"
                        timed "$net" "$engine" "$plan" cold "$n" "$run" "$host/$plan/$n:release"
                    done
                fi
                if [[ " $KINDS " == *" fleet "* ]]; then
                    engine_empty "$engine"
                    refs=()
                    for n in $images; do refs+=("$host/$plan/$n:release"); done
                    timed "$net" "$engine" "$plan" fleet fleet "$run" "${refs[@]}"
                fi
                if [[ " $KINDS " == *" update "* ]]; then
                    for n in $images; do
                        engine_empty "$engine"
                        pull "$engine" "$reg/$plan/$n:release" # straight: only :update is timed
                        timed "$net" "$engine" "$plan" update "$n" "$run" "$host/$plan/$n:update"
                    done
                fi
            done
        done
    done
done
engine_empty docker 2>/dev/null || true

# --- the table ---------------------------------------------------------------------------
say "writing the table"
commit=$(git -C "$root" rev-parse --short HEAD)
dirty=$(git -C "$root" status --porcelain --untracked-files=no | grep -q . && echo ", tree with uncommitted changes" || true)
python3 "$here/pull_report.py" --registry "$reg" --times "$work/times.tsv" --images "$images" \
    --runs "$RUNS" --bw "$BW" --old-note "$old_note" --elapsed $((EPOCHSECONDS - t_start)) \
    --header "binary: $STRATA ($("$STRATA" --version 2>/dev/null || echo strata)), commit $commit$dirty" \
    --header "engines: ${storage_note%, }; registry: docker-registry $(docker-registry --version | awk '{print $NF}') on loopback" |
    tee "$RESULTS"
