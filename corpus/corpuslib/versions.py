"""Debian and RPM versions: dpkg's ordering (to pick the newest version of a package and to
test versioned Debian relations), rpm's ordering (to check that every update sorts newer
than its base once converted), and the mapping from a Debian version to an RPM EVR.

Mapping rule (see corpus/README.md): the Debian epoch is the Epoch, `upstream` the
Version, `revision` the Release (`0` for a native version). RPM forbids `-` and `:` in a
Version or Release, so those become `_`."""

import re


def _dpkg_char_weight(c):
    # dpkg's order for the non-digit parts: '~' before everything (even the end of the
    # string), then letters, then everything else.
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part_compare(a, b):
    """dpkg's comparison of one upstream or revision string: alternating runs of non-digits
    (compared char by char with the weights above, the end of a string weighing 0) and
    digits (compared as numbers)."""
    ia, ib = 0, 0
    while ia < len(a) or ib < len(b):
        # non-digit run
        while (ia < len(a) and not a[ia].isdigit()) or (ib < len(b) and not b[ib].isdigit()):
            wa = _dpkg_char_weight(a[ia]) if ia < len(a) and not a[ia].isdigit() else 0
            wb = _dpkg_char_weight(b[ib]) if ib < len(b) and not b[ib].isdigit() else 0
            if wa != wb:
                return -1 if wa < wb else 1
            if ia < len(a) and not a[ia].isdigit():
                ia += 1
            if ib < len(b) and not b[ib].isdigit():
                ib += 1
        # digit run
        ja, jb = ia, ib
        while ja < len(a) and a[ja].isdigit():
            ja += 1
        while jb < len(b) and b[jb].isdigit():
            jb += 1
        na = int(a[ia:ja] or "0")
        nb = int(b[ib:jb] or "0")
        if na != nb:
            return -1 if na < nb else 1
        ia, ib = ja, jb
    return 0


def split_debian(version):
    """'1:2.3-4+deb12u1' -> (1, '2.3', '4+deb12u1'); a native version has revision None."""
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        return int(epoch), rest, None
    return int(epoch), upstream, revision


def dpkg_compare(a, b):
    """<0, 0 or >0 as dpkg --compare-versions orders a and b."""
    ea, ua, ra = split_debian(a)
    eb, ub, rb = split_debian(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _dpkg_part_compare(ua, ub) or _dpkg_part_compare(ra or "", rb or "")


def dpkg_satisfies(version, op, wanted):
    c = dpkg_compare(version, wanted)
    return {"<<": c < 0, "<=": c <= 0, "=": c == 0, ">=": c >= 0, ">>": c > 0}[op]


_RPM_SEGMENT = re.compile(r"(~|\^|[0-9]+|[A-Za-z]+)")


def _rpm_segments(s):
    """rpmvercmp's view of a string: separators dropped, then '~', '^', digit runs and
    letter runs in order."""
    return _RPM_SEGMENT.findall(s)


def rpmvercmp(a, b):
    """rpm's rpmvercmp(): -1, 0 or 1."""
    if a == b:
        return 0
    sa, sb = _rpm_segments(a), _rpm_segments(b)
    i = 0
    while True:
        xa = sa[i] if i < len(sa) else None
        xb = sb[i] if i < len(sb) else None
        # '~' sorts before anything, the end of the string included
        if xa == "~" or xb == "~":
            if xa != "~":
                return 1
            if xb != "~":
                return -1
            i += 1
            continue
        # '^' sorts after the end of the string but before anything else
        if xa == "^" or xb == "^":
            if xa is None:
                return -1
            if xb is None:
                return 1
            if xa != "^":
                return 1
            if xb != "^":
                return -1
            i += 1
            continue
        if xa is None or xb is None:
            if xa is None and xb is None:
                return 0
            return -1 if xa is None else 1
        da, db = xa.isdigit(), xb.isdigit()
        if da != db:
            # a number is newer than letters
            return 1 if da else -1
        if da:
            xa, xb = xa.lstrip("0"), xb.lstrip("0")
            if len(xa) != len(xb):
                return -1 if len(xa) < len(xb) else 1
        if xa != xb:
            return -1 if xa < xb else 1
        i += 1


def rpm_evr_compare(x, y):
    """x, y: (epoch or None, version, release)."""
    if (x[0] or 0) != (y[0] or 0):
        return -1 if (x[0] or 0) < (y[0] or 0) else 1
    return rpmvercmp(x[1], y[1]) or rpmvercmp(x[2] or "", y[2] or "")


_NOT_RPM = re.compile(r"[^A-Za-z0-9._+~]")


def _rpm_safe(s):
    return _NOT_RPM.sub("_", s)


def rpm_evr(debian_version, native_release="0"):
    """The EVR of a package: (epoch or None, version, release)."""
    epoch, upstream, revision = split_debian(debian_version)
    release = _rpm_safe(revision) if revision is not None else native_release
    return (epoch if ":" in debian_version else None), _rpm_safe(upstream), release


def relation_evr(op, debian_version):
    """The EVR of a versioned relation. Debian reads a missing revision as '0', rpm ignores
    a missing release: for every operator but '>=' the release becomes '0', so that
    libc-bin's `libc6 (>> 2.36)` stays satisfied by libc6 2.36-9 (`libc6 > 2.36-0`)."""
    return rpm_evr(debian_version, native_release=None if op == ">=" else "0")


def evr_text(evr):
    epoch, version, release = evr
    s = ("%d:" % epoch if epoch is not None else "") + version
    return s + ("-" + release if release is not None else "")
