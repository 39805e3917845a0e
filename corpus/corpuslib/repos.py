"""The two yum repositories (`base`, `updates`) from the built RPMs: createrepo_c with gzip
metadata and a fixed revision and timestamps (the same RPMs give the same repodata), the
check that every package is installable (one libsolv testcase each), the manifest that the
tests read their expectations from, and the tarball of the generated specs."""

import concurrent.futures
import io
import lzma
import os
import tarfile
import tempfile

from .spec import payload_compressor
from .util import BuildError, link_or_copy, run, sha256_file, write_atomic, write_json

REPOS = ("base", "updates")


def publish(out, results, jobs):
    """results: [(repo, rpm path, meta, query)]. Writes out/repos/<repo>/{Packages,repodata}."""
    revision = max(meta["sde"] for _, _, meta, _ in results)
    for repo in REPOS:
        pkgdir = os.path.join(out, "repos", repo, "Packages")
        os.makedirs(pkgdir)
        mine = [(path, meta) for r, path, meta, _ in results if r == repo]
        for path, meta in mine:
            link_or_copy(path, os.path.join(pkgdir, meta["rpm_file"]))
        run(["createrepo_c", "--quiet", "--checksum", "sha256", "--general-compress-type", "gz",
             "--no-database", "--revision", str(revision), "--set-timestamp-to-revision",
             "--workers", str(jobs), os.path.join(out, "repos", repo)])


def installcheck(out, results, jobs):
    """Every base package installs from base alone, every package from base+updates, as
    libsolv with rpm semantics solves it. Returns the number of testcases."""
    with tempfile.TemporaryDirectory(prefix="corpus-solv-") as tmp:
        for repo in REPOS:
            run(["repo2solv", "-o", os.path.join(tmp, repo + ".solv"), os.path.join(out, "repos", repo)])
        cases = []
        for repo, _, meta, _ in results:
            evr = ("%d:" % meta["epoch"] if meta["epoch"] else "") + "%s-%s" % (meta["version"], meta["release"])
            pkg = "%s-%s.%s@%s" % (meta["name"], evr, meta["arch"], repo)
            cases += [(("base",), pkg)] if repo == "base" else []
            cases.append((REPOS, pkg))

        def solve(case):
            repos, pkg = case
            fd, path = tempfile.mkstemp(dir=tmp, suffix=".t")
            with os.fdopen(fd, "w") as f:
                f.writelines("repo %s 99 solv %s.solv\n" % (r, r) for r in repos)
                # Debian's libsolv defaults to Debian semantics; this selects rpm's.
                f.write("system x86_64 rpm\njob install pkg %s\n" % pkg)
            text = run(["testsolv", path], check=False, with_stderr=True)
            # testsolv exits 0 on an unsolvable job: its answer is in the text.
            bad = "problem" in text.lower() or "unknown" in text.lower() or "installed packages:" not in text
            return "%s from %s:\n%s" % (pkg, "+".join(repos), text[-1500:]) if bad else None

        with concurrent.futures.ThreadPoolExecutor(jobs * 2) as pool:
            failures = [f for f in pool.map(solve, cases) if f]
    if failures:
        raise BuildError("%d of %d packages are not installable from the corpus:\n%s"
                         % (len(failures), len(cases), "\n".join(failures[:5])))
    return len(cases)


def manifest(out, results, debs):
    """out/manifest.json: one entry per RPM (the fields corpus/README.md lists)."""
    entries = []
    for repo, path, meta, q in sorted(results, key=lambda r: (r[0], r[2]["rpm_file"])):
        deb = debs[(meta["variant"], repo, meta["name"])]
        rpm = os.path.join(out, "repos", repo, "Packages", meta["rpm_file"])
        entries.append({
            "repo": repo, "rpm": "repos/%s/Packages/%s" % (repo, meta["rpm_file"]),
            "name": meta["name"], "epoch": meta["epoch"], "version": meta["version"],
            "release": meta["release"], "arch": meta["arch"], "debian_version": meta["debian_version"],
            "variant": meta["variant"], "debian_suite": deb["suite"], "deb": deb["deb"],
            "deb_sha256": deb["sha256"], "debian_source": meta["source"],
            "debian_source_version": meta["source_version"], "sourcerpm": meta["sourcerpm"],
            "spec": "specs/%s/%s" % (repo, meta["spec_file"]),
            "payload": payload_compressor(meta["source"]), "rpm_sha256": sha256_file(rpm),
            "rpm_bytes": os.path.getsize(rpm)})
    write_json(os.path.join(out, "manifest.json"), entries)
    return entries


def specs_tarball(out, specs):
    """out/specs.tar.xz: specs/<repo>/<file> for each (repo, file, text), reproducibly."""
    buf = io.BytesIO()
    mtime = max(s["sde"] for _, _, _, s in specs)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for repo, name, text, _ in sorted(specs, key=lambda s: (s[0], s[1])):
            data = text.encode("utf-8", "surrogateescape")
            ti = tarfile.TarInfo("specs/%s/%s" % (repo, name))
            ti.size, ti.mtime, ti.mode, ti.uname, ti.gname = len(data), mtime, 0o644, "root", "root"
            tf.addfile(ti, io.BytesIO(data))
    write_atomic(os.path.join(out, "specs.tar.xz"), lzma.compress(buf.getvalue(), preset=9))
