"""One RPM spec per Debian source package: every binary of the same source at the same
binary version is a `%package -n` of one spec, so each RPM's SOURCERPM names its source, as
in an RPM distribution. The payload is the .deb's data.tar, unpacked verbatim; Debian's
fields become RPM tags and dependencies; a few RPM-only features (scriptlets, a file
trigger, a capability, files Debian's maintainer scripts would create) are added per
package in EXTRAS. corpus/README.md describes every rule."""

import datetime

from .apt import parse_relations
from .versions import evr_text, relation_evr, rpm_evr

ARCH = {"amd64": "x86_64", "all": "noarch"}
BUILDHOST = "corpus.invalid"
LIBDIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")

# Dependency-generator classes that can be switched off (requirements side only) when
# they produce requirements nothing in the corpus provides.
GENERATOR_MACROS = {
    "perl": ("__perl_requires", "__perllib_requires"),
    "python": ("__python_requires", "__pythondist_requires"),
    "pkgconfig": ("__pkgconfig_requires",),
    "ocaml": ("__ocaml_requires",),
}


def payload_compressor(source):
    """rpm's _binary_payload of a spec, by the first letter of the Debian source name, so
    that the corpus has all three compressions: vowels xz, 'g' gzip, the rest zstd."""
    first = source[0].lower()
    if first in "aeiou":
        return "w6.xzdio"
    if first == "g":
        return "w9.gzdio"
    return "w19.zstdio"


def esc(text):
    """Text for a spec tag or body: '%' would start a macro."""
    return text.replace("%", "%%")


def files_path(path):
    """A quoted %files path. Glob characters become '?', which matches the character
    itself (each built RPM's file list is verified against the data.tar afterwards)."""
    return '"%s"' % "".join("?" if c in '*?[]{}"\\' else c for c in path).replace("%", "%%")


def ere_literal(text):
    """An extended regular expression matching `text` (for __requires_exclude)."""
    return "".join("[%s]" % c if c in ".[]()*+?{}|$" else ("\\\\" + c if c in "^\\" else c) for c in text)


def dep_atom(name, op, version):
    if op is None:
        return name
    rop = {"<<": "<", "<=": "<=", "=": "=", ">=": ">=", ">>": ">"}[op]
    return "%s %s %s" % (name, rop, evr_text(relation_evr(op, version)))


def dep_group(group):
    """A Debian `a | b` group: one atom, or a rich `(a or b)`."""
    atoms = []
    for atom in (dep_atom(*a) for a in group):
        if atom not in atoms:
            atoms.append(atom)
    return atoms[0] if len(atoms) == 1 else "(%s)" % " or ".join(atoms)


def conflict(own_name, name, op, version, unversioned):
    """A versioned Conflicts/Breaks. RPM lets an unversioned Provides match any versioned
    relation, Debian never does: packages that provide the name without a version are
    excluded with a rich `(x < v without p)`, so the conflict keeps its Debian meaning."""
    atom = dep_atom(name, op, version)
    others = [p for p in unversioned.get(name, ()) if p != own_name] if op else []
    if not others:
        return atom
    return "(%s without %s)" % (atom, others[0] if len(others) == 1 else "(%s)" % " or ".join(others))


def description(control, name):
    """(summary, body) of a Debian Description."""
    lines = control.get("Description", name).split("\n")
    body = []
    for line in lines[1:]:
        line = line[1:] if line.startswith(" ") else line
        body.append("" if line.strip() == "." else line.rstrip())
    while body and not body[-1]:
        body.pop()
    summary = lines[0].strip() or name
    return summary, "\n".join(body) or summary


# --------------------------------------------------------------------------------------
# RPM-only additions, per binary package name

class Extras:
    def __init__(self):
        self.install, self.files, self.scripts = [], [], []
        self.provides, self.requires, self.requires_pre, self.requires_post = [], [], [], []
        self.caps = {}          # path -> capability text
        self.extra_paths = []   # entries the payload gains beyond the data.tar (verified too)

    def add_path(self, line, entry):
        self.files.append(line)
        self.extra_paths.append(dict({"user": "root", "group": "root"}, **entry))


def _require_path(paths, name, *candidates):
    for p in candidates:
        if p in paths:
            return p
    raise ValueError("%s ships none of %s" % (name, ", ".join(candidates)))


def _base_passwd(x, paths):
    # Like Fedora's `setup`, base-passwd owns /etc/passwd and /etc/group, so that every
    # root has them and owner names resolve at install time.
    for f in ("passwd", "group"):
        master = _require_path(paths, "base-passwd", "/usr/share/base-passwd/%s.master" % f)
        x.install.append("mkdir -p %%{buildroot}/etc && install -p -m 0644 %%{buildroot}%s %%{buildroot}/etc/%s"
                         % (master, f))
        x.add_path('%%config(noreplace) %%attr(0644,root,root) "/etc/%s"' % f,
                   {"path": "/etc/" + f, "type": "file", "mode": 0o644, "config": True})


def _dash(x, paths):
    if "/bin/sh" not in paths:
        x.install.append("ln -s dash %{buildroot}/bin/sh")
        x.add_path('%attr(-,root,root) "/bin/sh"', {"path": "/bin/sh", "type": "symlink", "target": "dash"})


def _ca_certificates(x, paths):
    # --default: without debconf there is no /etc/ca-certificates.conf, and plain --fresh
    # would write an empty bundle. The tools the script runs are Essential in Debian and
    # never declared; in RPM a scriptlet's needs are explicit (openssl: the script ends
    # with `openssl rehash`, so it must be installed first).
    x.scripts.append("%post\nupdate-ca-certificates --fresh --default >/dev/null 2>&1 || :\n")
    x.requires_post += ["coreutils", "findutils", "sed", "debianutils", "base-files", "openssl"]


def _libc_bin(x, paths):
    # A /bin/sh body, as Fedora's glibc: with `-p /sbin/ldconfig` rpm passes the instance
    # count as an argument, and glibc 2.36's ldconfig fails on the relative path `0'.
    ldconfig = _require_path(paths, "libc-bin", "/sbin/ldconfig", "/usr/sbin/ldconfig")
    x.scripts.append("%%transfiletriggerin -- %s\n%s\n" % (" ".join(LIBDIRS), ldconfig))


def _libc6(x, paths):
    # elfdeps asks for rtld(GNU_HASH); Fedora's glibc provides it. And as Fedora's glibc
    # pulls in basesystem, libc6 pulls in Debian's Essential skeleton and user database.
    x.provides.append("rtld(GNU_HASH)")
    x.requires += ["base-files", "base-passwd"]


def _iputils_ping(x, paths):
    # Debian sets the capability in postinst; the RPM carries it as a file attribute.
    x.caps[_require_path(paths, "iputils-ping", "/bin/ping", "/usr/bin/ping")] = "cap_net_raw=p"


def _redis_server(x, paths):
    x.requires_pre += ["base-passwd", "/usr/bin/getent"]
    x.scripts.append(
        "%pre\n"
        "getent group redis >/dev/null || echo 'redis:x:999:' >> /etc/group\n"
        "getent passwd redis >/dev/null || echo 'redis:x:999:999:redis:/var/lib/redis:/usr/sbin/nologin' >> /etc/passwd\n"
        "exit 0\n")


def _nginx_common(x, paths):
    # What Debian's postinst creates: the enabled default site and its document root, so
    # that an nginx image serves GET / out of the box.
    index = _require_path(paths, "nginx-common", "/usr/share/nginx/html/index.html")
    x.install.append("ln -s /etc/nginx/sites-available/default %{buildroot}/etc/nginx/sites-enabled/default")
    x.install.append("mkdir -p %%{buildroot}/var/www/html && install -p -m 0644 %%{buildroot}%s "
                     "%%{buildroot}/var/www/html/index.nginx-debian.html" % index)
    x.add_path('%attr(-,root,root) "/etc/nginx/sites-enabled/default"',
               {"path": "/etc/nginx/sites-enabled/default", "type": "symlink",
                "target": "/etc/nginx/sites-available/default"})
    for d in ("/var/www", "/var/www/html"):
        x.add_path('%%dir %%attr(0755,root,root) "%s"' % d, {"path": d, "type": "dir", "mode": 0o755})
    x.add_path('%attr(0644,root,root) "/var/www/html/index.nginx-debian.html"',
               {"path": "/var/www/html/index.nginx-debian.html", "type": "file", "mode": 0o644})


EXTRAS = {"base-passwd": _base_passwd, "dash": _dash, "ca-certificates": _ca_certificates,
          "libc-bin": _libc_bin, "libc6": _libc6, "iputils-ping": _iputils_ping,
          "redis-server": _redis_server, "nginx-common": _nginx_common}

SYNTHETIC_README = "/usr/share/doc/bash/README.corpus-update"


def extras_for(name, info, variant):
    paths = {e["path"] for e in info["entries"]}
    x = Extras()
    if name in EXTRAS:
        EXTRAS[name](x, paths)
    if name != "base-passwd" and any((e["user"], e["group"]) != ("root", "root") for e in info["entries"]):
        # Owner names must resolve when rpm installs the files, as Fedora's `setup` does.
        x.requires_pre.append("base-passwd")
    if variant == "synthetic-update":
        # The synthetic update: Debian's bash plus one text file, at Release + ".1".
        x.install.append(
            "mkdir -p %%{buildroot}%s && printf '%%s\\n' 'Synthetic corpus update: identical to the "
            "Debian bash payload except for this file.' > %%{buildroot}%s && touch -h -d "
            "@${SOURCE_DATE_EPOCH} %%{buildroot}%s" % (SYNTHETIC_README.rsplit("/", 1)[0], SYNTHETIC_README,
                                                        SYNTHETIC_README))
        x.add_path('%%attr(0644,root,root) "%s"' % SYNTHETIC_README,
                   {"path": SYNTHETIC_README, "type": "file", "mode": 0o644})
    return x


# --------------------------------------------------------------------------------------
# the spec

def binary_section(name, info, variant, unversioned, is_main, spec_noarch):
    """The preamble, description, %install lines, scriptlets and %files of one binary,
    plus its facts for the manifest."""
    ctl = info["control"]
    epoch, version, release = rpm_evr(ctl["Version"])
    if variant == "synthetic-update":
        release += ".1"
    arch = ARCH[ctl["Architecture"]]
    summary, body = description(ctl, name)
    x = extras_for(name, info, variant)
    tag = [] if is_main else ["-n", name]
    pre = ["Name: " + name] if is_main else ["%package -n " + name]
    if epoch is not None:
        pre.append("Epoch: %d" % epoch)
    pre += ["Version: " + version, "Release: " + release, "Summary: " + esc(summary),
            "License: " + esc(info["license"] or "see /usr/share/doc/%s/copyright" % name)]
    for field, rpmtag in (("Homepage", "URL"), ("Maintainer", "Packager"), ("Section", "Group")):
        if ctl.get(field):
            pre.append("%s: %s" % (rpmtag, esc(ctl[field].strip())))
    pre.append("Vendor: Debian")
    if arch == "noarch" and (is_main or not spec_noarch):
        pre.append("BuildArch: noarch")
    own = {name}
    for group in parse_relations(ctl.get("Provides")):
        for pname, op, pver in group:
            own.add(pname)
            if pname != name:  # rpm's automatic `NAME = EVR` covers it
                pre.append("Provides: " + dep_atom(pname, op if op == "=" else None, pver))
    pre += ["Provides: " + p for p in x.provides]
    pre += ["Requires(pre): " + d for d in x.requires_pre]
    pre += ["Requires(post): " + d for d in x.requires_post]
    pre += ["Requires(pre): " + dep_group(g) for g in parse_relations(ctl.get("Pre-Depends"))]
    pre += ["Requires: " + dep_group(g) for g in parse_relations(ctl.get("Depends"))]
    pre += ["Requires: " + d for d in x.requires]
    conflicts = []
    for field in ("Conflicts", "Breaks"):
        for group in parse_relations(ctl.get(field)):
            for cname, op, cver in group:
                # Debian never applies a package's relations to itself (the idiom
                # `Provides: x` + `Conflicts: x`).
                c = None if cname in own else conflict(name, cname, op, cver, unversioned)
                if c and c not in conflicts:
                    conflicts.append(c)
    pre += ["Conflicts: " + c for c in conflicts]
    for field in ("Recommends", "Suggests", "Enhances"):
        pre += ["%s: %s" % (field, dep_group(g)) for g in parse_relations(ctl.get(field))]

    conffiles = set(info["conffiles"])
    files = [" ".join(["%files"] + tag), "%defattr(-,root,root,-)"]
    for e in info["entries"]:
        attr = "%%attr(%04o,%s,%s)" % (e["mode"], e["user"], e["group"])
        if e["type"] == "dir":
            files.append("%%dir %s %s" % (attr, files_path(e["path"])))
        elif e["type"] == "symlink":
            files.append("%%attr(-,%s,%s) %s" % (e["user"], e["group"], files_path(e["path"])))
        else:
            flags = []
            if e["path"] in conffiles:
                flags.append("%config(noreplace)")
            if e["path"] == "/usr/share/doc/%s/copyright" % name:
                flags.append("%license")
            if e["path"] in x.caps:
                flags.append("%%caps(%s)" % x.caps[e["path"]])
            files.append(" ".join(flags + [attr, files_path(e["path"])]))
    files += x.files
    scripts = []
    for s in x.scripts:
        head, _, rest = s.partition("\n")
        words = head.split(None, 1)
        scripts.append(" ".join(words[:1] + tag + words[1:]) + "\n" + rest)
    meta = {"name": name, "epoch": epoch, "version": version, "release": release, "arch": arch,
            "debian_version": ctl["Version"], "variant": variant,
            "rpm_file": "%s-%s-%s.%s.rpm" % (name, version, release, arch),
            "caps": x.caps, "extra_paths": x.extra_paths, "conffiles": sorted(conffiles)}
    return {"preamble": pre, "description": [" ".join(["%description"] + tag), esc(body)],
            "install": x.install, "scripts": scripts, "files": files, "meta": meta,
            "maintainer": ctl.get("Maintainer", "Debian"), "evr": (epoch, version, release)}


def make_spec(group, infos, decision, unversioned, builder_version):
    """(spec text, per-binary facts, spec facts) of one group: group has `source`,
    `source_version`, `variant`, `suite` and `binaries` (sorted by name, each with `name`,
    `sha256`, `deb`); infos are their deb.analyse() results in the same order; decision
    says which generator classes to disable and which single requirements to exclude."""
    src, srcver, variant = group["source"], group["source_version"], group["variant"]
    names = [b["name"] for b in group["binaries"]]
    main_is_binary = src in names
    arches = [i["control"]["Architecture"] for i in infos]
    spec_noarch = arches[names.index(src)] == "all" if main_is_binary else all(a == "all" for a in arches)
    if spec_noarch and any(a != "all" for a in arches):
        raise ValueError("source %s: its main package %s is noarch but a sibling is not" % (src, src))
    sections = [binary_section(n, i, variant, unversioned, n == src, spec_noarch) for n, i in zip(names, infos)]
    sde = max(i["sde"] for i in infos)  # one SOURCE_DATE_EPOCH per spec: the newest
    if main_is_binary:
        main_evr = sections[names.index(src)]["evr"]
    else:
        e, v, r = rpm_evr(srcver)
        main_evr = (e, v, r + ".1" if variant == "synthetic-update" else r)
    sourcerpm = "%s-%s-%s.src.rpm" % (src, main_evr[1], main_evr[2])
    order = sorted(range(len(names)), key=lambda k: (names[k] != src, names[k]))

    lines = ["# Generated by strata's corpus builder (%s) from Debian source %s %s, %s"
             % (builder_version, src, srcver, variant)]
    lines += ["# %s: %s sha256 %s" % (b["name"], b["deb"], b["sha256"]) for b in group["binaries"]]
    for macro, value in (("__spec_install_post", "%{nil}"), ("__os_install_post", "%{nil}"),
                         ("debug_package", "%{nil}"), ("_build_id_links", "none"),
                         ("_binary_payload", payload_compressor(src)),
                         ("_binary_filedigest_algorithm", "8"), ("_source_filedigest_algorithm", "8"),
                         ("_buildhost", BUILDHOST), ("use_source_date_epoch_as_buildtime", "1"),
                         ("clamp_mtime_to_source_date_epoch", "1"), ("source_date_epoch_from_changelog", "0"),
                         ("_unpackaged_files_terminate_build", "1")):
        lines.append("%%global %s %s" % (macro, value))
    # %define: the file name must be expanded per binary from its header, not from the
    # main package's %{name}.
    lines.append("%define _rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm")
    for cls in decision.get("disable", []):
        lines += ["%%global %s %%{nil}" % m for m in GENERATOR_MACROS[cls]]
    if decision.get("exclude"):
        lines.append("%%global __requires_exclude ^(%s)$" % "|".join(ere_literal(r) for r in decision["exclude"]))
    lines.append("")
    if not main_is_binary:
        # Never emitted (it has no %files): it only names the source, whose N-V-R rpmbuild
        # writes into every binary's SOURCERPM.
        lines += ["Name: " + src, "Version: " + main_evr[1], "Release: " + main_evr[2],
                  "Summary: Debian source package " + esc(src),
                  "License: " + esc(infos[order[0]]["license"] or "see /usr/share/doc/%s/copyright" % names[order[0]])]
        lines += ["BuildArch: noarch"] if spec_noarch else []
        lines += ["", "%description", "Debian source package %s %s, binary packages: %s."
                  % (esc(src), esc(srcver), ", ".join(esc(n) for n in names)), ""]
    for k in order:
        lines += sections[k]["preamble"] + [""] + sections[k]["description"] + [""]
    lines += ["%install", "mkdir -p %{buildroot}"]
    for k, info in enumerate(infos):
        lines.append("tar --numeric-owner -xpf '%%{corpus_data_tar_%d}' -C %%{buildroot}" % k)
    for k in order:
        lines += sections[k]["install"]
    lines.append("")
    for k in order:
        lines += sections[k]["scripts"]
    for k in order:
        lines += sections[k]["files"] + [""]
    date = datetime.datetime.fromtimestamp(sde, datetime.timezone.utc).strftime("%a %b %d %Y")
    head = sections[order[0]]
    lines += ["%changelog", "* %s %s - %s" % (date, esc(head["maintainer"]), evr_text(main_evr))]
    if variant == "synthetic-update":
        lines.append("- Synthetic corpus update of Debian bash %s: adds README.corpus-update"
                     % head["meta"]["debian_version"])
    else:
        lines.append("- Converted from Debian source package %s %s (%s): %s" % (
            esc(src), esc(srcver), group["suite"],
            ", ".join("%s %s" % (n, s["meta"]["debian_version"]) for n, s in zip(names, sections))))
    lines.append("")
    for s in sections:
        s["meta"].update(sourcerpm=sourcerpm, source=src, source_version=srcver, sde=sde)
    spec_name = "%s-%s-%s.spec" % (src, sections[0]["evr"][1], sections[0]["evr"][2])
    return "\n".join(lines), [s["meta"] for s in sections], {"sde": sde, "spec_file": spec_name,
                                                             "sourcerpm": sourcerpm}
