#!/usr/bin/env python3
"""Builds strata's RPM test corpus from Debian 12 packages fetched with apt.

    corpus/build.py [--out DIR] [--work DIR] [--jobs N] [--no-scale] [--no-contents]

Prints progress on stderr and, last, the corpus directory on stdout (the folder the tests
take as STRATA_CORPUS_DIR: out/repos/{base,updates}, out/scale, out/manifest.json and the
example specs images.json, images-updates.json, checks.json).

Steps: resolve (the seeds' dependency closure in apt's indexes, base and updates), download
(apt-get download, SHA256 checked), analyse (.deb contents), build (rpmbuild per Debian
source, twice where an automatic requirement has no provider), verify (each payload against
its data.tar), repos (createrepo_c, installability with libsolv, manifest), scale (the
metadata-only repository of all of bookworm main).

Caching: the whole result is keyed by its inputs (apt's index files, the seed list, the
example specs, this builder's version, the rpm/createrepo_c/zstd versions); when the
current corpus has that key nothing runs. Otherwise every step reuses what it can from the
work directory (.debs, analyses, RPMs keyed by their spec's digest, the scale repository
keyed by its index). The new corpus is written beside the old one and published by
renaming a symlink: a build killed at any point leaves the previous corpus, or none.
corpus/README.md describes the conversion rules."""

import argparse
import concurrent.futures
import fcntl
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from corpuslib import apt, deb, repos, rpms, scale  # noqa: E402
from corpuslib.util import (BuildError, Step, digest_of, link_or_copy, make_read_only, read_json,  # noqa: E402
                            remove_tree, run, say, write_json)
from corpuslib.versions import rpm_evr_compare  # noqa: E402

# CONVERTER is part of every cache key (plans, .deb analyses, specs and so RPMs, the scale
# repository): bump it when the conversion changes. VERSION keys the published corpus as a
# whole: bump it when only the publishing changes (repodata, checks, reports), and nothing
# is rebuilt but that.
CONVERTER = "strata-corpus/1"
VERSION = "strata-corpus/3"
HERE = os.path.dirname(os.path.abspath(__file__))
SPECS = ("images.json", "images-updates.json", "checks.json")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "target", "corpus"),
                    help="where corpora are kept: OUT/current is the latest (default: target/corpus)")
    ap.add_argument("--work", default=os.environ.get("STRATA_CORPUS_WORK"),
                    help="cache of .debs, analyses and RPMs (default: $STRATA_CORPUS_WORK, else OUT/work); "
                         "clones may share one")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel rpmbuilds")
    ap.add_argument("--no-scale", action="store_true", help="leave out the scale repository (the solver benchmark's)")
    ap.add_argument("--no-contents", action="store_true",
                    help="no file paths in the scale repository (saves downloading Debian's 45 MB Contents indexes)")
    return ap.parse_args()


def read_seeds(path):
    seeds = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            seeds += line.split("#", 1)[0].split()
    return seeds


def tool_versions():
    return {t: run(argv).strip().splitlines()[0] for t, argv in
            (("rpm", ["rpm", "--version"]), ("createrepo_c", ["createrepo_c", "--version"]), ("zstd", ["zstd", "-V"]))}


def resolve(work, apt_files, fingerprint, seeds):
    """The plan: which Debian packages go into base and updates. Cached per apt indexes."""
    path = os.path.join(work, "plans", digest_of([CONVERTER, fingerprint, seeds]) + ".json")
    plan = read_json(path)
    if plan is not None:
        return plan, True
    base_idx, upd_idx = apt.snapshots(apt_files)
    base_names, upd_names = apt.closure(base_idx, seeds), apt.closure(upd_idx, seeds)

    def entry(r):
        src, srcver = apt.source_of(r)
        e = {"name": r["Package"], "version": r["Version"], "arch": r["Architecture"], "suite": r["_Suite"],
             "sha256": r["SHA256"], "source": src, "source_version": srcver}
        e["deb"] = apt.deb_file_name(e)
        return e
    base = {n: entry(base_idx[n]) for n in sorted(base_names)}
    updates = {n: entry(upd_idx[n]) for n in sorted(upd_names)
               if n not in base or apt.dpkg_compare(upd_idx[n]["Version"], base[n]["version"]) > 0}
    apt.check_with_madison(list(base.values()) + list(updates.values()))
    # The providers that a versioned Conflicts must not hit (spec.conflict()).
    unversioned = apt.unversioned_providers(list(upd_idx.values()) + list(base_idx.values()))
    wanted = {c for r in list(base_idx.values()) + list(upd_idx.values()) if r["Package"] in base or r["Package"] in updates
              for f in ("Conflicts", "Breaks") for g in apt.parse_relations(r.get(f)) for c, op, _ in g if op}
    plan = {"seeds": seeds, "base": base, "updates": updates,
            "unversioned_providers": {k: v for k, v in unversioned.items() if k in wanted}}
    write_json(path, plan)
    return plan, False


def groups_of(plan):
    """One build group per Debian source and binary version in each repository, plus the
    synthetic bash update (Debian's newest bash, Release + '.1', one added file)."""
    groups = {}
    for repo in ("base", "updates"):
        for e in plan[repo].values():
            g = groups.setdefault((repo, "debian", e["source"], e["version"]),
                                  {"repo": repo, "variant": "debian", "source": e["source"],
                                   "source_version": e["source_version"], "suite": e["suite"], "binaries": []})
            if g["source_version"] != e["source_version"]:
                raise BuildError("source %s: binaries at %s name two source versions (%s, %s)"
                                 % (e["source"], e["version"], g["source_version"], e["source_version"]))
            g["binaries"].append(e)
    bash = plan["updates"].get("bash") or plan["base"].get("bash")
    if bash is None:
        raise BuildError("bash is not among the seeds' closure; the synthetic update needs it")
    groups[("updates", "synthetic-update", bash["source"], bash["version"])] = {
        "repo": "updates", "variant": "synthetic-update", "source": bash["source"],
        "source_version": bash["source_version"], "suite": bash["suite"], "binaries": [bash]}
    out = [groups[k] for k in sorted(groups)]
    for g in out:
        g["binaries"].sort(key=lambda b: b["name"])
    return out


def build_rpms(work, jobs, plan, groups):
    """[(repo, rpm path, meta, query)], the spec texts and the build report."""
    debs = os.path.join(work, "debs")
    with Step("analyse") as s, concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        binaries = {(b["name"], b["sha256"]): b for g in groups for b in g["binaries"]}
        done = dict(zip(binaries, pool.map(
            lambda b: deb.cached_analysis(os.path.join(debs, b["deb"]), b["name"], b["sha256"],
                                          os.path.join(work, "debinfo"), CONVERTER), binaries.values())))
        todo = [(g, [done[(b["name"], b["sha256"])] for b in g["binaries"]]) for g in groups]
        s.summary = "%d .debs read" % len(binaries)
    builder = rpms.Builder(work, jobs, plan["unversioned_providers"], CONVERTER)
    with Step("build, pass 1 (every dependency generator on)") as s:
        probed = builder.build_all(todo, [{}] * len(todo))
        decisions, gen_report = rpms.decide_generators([r for r, _, _ in probed])
        s.summary = "%d RPMs from %d specs, %d built now; generators off: %s; single requirements excluded in %d" % (
            sum(len(r) for r, _, _ in probed), len(todo), builder.built, gen_report["disabled_generators"] or "none",
            len(gen_report["excluded"]))
    with Step("build, pass 2 (unsatisfiable generated requirements off)") as s:
        before = builder.built
        final = builder.build_all(todo, decisions)
        s.summary = "%d specs changed, %d RPMs built now" % (
            sum(d != {} for d in decisions), builder.built - before)
    with Step("verify") as s:
        results, problems, specs = [], [], []
        for (g, infos), (built, text, facts) in zip(todo, final):
            specs.append((g["repo"], facts["spec_file"], text, facts))
            for (path, meta, q), info in zip(built, infos):
                problems += rpms.verify(path, meta, info, q)
                results.append((g["repo"], path, meta, q))
        if problems:
            raise BuildError("%d payload differences between RPMs and their .debs:\n  %s"
                             % (len(problems), "\n  ".join(problems[:20])))
        base = {m["name"]: m for r, _, m, _ in results if r == "base"}
        for r, _, m, _ in results:
            b = base.get(m["name"])
            if r == "updates" and b and rpm_evr_compare((m["epoch"], m["version"], m["release"]),
                                                        (b["epoch"], b["version"], b["release"])) <= 0:
                raise BuildError("update %s does not sort newer than base %s in rpm's order"
                                 % (m["rpm_file"], b["rpm_file"]))
        s.summary = "%d RPMs match their data.tar; every update sorts newer than its base" % len(results)
    report = rpms.inventory(results)
    report["generators"] = gen_report
    return results, specs, report, builder.used


def build_scale(work, scale_inputs, with_contents):
    """The scale repository's repodata, cached in work/scale/<key>/."""
    d = os.path.join(work, "scale", digest_of([CONVERTER, scale_inputs, with_contents])[:16])
    report = read_json(os.path.join(d, "report.json"))
    if report is not None:
        return d, report, True
    remove_tree(d)
    stage = d + ".tmp"
    remove_tree(stage)
    report = scale.build(stage, work, with_contents)
    write_json(os.path.join(stage, "report.json"), report)
    os.rename(stage, d)
    return d, report, False


def prune(work, plan, used_rpms, scale_dir):
    """Removes from the work directory what this build did not use: .debs and analyses of
    versions apt no longer offers, RPMs of specs that changed, older plans and scale
    repositories. Returns how many entries went."""
    entries = [e for r in ("base", "updates") for e in plan[r].values()]
    keep = {os.path.join(work, "debs", e["deb"]) for e in entries}
    keep |= {os.path.join(work, "debinfo", e["sha256"][:2], e["sha256"]) for e in entries}
    keep |= {os.path.join(work, "rpms", k) for k in used_rpms}
    keep |= {os.path.join(work, "plans", f) for f in os.listdir(os.path.join(work, "plans"))
             if read_json(os.path.join(work, "plans", f)) == plan}
    if scale_dir:
        keep.add(scale_dir)
        used = read_json(os.path.join(scale_dir, "report.json")).get("contents")
        contents = os.path.join(work, "contents")
        if used is None and os.path.isdir(contents):  # a report from before the list was kept
            used = os.listdir(contents)
        keep |= {os.path.join(contents, f) for f in used or ()}
    gone = 0
    for top, depth in (("debs", 1), ("debinfo", 2), ("rpms", 1), ("plans", 1), ("scale", 1), ("contents", 1)):
        level = [os.path.join(work, top)]
        for _ in range(depth):
            level = [os.path.join(d, f) for d in level if os.path.isdir(d) for f in os.listdir(d)]
        for path in level:
            if path not in keep:
                remove_tree(path)
                gone += 1
    return gone


def publish(out_root, stage, key):
    """Renames the finished stage into gen/KEY and points OUT/current at it atomically. The
    corpus it replaces stays (tests running on it go on); older ones are removed."""
    gen = os.path.join(out_root, "gen", key)
    remove_tree(gen)
    os.rename(stage, gen)
    current = os.path.join(out_root, "current")
    previous = os.path.basename(os.readlink(current)) if os.path.islink(current) else None
    link = os.path.join(out_root, ".current-%d" % os.getpid())
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join("gen", key), link)
    os.replace(link, current)
    for old in os.listdir(os.path.join(out_root, "gen")):
        if old not in (key, previous):
            remove_tree(os.path.join(out_root, "gen", old))
    return current


def main():
    args = parse_args()
    out_root = os.path.abspath(args.out)
    work = os.path.abspath(args.work or os.path.join(out_root, "work"))
    os.makedirs(out_root, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    lock = open(os.path.join(out_root, ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another corpus build holds %s; waiting for it" % lock.name)
        fcntl.flock(lock, fcntl.LOCK_EX)

    with Step("inputs") as s:
        seeds = read_seeds(os.path.join(HERE, "packages.txt"))
        apt_files = apt.debian_packages_files()
        fingerprint = apt.fingerprint(apt_files)
        scale_inputs = None if args.no_scale else scale.inputs()
        spec_texts = {n: open(os.path.join(HERE, "specs", n), encoding="utf-8").read() for n in SPECS}
        key = digest_of([VERSION, CONVERTER, tool_versions(), fingerprint, seeds, scale_inputs, not args.no_contents,
                         spec_texts])[:16]
        s.summary = "%d seeds, apt indexes of %s, key %s" % (len(seeds), ", ".join(sorted(apt_files)), key)
    current = os.path.join(out_root, "current")
    if os.path.islink(current) and os.readlink(current) == os.path.join("gen", key) \
            and os.path.exists(os.path.join(current, ".complete")):
        say("the corpus at %s is up to date: nothing to build" % current)
        print(current)
        return

    with Step("resolve") as s:
        plan, cached = resolve(work, apt_files, fingerprint, seeds)
        s.summary = "%sbase %d packages, updates %d (%s)" % (
            "cached plan: " if cached else "", len(plan["base"]), len(plan["updates"]),
            ", ".join("%s %s" % (n, e["version"]) for n, e in sorted(plan["updates"].items())))
    with Step("download") as s:
        entries = {(e["name"], e["version"]): e for r in ("base", "updates") for e in plan[r].values()}
        fetched = apt.download(list(entries.values()), os.path.join(work, "debs"))
        s.summary = "%d .debs, %d fetched now" % (len(entries), fetched)
    groups = groups_of(plan)
    results, specs, report, used_rpms = build_rpms(work, args.jobs, plan, groups)

    stage = os.path.join(out_root, "gen", ".stage-" + key)
    remove_tree(stage)
    out = os.path.join(stage, "out")
    with Step("repos") as s:
        repos.publish(out, results, args.jobs)
        report["installcheck_testcases"] = repos.installcheck(out, results, args.jobs)
        debs = {(g["variant"], g["repo"], b["name"]): b for g in groups for b in g["binaries"]}
        repos.manifest(out, results, debs)
        repos.specs_tarball(out, specs)
        write_json(os.path.join(out, "build-report.json"), report)
        s.summary = "base %d RPMs, updates %d, %d source RPMs; all %d libsolv installability cases pass" % (
            report["rpms"].get("base", 0), report["rpms"].get("updates", 0), report["sourcerpms"],
            report["installcheck_testcases"])
    scale_dir = None
    if scale_inputs is not None:
        with Step("scale") as s:
            d, scale_report, cached = build_scale(work, scale_inputs, not args.no_contents)
            scale_dir = d
            os.makedirs(os.path.join(out, "scale", "repodata"))
            for f in os.listdir(os.path.join(d, "repodata")):
                link_or_copy(os.path.join(d, "repodata", f), os.path.join(out, "scale", "repodata", f))
            write_json(os.path.join(out, "scale-report.json"), scale_report)
            s.summary = "%s%d packages" % ("cached: " if cached else "", scale_report["packages"])
    for name in SPECS:
        shutil.copyfile(os.path.join(HERE, "specs", name), os.path.join(stage, name))
    shutil.copyfile(os.path.join(HERE, "packages.txt"), os.path.join(stage, "packages.txt"))
    write_json(os.path.join(stage, ".complete"), {"key": key, "builder": VERSION, "converter": CONVERTER,
                                                  "apt": fingerprint})
    make_read_only(stage)
    path = publish(out_root, stage, key)
    with Step("prune the work directory") as s:
        s.summary = "%d entries no longer used removed" % prune(work, plan, used_rpms, scale_dir)
    say("corpus ready at %s" % path)
    print(path)


if __name__ == "__main__":
    try:
        main()
    except BuildError as e:
        say("error: %s" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        say("interrupted; the previous corpus (if any) is untouched")
        sys.exit(130)
