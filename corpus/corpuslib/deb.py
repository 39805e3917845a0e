"""Reading a .deb: its control paragraph, conffiles, and the data.tar as a list of entries
(path, type, mode, owner, link target, size and sha256 of each regular file). The entries
become the RPM's %files and are what each built RPM is verified against. The data.tar
member is kept on disk as it is (rpmbuild's %install unpacks it verbatim)."""

import bz2
import email.utils
import gzip
import hashlib
import io
import lzma
import os
import posixpath
import re
import tarfile

from .apt import parse_deb822
from .util import BuildError, read_json, run, write_atomic, write_json

# Debian 12.0's release day: SOURCE_DATE_EPOCH of a package with neither a changelog date
# nor a dated file.
FALLBACK_EPOCH = 1686355200


def ar_members(path):
    """name -> bytes of every member of an ar archive (a .deb is one)."""
    out = {}
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise BuildError("%s is not a .deb (no ar header)" % path)
        while True:
            header = f.read(60)
            if len(header) < 60:
                return out
            name = header[:16].decode("ascii").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            out[name] = f.read(size)
            f.read(size % 2)  # members are 2-byte aligned


def decompress(name, data):
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".zst"):
        return run(["zstd", "-dcq"], stdin=data, binary=True)
    return data


def _clean(member_name):
    """'./usr/bin/' -> '/usr/bin'; './' -> '/'."""
    return posixpath.normpath("/" + member_name.lstrip("/"))


def changelog_date(gz_bytes):
    """The date of the newest entry of a changelog.Debian.gz (its first trailer line)."""
    try:
        text = gzip.decompress(gz_bytes).decode("utf-8", "replace")
    except (OSError, EOFError):
        return None
    for line in text.split("\n"):
        if line.startswith(" -- "):
            m = re.search(r">\s+(.+)$", line)
            try:
                return int(email.utils.parsedate_to_datetime(m.group(1).strip()).timestamp()) if m else None
            except (TypeError, ValueError):
                return None
    return None


def dep5_license(text):
    """The License of the `Files: *` paragraph of a machine-readable copyright file (else
    of its first Files paragraph), or None for a free-form file."""
    if not text.lstrip().lower().startswith("format:"):
        return None
    first = None
    for para in parse_deb822(text):
        lic = para.get("License", "").split("\n")[0].strip()
        if "Files" in para and lic:
            if para["Files"].split() == ["*"]:
                return " ".join(lic.split())[:200]
            first = first or " ".join(lic.split())[:200]
    return first


def analyse(deb_path, name):
    """The facts the converter needs from one .deb (see the module docstring)."""
    members = ar_members(deb_path)
    try:
        control_member = next(n for n in members if n.startswith("control.tar"))
        data_member = next(n for n in members if n.startswith("data.tar"))
    except StopIteration:
        raise BuildError("%s has no control.tar or data.tar member" % deb_path) from None
    control, conffiles = None, []
    with tarfile.open(fileobj=io.BytesIO(decompress(control_member, members[control_member]))) as tf:
        for m in tf.getmembers():
            path = _clean(m.name)
            if path == "/control":
                control = parse_deb822(tf.extractfile(m).read().decode("utf-8", "replace"))[0]
            elif path == "/conffiles":
                for line in tf.extractfile(m).read().decode("utf-8", "surrogateescape").splitlines():
                    words = line.split()
                    # `remove-on-upgrade /path` lines name files the package no longer ships
                    if words and words[0].startswith("/"):
                        conffiles.append(words[0])
    if control is None:
        raise BuildError("%s has no control file" % deb_path)
    entries, by_path = [], {}
    newest_mtime, from_changelog, copyright_text = 0, None, None
    data = decompress(data_member, members[data_member])
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            path = _clean(m.name)
            if path == "/":
                continue
            e = {"path": path, "mode": m.mode & 0o7777,
                 "user": m.uname or ("root" if m.uid == 0 else str(m.uid)),
                 "group": m.gname or ("root" if m.gid == 0 else str(m.gid))}
            newest_mtime = max(newest_mtime, int(m.mtime))
            if m.isdir():
                e["type"] = "dir"
            elif m.issym():
                e["type"], e["target"] = "symlink", m.linkname
            elif m.islnk():
                first = by_path[_clean(m.linkname)]
                e.update(type="hardlink", target=first["path"], sha256=first["sha256"], size=first["size"])
            elif m.isreg():
                blob = tf.extractfile(m).read()
                e.update(type="file", sha256=hashlib.sha256(blob).hexdigest(), size=len(blob))
                by_path[path] = e
                if path == "/usr/share/doc/%s/changelog.Debian.gz" % name:
                    from_changelog = changelog_date(blob)
                elif path == "/usr/share/doc/%s/copyright" % name:
                    copyright_text = blob.decode("utf-8", "replace")
            else:
                raise BuildError("%s: %s is a device or FIFO, which the corpus does not convert"
                                 % (deb_path, path))
            entries.append(e)
    # SOURCE_DATE_EPOCH: the changelog's date, raised to the newest mtime of the payload
    # (binNMUs are rebuilt later than their changelog entry) so that rpmbuild's mtime
    # clamping never changes a file.
    epoch = max(from_changelog or 0, newest_mtime) or FALLBACK_EPOCH
    return {"control": control, "conffiles": conffiles, "entries": entries,
            "data_member": data_member, "sde": epoch,
            "license": dep5_license(copyright_text) if copyright_text else None}


def cached_analysis(deb_path, name, sha256, cache_dir, version):
    """analyse() once per .deb content: the result and the data.tar member are kept under
    cache_dir/<sha256>/. Returns the analysis with `data_tar`, the member's path."""
    d = os.path.join(cache_dir, sha256[:2], sha256)
    info = read_json(os.path.join(d, "info.json"))
    if info is None or info.get("builder") != version or not os.path.exists(os.path.join(d, info["data_member"])):
        info = analyse(deb_path, name)
        info["builder"] = version
        write_atomic(os.path.join(d, info["data_member"]), ar_members(deb_path)[info["data_member"]])
        write_json(os.path.join(d, "info.json"), info)
    info["data_tar"] = os.path.join(d, info["data_member"])
    return info
