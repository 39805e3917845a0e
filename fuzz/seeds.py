#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, generated from real data at run time (bench/fuzz.sh).

usage: seeds.py REPOS_DIR OUT_DIR

REPOS_DIR is the shared corpus's repos folder (each repo: repodata/*.xml.gz, Packages/*.rpm);
OUT_DIR/<target>/ receives the seeds. Seeds stay small (libFuzzer mutates small inputs far
faster), so the big files are cut into valid pieces: a few packages of primary or filelists
wrapped in their root element, the smallest RPMs whole (and once more with an uncompressed
payload, so mutations reach the cpio reader through the package), their payloads as cpio,
and tars built here with every entry type a layer holds. Dockerfile seeds are the string
literals of strata-dockerfile's tests that look like Dockerfiles or .dockerignore files.
"""

import glob
import gzip
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # unicode_escape on test literals

REPOS, OUT = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_SEED = 64 * 1024


def out(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def xml_chunks(pattern, root_open, root_close, fix=None, per=(1, 2, 3), limit=40):
    """Pieces of `per` consecutive <package> elements of each matching file."""
    n = 0
    for path in sorted(glob.glob(pattern)):
        text = gzip.open(path).read().decode("utf-8")
        pkgs = re.findall(r"<package\b.*?</package>", text, flags=re.S)
        for k in per:
            for i in range(0, len(pkgs), max(1, len(pkgs) // (limit // len(per)))):
                chunk = pkgs[i : i + k]
                body = "\n".join(fix(j, p) if fix else p for j, p in enumerate(chunk))
                data = (root_open(len(chunk)) + body + "\n" + root_close).encode()
                if len(data) <= MAX_SEED:
                    yield data
                    n += 1
    return n


XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
for i, data in enumerate(
    xml_chunks(
        f"{REPOS}/*/repodata/*-primary.xml.gz",
        lambda n: XML_DECL
        + '<metadata xmlns="http://linux.duke.edu/metadata/common" '
        f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{n}">\n',
        "</metadata>\n",
    )
):
    out("repodata_primary", f"primary-{i:03}.xml", data)

# The filelists target maps pkgids onto a fixed primary of three packages.
pkgids = ["aaaa", "bbbb", "cccc"]
for i, data in enumerate(
    xml_chunks(
        f"{REPOS}/*/repodata/*-filelists.xml.gz",
        lambda n: XML_DECL + f'<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="{n}">\n',
        "</filelists>\n",
        fix=lambda j, p: re.sub(r'pkgid="[^"]*"', f'pkgid="{pkgids[j % 3]}"', p, count=1),
    )
):
    out("repodata_filelists", f"filelists-{i:03}.xml", data)


# --- RPMs -----------------------------------------------------------------------------------
def header_len(b, at):
    il, dl = struct.unpack(">II", b[at + 8 : at + 16])
    return 16 + il * 16 + dl


def payload_offset(b):
    sig = 96 + header_len(b, 96)
    main = (sig + 7) & ~7
    return main, main + header_len(b, main)


def with_identity_payload(b, cpio):
    """The package with PAYLOADCOMPRESSOR rewritten in place to "none" (all of rpm's
    compressor names but lzma are four letters) and the cpio stored as is."""
    main, end = payload_offset(b)
    il, _ = struct.unpack(">II", b[main + 8 : main + 16])
    store = main + 16 + il * 16
    for k in range(il):
        tag, ty, off, cnt = struct.unpack(">IIII", b[main + 16 + 16 * k : main + 32 + 16 * k])
        if tag == 1125:
            at = store + off
            name = b[at : b.index(b"\0", at)]
            if len(name) != 4:
                return None
            return b[:at] + b"none" + b[at + 4 : end] + cpio
    return None


rpms = sorted(glob.glob(f"{REPOS}/*/Packages/*.rpm"), key=os.path.getsize)
for path in rpms[:24]:
    name = os.path.basename(path)
    b = open(path, "rb").read()
    out("rpm_header", name, b)
    cpio = subprocess.run(["rpm2cpio", path], capture_output=True, check=True).stdout
    if len(cpio) <= MAX_SEED:
        out("cpio", name + ".cpio", cpio)
        plain = with_identity_payload(b, cpio)
        if plain and len(plain) <= 2 * MAX_SEED:
            out("rpm_header", name + ".none", plain)
# Header-only prefixes of larger packages: many files, scriptlets, triggers, capabilities.
for path in rpms[24::6]:
    b = open(path, "rb").read()
    _, end = payload_offset(b)
    if end <= 2 * MAX_SEED:
        out("rpm_header", os.path.basename(path) + ".head", b[:end])
# rpm's stripped cpio format (files over 4 GiB): index-only entries.
out("cpio", "stripped.cpio", b"07070X00000000" + b"abc\0" + b"07070X00000001" + b"070701" + b"0" * 80 +
    b"0000000B" + b"0" * 8 + b"TRAILER!!!\0" + b"\0" * 2)


# --- tars -----------------------------------------------------------------------------------
def tar_bytes(fmt, entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def ti(name, kind=tarfile.REGTYPE, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = 1700000000
    for k, v in kw.items():
        setattr(info, k, v)
    return info, (data if kind == tarfile.REGTYPE else None)


layer = [
    ti("etc/", tarfile.DIRTYPE),
    ti("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n", uid=0, gid=0),
    ti("usr/bin/", tarfile.DIRTYPE, mode=0o755),
    ti("usr/bin/su", data=b"\x7fELF", mode=0o4755),
    ti("usr/bin/sh", tarfile.SYMTYPE, linkname="busybox"),
    ti("usr/bin/ln", tarfile.LNKTYPE, linkname="usr/bin/su"),
    ti("run/fifo", tarfile.FIFOTYPE),
    ti("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
    ti("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
    ti("var/lib/.wh.gone"),
    ti("opt/.wh..wh..opq"),
    ti("home/user/file", data=b"x" * 700, uid=1000, gid=1000, uname="user", gname="user"),
]
pax = [
    ti("a/" + "long-name-" * 20 + "end", data=b"long"),
    ti("b/xattrs", data=b"x", pax_headers={"SCHILY.xattr.user.comment": "hi",
                                          "SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16}),
    ti("c/link-to-long", tarfile.SYMTYPE, linkname="/" + "t" * 150),
    ti("d/times", data=b"t", pax_headers={"mtime": "1700000000.123456789", "atime": "1"}),
]
tars = {
    "layer-gnu.tar": tar_bytes(tarfile.GNU_FORMAT, layer),
    "layer-ustar.tar": tar_bytes(tarfile.USTAR_FORMAT, [e for e in layer if e[0].name != "a"]),
    "layer-pax.tar": tar_bytes(tarfile.PAX_FORMAT, layer + pax),
    "gnu-long.tar": tar_bytes(tarfile.GNU_FORMAT, pax[:1] + pax[2:3]),
    "escape-attempts.tar": tar_bytes(tarfile.GNU_FORMAT, [
        ti("evil", tarfile.SYMTYPE, linkname="../../.."),
        ti("evil/x", data=b"out"),
        ti("/abs/file", data=b"abs"),
        ti("hl", tarfile.LNKTYPE, linkname="../outside"),
    ]),
    "empty.tar": b"\0" * 1024,
}
for name, data in tars.items():
    out("tar", name, data)
    out("tar", name + ".gz", gzip.compress(data, mtime=0))
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
        out("tar", name + ".zst", z)
# Real layer-like content: a small package's files as a tar (rpm2cpio | cpio is not needed:
# the cpio seeds already carry the payloads; one tar of real file bytes is enough).
real = [ti(f"usr/share/doc/f{i}", data=open(p, "rb").read()[:4096]) for i, p in enumerate(rpms[:3])]
out("tar", "real-bytes.tar.gz", gzip.compress(tar_bytes(tarfile.PAX_FORMAT, real), mtime=0))


# --- Dockerfiles ----------------------------------------------------------------------------
def literals(path):
    src = open(path, encoding="utf-8", errors="replace").read()
    for m in re.finditer(r'r(#*)"(.*?)"\1', src, flags=re.S):
        yield m.group(2)
    for m in re.finditer(r'(?<![r#])"((?:[^"\\]|\\.)*)"', src, flags=re.S):
        s = m.group(1)
        try:
            yield s.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except Exception:
            pass


instr = re.compile(r"^\s*(FROM|RUN|COPY|ADD|ARG|ENV|WORKDIR|ONBUILD|HEALTHCHECK|SHELL|USER|LABEL|ENTRYPOINT|CMD)\b",
                   re.M | re.I)
seen = set()
sources = glob.glob(f"{ROOT}/crates/strata-dockerfile/src/**/*.rs", recursive=True) + glob.glob(f"{ROOT}/tests/build_*.rs")
for path in sorted(sources):
    for s in literals(path):
        if s in seen or len(s) > 16 * 1024:
            continue
        is_df = bool(instr.search(s)) and "\n" in s
        is_ignore = "dockerignore" in path and ("*" in s or "!" in s) and "\n" in s
        if is_df or is_ignore:
            seen.add(s)
            out("dockerfile", f"lit-{len(seen):04}", s.encode())
# Vendored test data (BuildKit's parser testfiles and the like), when the checkout has it.
for path in sorted(glob.glob(f"{ROOT}/crates/strata-dockerfile/tests/data/**/*", recursive=True)):
    name = os.path.basename(path).lower()
    if os.path.isfile(path) and ("dockerfile" in name or "dockerignore" in name) and os.path.getsize(path) <= 16 * 1024:
        data = open(path, "rb").read()
        if data.decode("utf-8", "replace") not in seen:
            seen.add(data.decode("utf-8", "replace"))
            out("dockerfile", f"data-{len(seen):04}", data)
print({t: len(os.listdir(os.path.join(OUT, t))) for t in sorted(os.listdir(OUT))})
