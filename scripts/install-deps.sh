#!/usr/bin/env bash
# Installs the system tools the tests and benchmarks check strata against, and those the RPM
# corpus builder (corpus/build.py: python3, rpmbuild, createrepo_c, repo2solv and testsolv,
# zstd, xz for rpmbuild's tar) uses when there is no ../shared/corpus, when missing:
#   rpm (rpm, rpmbuild), createrepo-c, dnf, libsolv-tools (testsolv, rpmmd2solv), zstd and
#   GNU time (/usr/bin/time, for the benchmark's peak memory), umoci and skopeo (they read the
#   images and archives strata-oci writes), docker.io, podman and runc (the composed images
#   must load and run under both), libcap2-bin (getcap, to check file capabilities),
#   busybox-static (the sandbox tests build tiny roots from it), gpg and gpgconf (the
#   signature tests sign packages with rpmsign under a throwaway key), docker-registry,
#   htpasswd and openssl (the registry tests run a real registry, with basic and token
#   auth), buildah (strata build's file trees are compared with buildah's), git and
#   postgresql (the build service's tests serve sources from git repositories and run the
#   queue against a private PostgreSQL; pg_ctlcluster stands for it because initdb is not
#   on PATH), chromium (the web UI's browser tests run it headless), python3-venv (the API
#   schema test runs Schemathesis from PyPI, installed into a venv at /opt/strata-tools).
# The end-to-end tests fail, rather than skip, when one of them is missing, so CI runs this
# first. Debian/Ubuntu only (apt-get); uses sudo when not root. Safe to run again: when every
# tool is present it neither updates the apt index nor installs anything.
set -euo pipefail

# command:package pairs; a package is installed when its command is missing.
tools=(rpm:rpm rpmbuild:rpm createrepo_c:createrepo-c dnf:dnf testsolv:libsolv-tools
       rpmmd2solv:libsolv-tools repo2solv:libsolv-tools python3:python3 xz:xz-utils zstd:zstd /usr/bin/time:time umoci:umoci skopeo:skopeo
       dockerd:docker.io podman:podman runc:runc getcap:libcap2-bin busybox:busybox-static
       gpg:gpg gpgconf:gpgconf slirp4netns:slirp4netns ip:iproute2
       /usr/lib/podman/netavark:netavark docker-registry:docker-registry
       htpasswd:apache2-utils openssl:openssl buildah:buildah git:git
       pg_ctlcluster:postgresql chromium:chromium)

missing=()
for pair in "${tools[@]}"; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1; then
        # Several commands come from one package: list it once.
        [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
    fi
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-deps.sh: need root (or sudo) to install ${missing[*]}" >&2
        exit 1
    fi
}

# Debian's python3 without its venv module (python3-venv) cannot make the tools' venv.
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

# Python tools from PyPI, in their own venv (Debian's python refuses system-wide pip).
venv="${STRATA_TOOLS_VENV:-/opt/strata-tools}"
pip_tools() {
    if [ ! -x "$venv/bin/schemathesis" ]; then
        echo "install-deps.sh: installing schemathesis into $venv"
        as_root /usr/bin/python3 -m venv "$venv"
        as_root "$venv/bin/pip" install --quiet 'schemathesis>=4,<5'
    fi
}

if [ "${#missing[@]}" -eq 0 ]; then
    pip_tools
    echo "install-deps.sh: every tool the tests need is present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: missing ${missing[*]}, and there is no apt-get here; install them" \
         "with the system's package manager" >&2
    exit 1
fi


echo "install-deps.sh: installing ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# With recommends, as the corpus was built and validated (dnf's plugins come that way).
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
pip_tools
