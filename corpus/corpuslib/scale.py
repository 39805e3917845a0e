"""The metadata-only `scale` repository: every record of apt's bookworm main amd64 Packages
index (~63,000) as RPM metadata, with the converter's name, EVR and dependency rules, for
the solver benchmark. There are no RPM files; `primary.xml` and `other.xml` are zstd
compressed (the real repositories' gzip, this one's zstd: a consumer sees both).

File lists: primary.xml carries createrepo's subset (paths under /etc/ and those holding
`bin/`), read from Debian's Contents indexes. apt keeps no Contents index unless apt-file is
set up, so they are downloaded from the mirror apt uses and checked against the SHA256 the
(apt-verified) InRelease file lists. filelists.xml is not published."""

import email.utils
import gzip
import os
from xml.sax.saxutils import escape

from .apt import BASE_SUITE, index_targets, read_index, source_of, parse_relations, unversioned_providers
from .spec import ARCH, BUILDHOST, conflict, dep_group, description
from .util import BuildError, remove_tree, run, say, sha256_file, write_atomic
from .versions import relation_evr, rpm_evr

CONTENTS = ("main/Contents-amd64.gz", "main/Contents-all.gz")
FLAGS = {"<<": "LT", "<=": "LE", "=": "EQ", ">=": "GE", ">>": "GT"}


def _text(s):
    return escape("".join(c for c in s if c in "\t\n\r" or ord(c) >= 0x20))


def _attr(s):
    return _text(s).replace('"', "&quot;")


def base_index():
    """(Packages file, InRelease file, mirror's dists/bookworm/ URL) of bookworm main amd64."""
    for t in index_targets():
        if (t["CREATED_BY"], t["CODENAME"], t["COMPONENT"], t["ARCHITECTURE"], t["ORIGIN"]) == \
                ("Packages", BASE_SUITE, "main", "amd64", "Debian"):
            release = t["FILENAME"].split("_dists_%s_" % BASE_SUITE)[0] + "_dists_%s_InRelease" % BASE_SUITE
            if not os.path.exists(release):
                raise BuildError("apt's %s index has no InRelease file beside it (%s)" % (BASE_SUITE, release))
            return t["FILENAME"], release, t["BASE_URI"]
    raise BuildError("apt has no Packages index of Debian %s main amd64" % BASE_SUITE)


def release_facts(inrelease):
    """(Date as Unix time, {path: sha256}) from an InRelease file."""
    date, sums, in_sha256 = None, {}, False
    with open(inrelease, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("Date:"):
                date = int(email.utils.parsedate_to_datetime(line[5:].strip()).timestamp())
            elif line.startswith("SHA256:"):
                in_sha256 = True
            elif in_sha256 and line.startswith(" "):
                digest, _, path = line.split()
                sums[path] = digest
            else:
                in_sha256 = False
    return date, sums


def fetch_contents(base_uri, sums, cache):
    """The Contents indexes, downloaded once into `cache` (named by their SHA256)."""
    paths = []
    for name in CONTENTS:
        if name not in sums:
            raise BuildError("the %s InRelease lists no %s" % (BASE_SUITE, name))
        dest = os.path.join(cache, sums[name] + ".gz")
        if not (os.path.exists(dest) and sha256_file(dest) == sums[name]):
            os.makedirs(cache, exist_ok=True)
            say("scale: downloading %s%s" % (base_uri, name))
            run(["/usr/lib/apt/apt-helper", "download-file", base_uri + name, dest + ".part", "SHA256:" + sums[name]])
            os.replace(dest + ".part", dest)
        paths.append(dest)
    return paths


def primary_paths(contents, names):
    """package -> [paths createrepo would list in primary.xml], and the number of paths read."""
    out, total = {}, 0
    for path in contents:
        with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                file_path, _, owners = line.rstrip("\n").rpartition(" ")
                file_path = "/" + file_path.rstrip()
                total += 1
                if not (file_path.startswith("/etc/") or "bin/" in file_path or file_path == "/usr/lib/sendmail"):
                    continue
                for owner in owners.split(","):
                    pkg = owner.rsplit("/", 1)[-1]
                    if pkg in names:
                        out.setdefault(pkg, []).append(file_path)
    return out, total


def _entry(name, op=None, ver=None, pre=False, rich=None):
    tail = ' pre="1"/>' if pre else "/>"
    if rich is not None:
        return '<rpm:entry name="%s"%s' % (_attr(rich), tail)
    if op is None:
        return '<rpm:entry name="%s"%s' % (_attr(name), tail)
    e, v, r = relation_evr(op, ver)
    rel = ' rel="%s"' % _attr(r) if r is not None else ""
    return '<rpm:entry name="%s" flags="%s" epoch="%d" ver="%s"%s%s' % (_attr(name), FLAGS[op], e or 0, _attr(v), rel, tail)


def _group_entry(group, pre=False):
    if len(group) == 1:
        return _entry(*group[0], pre=pre)
    return _entry(None, pre=pre, rich=dep_group(group))


def _block(tag, entries):
    return "    <rpm:%s>\n%s    </rpm:%s>\n" % (tag, "".join("      %s\n" % e for e in entries), tag) if entries else ""


def package_xml(r, stamp, files, unversioned):
    """(primary <package>, other <package>) of one Packages record."""
    name = r["Package"]
    arch = ARCH.get(r["Architecture"], r["Architecture"])
    e, v, rel = rpm_evr(r["Version"])
    version = '<version epoch="%d" ver="%s" rel="%s"/>' % (e or 0, _attr(v), _attr(rel))
    summary, body = description(r, name)
    src, srcver = source_of(r)
    _, sv, sr = rpm_evr(srcver)
    size = int(r.get("Installed-Size", "0") or 0) * 1024
    provides = ['<rpm:entry name="%s" flags="EQ" epoch="%d" ver="%s" rel="%s"/>' % (_attr(n), e or 0, _attr(v), _attr(rel))
                for n in ([name, name + "(x86-64)"] if arch == "x86_64" else [name])]
    own = {name}
    for group in parse_relations(r.get("Provides")):
        for pname, op, pver in group:
            own.add(pname)
            if pname != name:
                provides.append(_entry(pname, op if op == "=" else None, pver))
    requires = [_group_entry(g, pre=True) for g in parse_relations(r.get("Pre-Depends"))]
    requires += [_group_entry(g) for g in parse_relations(r.get("Depends"))]
    conflicts = []
    for field in ("Conflicts", "Breaks"):
        for group in parse_relations(r.get(field)):
            for cname, op, cver in group:
                if cname in own:
                    continue
                c = conflict(name, cname, op, cver, unversioned)
                x = _entry(None, rich=c) if c.startswith("(") else _entry(cname, op, cver)
                if x not in conflicts:
                    conflicts.append(x)
    weak = "".join(_block(tag, [_group_entry(g) for g in parse_relations(r.get(field))])
                   for field, tag in (("Recommends", "recommends"), ("Suggests", "suggests"), ("Enhances", "enhances")))
    primary = "".join([
        '<package type="rpm">\n  <name>%s</name>\n  <arch>%s</arch>\n  %s\n' % (_text(name), arch, version),
        '  <checksum type="sha256" pkgid="YES">%s</checksum>\n' % r["SHA256"],
        "  <summary>%s</summary>\n  <description>%s</description>\n" % (_text(summary), _text(body)),
        "  <packager>%s</packager>\n  <url>%s</url>\n" % (_text(r.get("Maintainer", "")), _text(r.get("Homepage", ""))),
        '  <time file="%d" build="%d"/>\n' % (stamp, stamp),
        '  <size package="%d" installed="%d" archive="%d"/>\n' % (int(r.get("Size", "0") or 0), size, size),
        '  <location href="Packages/%s"/>\n  <format>\n' % _attr("%s-%s-%s.%s.rpm" % (name, v, rel, arch)),
        "    <rpm:license>see /usr/share/doc/%s/copyright</rpm:license>\n" % _text(name),
        "    <rpm:vendor>Debian</rpm:vendor>\n    <rpm:group>%s</rpm:group>\n" % _text(r.get("Section", "")),
        "    <rpm:buildhost>%s</rpm:buildhost>\n" % BUILDHOST,
        "    <rpm:sourcerpm>%s</rpm:sourcerpm>\n" % _text("%s-%s-%s.src.rpm" % (src, sv, sr)),
        '    <rpm:header-range start="0" end="0"/>\n',
        _block("provides", provides), _block("requires", requires), _block("conflicts", conflicts), weak,
        "".join("    <file>%s</file>\n" % _text(p) for p in files),
        "  </format>\n</package>\n"])
    other = '<package pkgid="%s" name="%s" arch="%s">\n  %s\n</package>\n' % (r["SHA256"], _attr(name), arch, version)
    return primary, other


def build(out_dir, work, with_contents):
    """Writes out_dir/repodata. Returns a report (counts, sizes)."""
    packages_file, inrelease, base_uri = base_index()
    stamp, sums = release_facts(inrelease)
    records = read_index(packages_file)
    say("scale: %d package records of %s main amd64" % (len(records), BASE_SUITE))
    files, npaths, contents = {}, 0, []
    if with_contents:
        contents = fetch_contents(base_uri, sums, os.path.join(work, "contents"))
        files, npaths = primary_paths(contents, {r["Package"] for r in records})
        say("scale: %d paths in the Contents indexes, createrepo's primary subset for %d packages"
            % (npaths, len(files)))
    unversioned = unversioned_providers(records)
    tmp = os.path.join(work, "scale-tmp")
    remove_tree(tmp)
    os.makedirs(tmp)
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    xml = {"primary": os.path.join(tmp, "primary.xml"), "other": os.path.join(tmp, "other.xml")}
    with open(xml["primary"], "w", encoding="utf-8", errors="surrogateescape") as p, \
            open(xml["other"], "w", encoding="utf-8", errors="surrogateescape") as o:
        p.write(head + '<metadata xmlns="http://linux.duke.edu/metadata/common" '
                'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">\n' % len(records))
        o.write(head + '<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="%d">\n' % len(records))
        for r in records:
            prim, oth = package_xml(r, stamp, files.get(r["Package"], ()), unversioned)
            p.write(prim)
            o.write(oth)
        p.write("</metadata>\n")
        o.write("</otherdata>\n")
    repodata = os.path.join(out_dir, "repodata")
    os.makedirs(repodata)
    report = {"packages": len(records), "paths_from_contents": npaths, "files": {},
              "contents": [os.path.basename(c) for c in contents]}
    data = []
    for kind in ("primary", "other"):
        # No --long and a fixed thread count: reproducible output any zstd decoder reads.
        run(["zstd", "-q", "-f", "-19", "-T2", xml[kind], "-o", xml[kind] + ".zst"])
        zsum = sha256_file(xml[kind] + ".zst")
        final = os.path.join(repodata, "%s-%s.xml.zst" % (zsum, kind))
        os.replace(xml[kind] + ".zst", final)
        os.utime(final, (stamp, stamp))
        data.append((kind, zsum, sha256_file(xml[kind]), os.path.getsize(final), os.path.getsize(xml[kind]), final))
        report["files"][kind] = {"compressed_bytes": os.path.getsize(final), "open_bytes": os.path.getsize(xml[kind])}
        say("scale: %s.xml %.1f MB, %.1f MB zstd" % (kind, os.path.getsize(xml[kind]) / 1e6, os.path.getsize(final) / 1e6))
    # libsolv must read what the benchmark compares against.
    with open(xml["primary"], "rb") as f:
        run(["rpmmd2solv"], stdin=f.read(), binary=True)
    repomd = ['<?xml version="1.0" encoding="UTF-8"?>',
              '<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">',
              "  <revision>%d</revision>" % stamp]
    for kind, zsum, osum, size, osize, final in data:
        repomd += ['  <data type="%s">' % kind, '    <checksum type="sha256">%s</checksum>' % zsum,
                   '    <open-checksum type="sha256">%s</open-checksum>' % osum,
                   '    <location href="repodata/%s"/>' % os.path.basename(final),
                   "    <timestamp>%d</timestamp>" % stamp, "    <size>%d</size>" % size,
                   "    <open-size>%d</open-size>" % osize, "  </data>"]
    write_atomic(os.path.join(repodata, "repomd.xml"), "\n".join(repomd + ["</repomd>"]) + "\n")
    os.utime(os.path.join(repodata, "repomd.xml"), (stamp, stamp))
    remove_tree(tmp)
    return report


def inputs():
    """What the scale repository is made from, for the cache key: the Packages index and
    the InRelease (which names the Contents indexes by digest)."""
    packages_file, inrelease, _ = base_index()
    return {"packages": sha256_file(packages_file), "inrelease": sha256_file(inrelease)}

