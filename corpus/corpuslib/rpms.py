"""Building the RPMs: rpmbuild per spec (cached by the spec's digest, so a spec that did
not change is never built again), the two passes that decide which automatic
requirements to switch off, the check of every payload against its data.tar, and the
inventory of RPM features the corpus exercises (build-report.json)."""

import concurrent.futures
import os
import re
import stat
import threading
import time

from .spec import make_spec
from .util import BuildError, read_json, remove_tree, run, say, sha256_bytes, write_json

RPMFILE_CONFIG, RPMFILE_NOREPLACE = 1 << 0, 1 << 4

# One `rpm -qp` answers everything the builder asks of a built package.
QUERY = ("H\t%{NAME}\t%{PAYLOADCOMPRESSOR}\t%{PAYLOADFLAGS}\t%|PREIN?{1}:{0}|\t%|POSTIN?{1}:{0}|\t"
         "%|TRANSFILETRIGGERSCRIPTS?{1}:{0}|\n"
         "[F\t%{FILENAMES}\t%{FILEMODES}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}\t%{FILELINKTOS}\t"
         "%{FILEDIGESTS}\t%{FILEFLAGS}\t%{FILECAPS}\t%{FILENLINKS}\n]"
         "[R\t%{REQUIRENAME}\t%{REQUIREFLAGS:deptype}\n][P\t%{PROVIDENAME}\t%{PROVIDEVERSION}\n]"
         "[W\t%{RECOMMENDNAME}\n][S\t%{SUGGESTNAME}\n][C\t%{CONFLICTNAME}\n]")


def query(rpm_path):
    q = {"files": [], "requires": [], "provides": [], "recommends": [], "suggests": [], "conflicts": []}
    for line in run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", QUERY, rpm_path]).split("\n"):
        f = line.split("\t")
        kind = {"F": "files", "R": "requires", "P": "provides", "W": "recommends", "S": "suggests",
                "C": "conflicts"}.get(f[0])
        if f[0] == "H":
            q.update(name=f[1], payload="%s(%s)" % (f[2], f[3]), pre=f[4] == "1", post=f[5] == "1",
                     filetrigger=f[6] == "1")
        elif kind == "files":
            q["files"].append({"path": f[1], "mode": int(f[2]), "user": f[3], "group": f[4], "target": f[5],
                               "digest": f[6], "flags": int(f[7]), "caps": f[8], "nlink": int(f[9])})
        elif kind:
            q[kind].append(f[1:])
    return q


class Builder:
    """Builds groups into work/rpms/<spec digest>/, each directory complete or absent."""

    def __init__(self, work, jobs, unversioned, version):
        self.rpms = os.path.join(work, "rpms")
        self.home = os.path.join(work, "rpm-home")
        self.jobs, self.unversioned, self.version = jobs, unversioned, version
        self.built = 0
        self._lock = threading.Lock()
        self._seen, self._total = 0, 0
        self.used = set()  # the rpms/ directories this run used (the rest is pruned)
        os.makedirs(self.home, exist_ok=True)
        # The user's ~/.rpmmacros must not leak into the corpus.
        with open(os.path.join(self.home, ".rpmmacros"), "w") as f:
            f.write("")

    def build(self, group, infos, decision):
        """The RPMs of one group: [(path, meta, query)], built unless cached."""
        text, metas, spec_facts = make_spec(group, infos, decision, self.unversioned, self.version)
        key = sha256_bytes(text.encode("utf-8", "surrogateescape"))
        d = os.path.join(self.rpms, key)
        with self._lock:
            self.used.add(key)
        done = read_json(os.path.join(d, "done.json"))
        if done is None:
            t0 = time.monotonic()
            self._rpmbuild(text, metas, spec_facts, infos, d)
            done = {"queries": {m["rpm_file"]: query(os.path.join(d, m["rpm_file"])) for m in metas}}
            write_json(os.path.join(d, "done.json"), done)
            with self._lock:
                self.built += len(metas)
                self._seen += 1
                say("  rpmbuild %s: %d RPM%s in %.1f s (%d/%d specs)" % (
                    spec_facts["spec_file"], len(metas), "s"[:len(metas) > 1], time.monotonic() - t0,
                    self._seen, self._total))
        else:
            with self._lock:
                self._seen += 1
        for m in metas:
            m["spec_file"] = spec_facts["spec_file"]
        return [(os.path.join(d, m["rpm_file"]), m, done["queries"][m["rpm_file"]]) for m in metas], text, spec_facts

    def _rpmbuild(self, text, metas, spec_facts, infos, d):
        remove_tree(d)
        top = d + ".build"
        remove_tree(top)
        os.makedirs(os.path.join(top, "tmp"))
        spec_path = os.path.join(top, "corpus.spec")
        with open(spec_path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        env = dict(os.environ, HOME=self.home, SOURCE_DATE_EPOCH=str(spec_facts["sde"]), LC_ALL="C.UTF-8", TZ="UTC")
        argv = ["rpmbuild", "-bb", "--quiet", "--define", "_topdir " + top, "--define", "_tmppath " + top + "/tmp"]
        for k, info in enumerate(infos):
            argv += ["--define", "corpus_data_tar_%d %s" % (k, info["data_tar"])]
        res_dir = os.path.join(top, "RPMS")
        try:
            run(argv + [spec_path], env=env)
        except BuildError as e:
            raise BuildError("rpmbuild of %s failed (spec kept at %s): %s" % (spec_facts["spec_file"], spec_path, e)) from None
        got = sorted(os.listdir(res_dir))
        want = sorted(m["rpm_file"] for m in metas)
        if got != want:
            raise BuildError("rpmbuild of %s made %s, expected %s" % (spec_facts["spec_file"], got, want))
        for m in metas:
            os.utime(os.path.join(res_dir, m["rpm_file"]), (spec_facts["sde"], spec_facts["sde"]))
        # The RPMs appear under their final directory only once all of them are there.
        os.rename(res_dir, d)
        remove_tree(top)

    def build_all(self, jobs_list, decisions):
        """build() for every (group, infos), in parallel; decisions[i] for jobs_list[i]."""
        self._seen, self._total = 0, len(jobs_list)
        with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
            futures = [pool.submit(self.build, g, infos, dec) for (g, infos), dec in zip(jobs_list, decisions)]
            return [f.result() for f in futures]


def generator_class(req):
    if req == "perl" or req.startswith("perl("):
        return "perl"
    if req.startswith("python(") or re.match(r"^python\d", req):
        return "python"
    if req.startswith("pkgconfig("):
        return "pkgconfig"
    if req.startswith("ocaml("):
        return "ocaml"
    return None


def decide_generators(probed):
    """probed: per group, [(path, meta, query)] from the pass with every generator on.
    Returns (per-group decision, report). A class of generated requirements (perl, ...)
    with any unsatisfiable member is switched off in every spec that has requirements of
    that class; any other unsatisfiable requirement is excluded in its own spec only."""
    provided = {"/etc/passwd", "/etc/group"}
    for results in probed:
        for _, _, q in results:
            provided.update(p[0] for p in q["provides"])
            provided.update(f["path"] for f in q["files"])

    def satisfied(req):
        if req.startswith(("rpmlib(", "config(")):
            return True
        if req.startswith("("):  # rich: some operand is there
            return any(n in provided for n in re.findall(r"[\s(]([^\s()]+)", req) if n not in ("or", "and", "with", "without", "if", "else", "unless"))
        return req in provided

    unsat = {}
    for results in probed:
        for _, meta, q in results:
            bad = sorted({r[0] for r in q["requires"] if not satisfied(r[0])})
            if bad:
                unsat[(meta["variant"], meta["name"], meta["version"], meta["release"])] = bad
    disabled = sorted({generator_class(r) for bad in unsat.values() for r in bad} - {None})
    decisions, excluded = [], {}
    for results in probed:
        dis, exc = set(), set()
        for _, meta, q in results:
            dis.update({generator_class(r[0]) for r in q["requires"]} & set(disabled))
            mine = [r for r in unsat.get((meta["variant"], meta["name"], meta["version"], meta["release"]), ())
                    if generator_class(r) is None]
            if mine:
                exc.update(mine)
                excluded["%s-%s-%s" % (meta["name"], meta["version"], meta["release"])] = mine
        decisions.append({k: sorted(v) for k, v in (("disable", dis), ("exclude", exc)) if v})
    report = {"disabled_generators": disabled, "excluded": excluded,
              "unsatisfied_before": {"%s-%s-%s" % k[1:]: v for k, v in sorted(unsat.items())}}
    return decisions, report


def verify(rpm_path, meta, info, q):
    """Differences between a built RPM and its data.tar (plus the added paths): the same
    paths, types, modes, owners, link targets, sha256 digests, config and caps flags."""
    want = {e["path"]: e for e in info["entries"]}
    want.update({e["path"]: e for e in meta["extra_paths"]})
    got = {f["path"]: f for f in q["files"]}
    problems = []
    if set(got) != set(want):
        problems.append("file set differs: only in the RPM %s, only in the deb %s"
                        % (sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5]))
    conffiles = set(meta["conffiles"])
    for path in sorted(set(got) & set(want)):
        g, w = got[path], want[path]
        mode = g["mode"]
        kind_ok = {"dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}.get(w["type"], stat.S_ISREG)(mode)
        if not kind_ok:
            problems.append("%s: not a %s" % (path, w["type"]))
        if w["type"] == "symlink" and g["target"] != w["target"]:
            problems.append("%s: links to %s, not %s" % (path, g["target"], w["target"]))
        if "sha256" in w and g["digest"] != w["sha256"]:
            problems.append("%s: content digest differs" % path)
        if w["type"] != "symlink" and stat.S_IMODE(mode) != w["mode"]:
            problems.append("%s: mode %o, not %o" % (path, stat.S_IMODE(mode), w["mode"]))
        if (g["user"], g["group"]) != (w["user"], w["group"]):
            problems.append("%s: owner %s:%s, not %s:%s" % (path, g["user"], g["group"], w["user"], w["group"]))
        if (path in conffiles or w.get("config")) and not (g["flags"] & RPMFILE_CONFIG and g["flags"] & RPMFILE_NOREPLACE):
            problems.append("%s: not %%config(noreplace)" % path)
        if path in meta["caps"] and g["caps"] != meta["caps"][path]:
            problems.append("%s: caps %r, not %r" % (path, g["caps"], meta["caps"][path]))
    return ["%s: %s" % (os.path.basename(rpm_path), p) for p in problems]


def inventory(results):
    """build-report.json's count of the RPM features in the corpus."""
    s = {"rpms": {}, "payload_compressors": {}, "setuid_files": [], "setgid_files": [], "file_caps": [],
         "config_noreplace_files": 0, "hardlinked_files": 0, "rich_requires": 0, "pre_requires": 0,
         "soname_requires": 0, "file_path_requires": 0, "recommends": 0, "suggests": 0, "conflicts": 0,
         "pre_scriptlets": [], "post_scriptlets": [], "transfiletriggers": [], "sourcerpms": 0}
    sources = set()
    for repo, _, meta, q in results:
        name = q["name"]
        s["rpms"][repo] = s["rpms"].get(repo, 0) + 1
        s["payload_compressors"][q["payload"]] = s["payload_compressors"].get(q["payload"], 0) + 1
        sources.add(meta["sourcerpm"])
        for flag, key in (("pre", "pre_scriptlets"), ("post", "post_scriptlets"), ("filetrigger", "transfiletriggers")):
            if q[flag]:
                s[key].append("%s:%s" % (repo, name))
        for f in q["files"]:
            if stat.S_ISREG(f["mode"]):
                for bit, key in ((stat.S_ISUID, "setuid_files"), (stat.S_ISGID, "setgid_files")):
                    if f["mode"] & bit:
                        s[key].append("%s:%s" % (name, f["path"]))
                s["hardlinked_files"] += f["nlink"] > 1
            if f["caps"] and f["caps"] != "(none)":
                s["file_caps"].append("%s:%s=%s" % (name, f["path"], f["caps"]))
            s["config_noreplace_files"] += bool(f["flags"] & RPMFILE_CONFIG and f["flags"] & RPMFILE_NOREPLACE)
        for req, deptype in q["requires"]:
            s["rich_requires"] += req.startswith("(")
            s["pre_requires"] += "pre" in deptype
            s["soname_requires"] += ".so" in req and req.endswith("(64bit)")
            s["file_path_requires"] += req.startswith("/")
        for key in ("recommends", "suggests", "conflicts"):
            s[key] += len(q[key])
    s["sourcerpms"] = len(sources)
    for key in ("setuid_files", "setgid_files", "file_caps", "pre_scriptlets", "post_scriptlets", "transfiletriggers"):
        s[key] = sorted(set(s[key]))
    return s
