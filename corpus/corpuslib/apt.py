"""What apt knows: its Packages indexes of Debian 12 main amd64 (read with `apt-get
indextargets` and `apt-helper cat-file`, so any compression apt keeps them in works), the
dependency closure of the seed packages in two snapshots, and the .deb downloads.

Snapshots:
  base     the versions in suite `bookworm`;
  updates  the newest version of each package across bookworm, bookworm-security and
           bookworm-updates, kept where it is newer than base (bookworm-updates can carry
           *older* builds than a point release, so "newer than base" is the rule, not
           "present in a newer suite")."""

import os
import re

from .util import BuildError, run, say, sha256_file
from .versions import dpkg_compare, dpkg_satisfies

BASE_SUITE = "bookworm"
NEWER_SUITES = ("bookworm-security", "bookworm-updates")


def parse_deb822(text):
    """Paragraphs of a deb822 document as dicts; continuation lines stay in the value,
    joined with newlines."""
    paragraphs, current, key = [], {}, None
    for line in text.split("\n"):
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, None
        elif line[0] in " \t":
            if key is not None:
                current[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            key = key.strip()
            current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


_RELATION = re.compile(
    r"""^(?P<name>[a-z0-9][a-z0-9+.\-]*)(?::[a-z0-9\-]+)?      # name, :any/:amd64 dropped
        (?:\s*\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<ver>[^\s)]+)\s*\))?
        (?:\s*\[[^\]]*\])?(?:\s*<[^>]*>)*$""", re.X | re.I)


def parse_relations(field):
    """'a (>= 1) | b:any, c' -> [[('a', '>=', '1'), ('b', None, None)], [('c', None, None)]].
    The obsolete `<` and `>` mean `<=` and `>=` in Debian."""
    groups = []
    for clause in " ".join((field or "").split()).split(","):
        if not clause.strip():
            continue
        group = []
        for alternative in clause.split("|"):
            m = _RELATION.match(alternative.strip())
            if not m:
                raise BuildError("cannot read the Debian relation %r" % alternative.strip())
            op = {"<": "<=", ">": ">="}.get(m.group("op"), m.group("op"))
            atom = (m.group("name"), op, m.group("ver"))
            if atom not in group:
                group.append(atom)
        groups.append(group)
    return groups


def source_of(record):
    """(source name, source version) of a Packages or control paragraph: `Source: name
    (version)` names a source version that differs from the binary's (binNMUs)."""
    field = record.get("Source", "").strip()
    if not field:
        return record["Package"], record["Version"]
    m = re.match(r"^(\S+)(?:\s+\((\S+)\))?", field)
    return m.group(1), m.group(2) or record["Version"]


def index_targets():
    """apt's Packages (and Contents) index files: a list of dicts with the fields
    `apt-get indextargets` prints."""
    fields = ("FILENAME", "CODENAME", "COMPONENT", "ARCHITECTURE", "CREATED_BY", "ORIGIN", "BASE_URI")
    out = run(["apt-get", "indextargets", "--format", "\t".join("$(%s)" % f for f in fields)])
    targets = []
    for line in out.splitlines():
        values = line.split("\t")
        if len(values) == len(fields):
            targets.append(dict(zip(fields, values)))
    return targets


def debian_packages_files():
    """suite -> [Packages index files] for Debian's own main amd64 indexes."""
    files = {}
    for t in index_targets():
        if (t["CREATED_BY"] == "Packages" and t["COMPONENT"] == "main" and t["ARCHITECTURE"] == "amd64"
                and t["ORIGIN"] == "Debian" and t["CODENAME"] in (BASE_SUITE,) + NEWER_SUITES
                and os.path.exists(t["FILENAME"])):
            files.setdefault(t["CODENAME"], []).append(t["FILENAME"])
    if BASE_SUITE not in files:
        raise BuildError("apt has no Packages index of Debian %s main amd64\n"
                         "hint: add `deb http://deb.debian.org/debian bookworm main` (and "
                         "bookworm-updates, bookworm-security) to apt's sources and run apt-get update"
                         % BASE_SUITE)
    return files


def fingerprint(files):
    """The identity of the apt indexes the plan is made from: the digest of each file."""
    return {suite: sorted(sha256_file(f) for f in fs) for suite, fs in sorted(files.items())}


def read_index(path):
    return [p for p in parse_deb822(run(["/usr/lib/apt/apt-helper", "cat-file", path])) if "Package" in p]


def newest_by_name(records):
    best = {}
    for r in records:
        cur = best.get(r["Package"])
        if cur is None or dpkg_compare(r["Version"], cur["Version"]) > 0:
            best[r["Package"]] = r
    return best


def snapshots(files):
    """(base, updates): name -> Packages record, per the module docstring's rule; every
    record is tagged with its suite in `_Suite`."""
    per_suite = {}
    for suite, fs in files.items():
        records = []
        for f in fs:
            for r in read_index(f):
                r["_Suite"] = suite
                records.append(r)
        per_suite[suite] = newest_by_name(records)
        say("apt index %-18s %6d packages" % (suite, len(per_suite[suite])))
    base = per_suite[BASE_SUITE]
    updates = dict(base)
    for suite in NEWER_SUITES:
        for name, r in per_suite.get(suite, {}).items():
            if name not in updates or dpkg_compare(r["Version"], updates[name]["Version"]) > 0:
                updates[name] = r
    return base, updates


def providers(index):
    """virtual name -> [(package, provided version or None)]"""
    out = {}
    for name, r in index.items():
        for group in parse_relations(r.get("Provides")):
            for pname, op, ver in group:
                out.setdefault(pname, []).append((name, ver if op == "=" else None))
    return out


def closure(index, seeds):
    """Depends + Pre-Depends closure of `seeds` (not Recommends). Of `a | b` every
    alternative that exists is taken, and a virtual package brings all of its providers
    whose version fits: the corpus then holds the choices a resolver has to make."""
    virtual = providers(index)
    chosen, todo, problems = set(), list(seeds), []
    while todo:
        name = todo.pop()
        if name in chosen:
            continue
        record = index.get(name)
        if record is None:
            problems.append("%s is not in the index" % name)
            continue
        chosen.add(name)
        for field in ("Pre-Depends", "Depends"):
            for group in parse_relations(record.get(field)):
                targets = []
                for dep, op, ver in group:
                    real = index.get(dep)
                    if real is not None:
                        if op is None or dpkg_satisfies(real["Version"], op, ver):
                            targets.append(dep)
                        continue
                    targets += [p for p, pver in virtual.get(dep, ())
                                if op is None or (pver is not None and dpkg_satisfies(pver, op, ver))]
                if not targets:
                    problems.append("%s: nothing satisfies %s %s" % (name, field, group))
                todo += [t for t in targets if t not in chosen]
    if problems:
        raise BuildError("the seed packages' dependency closure is incomplete:\n  "
                         + "\n  ".join(problems))
    return chosen


def unversioned_providers(records):
    """name -> sorted packages that Provide it without a version (see spec.conflict())."""
    out = {}
    for r in records:
        for group in parse_relations(r.get("Provides")):
            for pname, op, _ in group:
                if op is None and pname != r["Package"]:
                    out.setdefault(pname, set()).add(r["Package"])
    return {k: sorted(v) for k, v in out.items()}


def check_with_madison(entries):
    """Cross-checks each chosen (name, version, suite) with `apt-cache madison`: the plan
    must name exactly what apt would download."""
    names = sorted({e["name"] for e in entries})
    listed = {}
    for i in range(0, len(names), 150):
        for line in run(["apt-cache", "madison"] + names[i:i + 150]).splitlines():
            cols = [c.strip() for c in line.split("|")]
            if len(cols) >= 3:
                listed.setdefault(cols[0], []).append((cols[1], cols[2]))
    for e in entries:
        if not any(v == e["version"] and (" %s/main" % e["suite"]) in where
                   for v, where in listed.get(e["name"], ())):
            raise BuildError("apt-cache madison does not list %s %s in %s; the apt indexes "
                             "changed while building? Run the builder again" % (e["name"], e["version"], e["suite"]))


def deb_file_name(entry):
    """apt-get download's file name for an entry (':' of an epoch escaped as %3a)."""
    return "%s_%s_%s.deb" % (entry["name"], entry["version"].replace(":", "%3a"), entry["arch"])


def download(entries, debs_dir):
    """Every entry's .deb in `debs_dir`, SHA256 checked against the index. Already present
    and correct files are not fetched again."""
    os.makedirs(debs_dir, exist_ok=True)
    missing = [e for e in entries
               if not (os.path.exists(os.path.join(debs_dir, deb_file_name(e)))
                       and sha256_file(os.path.join(debs_dir, deb_file_name(e))) == e["sha256"])]
    for i in range(0, len(missing), 60):
        chunk = missing[i:i + 60]
        say("download: %d-%d of %d .debs with apt-get download" % (i + 1, i + len(chunk), len(missing)))
        # apt drops to the _apt user for downloads, who may not write here; the files are
        # checked against the index's SHA256 below instead.
        run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download"]
            + ["%s=%s" % (e["name"], e["version"]) for e in chunk], cwd=debs_dir)
    for e in entries:
        path = os.path.join(debs_dir, deb_file_name(e))
        if not os.path.exists(path):
            raise BuildError("apt-get download %s=%s did not produce %s" % (e["name"], e["version"], path))
        if sha256_file(path) != e["sha256"]:
            raise BuildError("%s does not have the SHA256 apt's index gives (%s)" % (path, e["sha256"]))
    return len(missing)
