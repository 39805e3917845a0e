#!/usr/bin/env python3
"""The table of bench/pull.sh: bytes from the registry's manifests, median times from the
timings file (net, engine, plan, kind, image, run, seconds, proxy bytes; tab-separated)."""

import argparse
import datetime
import json
import math
import os
import statistics
import urllib.request
from collections import defaultdict

PLANS = ("single", "old", "new")
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def manifest(reg, repo, tag):
    req = urllib.request.Request(f"http://{reg}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req) as r:
        raw = r.read()
    m = json.loads(raw)
    return {
        "layers": {l["digest"]: l["size"] for l in m["layers"]},
        "order": [(l["digest"], l["size"]) for l in m["layers"]],
        "meta": len(raw) + m["config"]["size"],  # manifest and config: pulled too
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True)
    ap.add_argument("--times", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--bw", required=True)
    ap.add_argument("--old-note", required=True)
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--header", action="append", default=[])
    a = ap.parse_args()
    images = a.images.split()
    mib = lambda b: b / 2**20

    # Bytes, per plan (the floor too), from what the registry serves.
    m = {(p, n, r): manifest(a.registry, f"{p}/{n}", r)
         for p in PLANS + ("package",) for n in images for r in ("release", "update")}
    cold, layers, upd, upd_layers, fleet, fleet_layers, fleet_meta = {}, {}, {}, {}, {}, {}, {}
    # docker keeps layers as chains (a layer is present only on the same layers below it), so
    # it pulls every layer above the first one :update does not share, in order, with :release.
    chain, chain_layers = {}, {}
    for p in PLANS + ("package",):
        union = {}
        for n in images:
            rel, new = m[(p, n, "release")], m[(p, n, "update")]
            cold[p, n] = sum(rel["layers"].values())
            layers[p, n] = len(rel["layers"])
            fresh = {d: s for d, s in new["layers"].items() if d not in rel["layers"]}
            upd[p, n] = sum(fresh.values())
            upd_layers[p, n] = len(fresh)
            k = 0
            while k < min(len(rel["order"]), len(new["order"])) and rel["order"][k] == new["order"][k]:
                k += 1
            chain[p, n] = sum(size for _, size in new["order"][k:])
            chain_layers[p, n] = len(new["order"]) - k
            union.update(rel["layers"])
        fleet[p] = sum(union.values())
        fleet_layers[p] = len(union)
        fleet_meta[p] = sum(m[(p, n, "release")]["meta"] for n in images)

    # Times: median per (net, engine, plan, kind, image); proxy bytes summed per (net, engine).
    t = defaultdict(list)
    wire = defaultdict(int)
    expect = defaultdict(int)
    for line in open(a.times):
        net, engine, plan, kind, image, _run, secs, down = line.rstrip("\n").split("\t")
        t[net, engine, plan, kind, image].append(float(secs))
        if net == "throttled":
            wire[net, engine] += int(down)
            if kind == "cold":
                expect[net, engine] += cold[plan, image] + m[(plan, image, "release")]["meta"]
            elif kind == "fleet":
                expect[net, engine] += fleet[plan] + fleet_meta[plan]
            else:
                b = chain[plan, image] if engine == "docker" else upd[plan, image]
                expect[net, engine] += b + m[(plan, image, "update")]["meta"]
    med = lambda *k: statistics.median(t[k]) if t.get(k) else float("nan")
    nets = [n for n in ("loopback", "throttled") if any(k[0] == n for k in t)]
    engines = [e for e in ("docker", "podman") if any(k[1] == e for k in t)]

    out = []
    say = out.append
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    say(f"# bench/pull.sh — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {cpu}")
    for h in a.header:
        say(f"# {h}")
    say(f"# corpus fleet ({' '.join(images)}), gzip; plans: single = {{\"mode\": \"single\"}}, "
        f"old = {a.old_note}, new = no layers key (default); floor = {{\"mode\": \"package\"}}")
    say(f"# median of {a.runs} runs; cold = one image into an empty engine; fleet = the five images one after "
        f"another into an empty engine; update = `pull :update` with :release held; MiB = compressed layer bytes "
        f"from the registry's manifests; throttled = through bench/throttle.py at {a.bw} (all connections together)")
    say("")
    say("bytes (both engines, both networks)")
    say(f"  {'':<25} | {'single':>17} | {'old':>17} | {'new':>17} | {'floor':>17}")
    row = lambda label, f: say(f"  {label:<25} | " + " | ".join(f(p) for p in PLANS + ("package",)))
    for n in images:
        row(f"cold {n}", lambda p: f"{layers[p, n]:>3} L {mib(cold[p, n]):7.1f} MiB")
    row("fleet (unique)", lambda p: f"{fleet_layers[p]:>3} L {mib(fleet[p]):7.1f} MiB")
    for n in images:
        row(f"update {n}", lambda p: f"{upd_layers[p, n]:>3} L {mib(upd[p, n]):7.1f} MiB")
    for n in images:
        row(f"update {n} (docker)", lambda p: f"{chain_layers[p, n]:>3} L {mib(chain[p, n]):7.1f} MiB")
    worst = max(images, key=lambda n: upd["new", n] / upd["package", n])
    fleet_ratio = fleet["new"] / fleet["package"]
    upd_ratio = upd["new", worst] / upd["package", worst]
    met = lambda ok: "met" if ok else "NOT met"
    verdict = lambda bad, nums: "no data" if any(math.isnan(x) for x in nums) else met(not bad)
    # Under docker's rule the floor is the package plan's chain bytes (every layer above the
    # lowest changed package), not the blobs that changed.
    dworst = max(images, key=lambda n: chain["new", n] / chain["package", n])
    dratio = chain["new", dworst] / chain["package", dworst]
    goals = []
    goals.append(f"fleet bytes new/floor {fleet_ratio:.3f} (goal <= 1.10): {met(fleet_ratio <= 1.10)}")
    goals.append(f"worst update pull new/floor {upd_ratio:.3f} ({worst}; goal <= 1.25): {met(upd_ratio <= 1.25)}")
    goals.append(f"worst update pull new/floor under docker's chain rule {dratio:.3f} ({dworst}; goal <= 1.25): {met(dratio <= 1.25)}; "
                 f"new/changed blobs up to {max(chain['new', n] / upd['package', n] for n in images):.2f}")
    say("  update NAME: layers of :update not in :release (podman pulls these); (docker): every layer above the")
    say("  first one :update does not share in order with :release (docker's layers are chains, so it pulls these)")
    say(f"  old/floor fleet {fleet['old'] / fleet['package']:.3f}, single/floor fleet {fleet['single'] / fleet['package']:.3f}")
    for g in goals:
        say(f"  goal: {g}")

    for net in nets:
        for engine in engines:
            say("")
            label = "loopback" if net == "loopback" else f"{a.bw} (throttle.py)"
            say(f"{engine}, {label}: median seconds")
            say(f"  {'':<22} | {'single':>25} | {'old':>25} | {'new':>25}")
            cell = lambda L, b, s: f"{L:>3} L {mib(b):6.1f} MiB " + ("  not run" if math.isnan(s) else f"{s:6.2f} s")
            for n in images:
                say(f"  {'cold ' + n:<22} | " + " | ".join(cell(layers[p, n], cold[p, n], med(net, engine, p, 'cold', n)) for p in PLANS))
            say(f"  {'fleet cold':<22} | " + " | ".join(cell(fleet_layers[p], fleet[p], med(net, engine, p, 'fleet', 'fleet')) for p in PLANS))
            ul, ub = (chain_layers, chain) if engine == "docker" else (upd_layers, upd)
            for n in images:
                say(f"  {'update ' + n:<22} | " + " | ".join(cell(ul[p, n], ub[p, n], med(net, engine, p, 'update', n)) for p in PLANS))
            # The fleet (every image onto one host, the issue's own measure) and each image
            # alone are judged apart: a lone image's cold pull pays for the layers it shares.
            fleet_nums = [med(net, engine, p, "fleet", "fleet") for p in PLANS]
            image_nums = [med(net, engine, p, "cold", n) for n in images for p in PLANS]
            slower = [n for n in images if med(net, engine, "new", "cold", n) > med(net, engine, "single", "cold", n)]
            ratio = fleet_nums[2] / fleet_nums[0]
            if t.get((net, engine, "new", "fleet", "fleet")):
                say(f"  fleet cold, fastest-slowest of {len(t.get((net, engine, 'new', 'fleet', 'fleet'), []))} runs: "
                    + ", ".join(f"{p} {min(t[net, engine, p, 'fleet', 'fleet']):.2f}-{max(t[net, engine, p, 'fleet', 'fleet']):.2f} s"
                                for p in PLANS if t.get((net, engine, p, "fleet", "fleet"))))
            paired = lambda other: " ".join(f"{a / b:.2f}" for a, b in zip(t[net, engine, "new", "fleet", "fleet"], t[net, engine, other, "fleet", "fleet"]))
            if t.get((net, engine, "new", "fleet", "fleet")):
                say(f"  fleet cold new/old run by run: {paired('old')}; new/single: {paired('single')}")
            g = f"{engine} {net}: fleet cold pull new <= single (new/single {ratio:.2f}): {verdict(fleet_nums[2] > fleet_nums[0], fleet_nums)}"
            say(f"  goal: {g}")
            goals.append(g)
            g = (f"{engine} {net}: each image's cold pull alone new <= single: {verdict(slower, image_nums)}"
                 + (f" ({len(images) - len(slower)} of {len(images)}; slower: {', '.join(slower)})" if slower else ""))
            say(f"  goal: {g}")
            goals.append(g)
            if net == "throttled":
                fastest = lambda k, n: med(net, engine, "new", k, n) <= min(med(net, engine, p, k, n) for p in ("single", "old"))
                g = f"{engine} {net}: fleet cold pull, new the fastest of the three: {verdict(not fastest('fleet', 'fleet'), fleet_nums)}"
                say(f"  goal: {g}")
                goals.append(g)
                beaten = [n for n in images if not fastest("cold", n)]
                g = f"{engine} {net}: each image's cold pull alone, new the fastest of the three: {verdict(beaten, image_nums)}" + (
                    f" ({len(images) - len(beaten)} of {len(images)}; not fastest: {', '.join(beaten)})" if beaten else "")
                say(f"  goal: {g}")
                goals.append(g)
                say(f"  proxy counted {mib(wire[net, engine]):.1f} MiB for these pulls; manifests, configs and layers "
                    f"expected {mib(expect[net, engine]):.1f} MiB (ratio {wire[net, engine] / max(expect[net, engine], 1):.3f})")
    say("")
    say("goals")
    for g in goals:
        say(f"  {g}")
    say(f"run time: {a.elapsed // 60} min {a.elapsed % 60} s")
    print("\n".join(out))


if __name__ == "__main__":
    main()
