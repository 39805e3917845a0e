"""Small shared pieces of the corpus builder: progress lines, running tools, hashing, and
files written atomically (a temporary file renamed over the target), so that a build
killed at any point leaves either the old file or the new one, never half of one."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time

_START = time.monotonic()


class BuildError(Exception):
    """A failure the builder explains: the message says what failed and, where one
    helps, what to do about it. build.py prints it without a traceback."""


def say(msg):
    """One progress line on stderr, stamped with the seconds since the builder started."""
    print("corpus [%6.1fs] %s" % (time.monotonic() - _START, msg), file=sys.stderr, flush=True)


class Step:
    """`with Step("build") as s:` prints the step's start and, on leaving, its duration and
    whatever summary the body put in `s.summary`."""

    def __init__(self, name):
        self.name = name
        self.summary = ""

    def __enter__(self):
        self.t0 = time.monotonic()
        say("%s ..." % self.name)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            say("%s: %s (%.1f s)" % (self.name, self.summary or "done", time.monotonic() - self.t0))
        return False


def run(argv, *, cwd=None, env=None, stdin=None, binary=False, check=True, with_stderr=False):
    """Runs a tool and returns its stdout (str, or bytes with binary=True; stdout then stderr
    with with_stderr=True). A non-zero exit raises BuildError carrying the command and the
    tail of its stderr, unless check=False."""
    try:
        res = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True)
    except FileNotFoundError:
        raise BuildError("%s is not installed (scripts/install-deps.sh installs the corpus "
                         "builder's tools)" % argv[0]) from None
    if check and res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace")[-3000:]
        raise BuildError("`%s` exited with %d:\n%s" % (" ".join(map(str, argv[:12])), res.returncode, err))
    out = res.stdout + res.stderr if with_stderr else res.stdout
    return out if binary else out.decode("utf-8", "surrogateescape")


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digest_of(obj):
    """A stable digest of any JSON-able value: the cache key of a step's inputs."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, ensure_ascii=False,
                                   separators=(",", ":")).encode("utf-8", "surrogateescape"))


def write_atomic(path, data):
    """Writes bytes or text to `path` through a temporary file in the same directory."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_json(path, obj):
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path, default=None):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def link_or_copy(src, dst):
    """A hard link where the filesystem allows one (the RPM cache and the corpus share
    their files), else a copy that keeps the mtime."""
    if os.path.lexists(dst):
        os.unlink(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def remove_tree(path):
    """rm -rf that also works on the read-only trees the builder publishes."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
    os.chmod(path, 0o755)
    shutil.rmtree(path)


def make_read_only(path):
    """Directories 0555 and files 0444, as the CI corpus is: a test that writes into the
    corpus instead of a copy fails here too (for a non-root user)."""
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & 0o444)
        os.chmod(dirpath, 0o555)
