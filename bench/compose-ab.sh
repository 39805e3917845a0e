#!/usr/bin/env bash
# Before/after of one change on compose time: `strata compose SPEC --locked` (the strata half
# of bench/compose.sh: all images of the corpus spec, warm RPM cache, fresh store) with two
# release binaries A and B, alternating, N rounds; wall and CPU (user+sys) medians and ratios.
# CPU time is the figure to trust on a loaded machine.
#
#   git worktree add /tmp/before REV && (cd /tmp/before && CARGO_TARGET_DIR=/tmp/tb cargo build --release --bin strata)
#   cargo build --release --bin strata
#   bench/compose-ab.sh /tmp/tb/release/strata target/release/strata
set -euo pipefail
A=${1:?usage: compose-ab.sh A-BINARY B-BINARY}; B=${2:?usage: compose-ab.sh A-BINARY B-BINARY}; N=${N:-5}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus="$("$here/../corpus/dir.sh")"
work=$(mktemp -d /tmp/ab-XXXX)
python3 - "$corpus" "$work/spec.json" <<'PY'
import json, sys
corpus, out = sys.argv[1], sys.argv[2]
s = json.load(open(f"{corpus}/images.json"))
for r in s["repos"]:
    r["baseurl"] = f"{corpus}/{r['baseurl']}"
json.dump(s, open(out, "w"), indent=1)
PY
unset STRATA_STAGING_DIR
for x in A B; do bin=${!x}; STRATA_CACHE_DIR=$work/cache-$x $bin compose $work/spec.json --store $work/warm-$x >/dev/null; rm -rf $work/warm-$x; done
for i in $(seq $N); do
  for x in A B; do
    bin=${!x}
    STRATA_CACHE_DIR=$work/cache-$x /usr/bin/time -o $work/t -f '%e %U %S' $bin compose $work/spec.json --locked --store $work/store-$x-$i >/dev/null 2>$work/err || { cat $work/err; exit 1; }
    echo "$x $(cat $work/t)"
    rm -rf $work/store-$x-$i
  done
done | tee $work/results
python3 - $work/results <<'PY'
import sys, statistics
r={}
for l in open(sys.argv[1]):
    x,w,u,s_=l.split(); r.setdefault(x,[]).append(float(w)); r.setdefault(x+'cpu',[]).append(float(u)+float(s_))
for x,v in sorted(r.items()): print(x, "median %.2f s  min %.2f s  all %s" % (statistics.median(v), min(v), v))
for k in ['', 'cpu']:
    a,b=r['A'+k],r['B'+k]
    print("%s B/A median %.3f  min %.3f" % (k or 'wall', statistics.median(b)/statistics.median(a), min(b)/min(a)))
PY
rm -rf $work
