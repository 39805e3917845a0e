//! The corpus images (the corpus's images.json) solved on the real Debian-derived repos,
//! checked against dnf 4.14 (`--setopt=install_weak_deps=False`): package counts for every
//! image, and the exact package sets for `bash coreutils` and `nginx-light`.
//!
//! The expected sets were produced with the corpus README's dnf command line
//! (`dnf --installroot R --repofrompath base,... [--repofrompath updates,...] --assumeno
//! install ...`) on 2026-11-22. Which packages dnf installs is the same on every corpus
//! built from Debian 12; their versions are not, so each expected NEVRA is the newest build
//! of that name the offered repos hold, as the corpus's manifest says (strata-corpus).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use strata_repo::{LoadedRepo, RepoIndex};
use strata_solve::{solve, PoolRepo, Request};

fn corpus() -> PathBuf {
    strata_corpus::dir().join("out/repos")
}

fn load(name: &str) -> Option<LoadedRepo> {
    let dir = corpus().join(name).join("repodata");
    let entries = std::fs::read_dir(&dir).ok()?;
    let mut primary: Option<PathBuf> = None;
    let mut filelists: Option<PathBuf> = None;
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.ends_with("-primary.xml.gz") {
            primary = Some(e.path());
        } else if n.ends_with("-filelists.xml.gz") {
            filelists = Some(e.path());
        }
    }
    let gz =
        |p: &Path| flate2::read::GzDecoder::new(std::fs::File::open(p).expect("corpus file opens"));
    let index =
        RepoIndex::from_primary_xml(BufReader::new(gz(&primary?))).expect("corpus primary parses");
    let mut fl = Vec::new();
    gz(&filelists?)
        .read_to_end(&mut fl)
        .expect("corpus filelists read");
    Some(LoadedRepo::in_memory(name, index, Some(fl)))
}

fn evr(p: &strata_repo::Package<'_>) -> String {
    let e = p.evr();
    let mut s = String::new();
    if let Some(epoch) = e.epoch.filter(|&x| x != 0) {
        s.push_str(&format!("{epoch}:"));
    }
    s.push_str(e.version);
    if let Some(r) = e.release {
        s.push_str(&format!("-{r}"));
    }
    s
}

fn solve_set(pool: &[PoolRepo<'_>], packages: &[&str]) -> Vec<String> {
    let req = Request {
        packages: packages.iter().map(|s| s.to_string()).collect(),
        exclude: Vec::new(),
        install_weak_deps: false,
        arch: "x86_64".into(),
    };
    let selected = solve(pool, &req).unwrap_or_else(|e| panic!("{packages:?}: {e}"));
    let mut out: Vec<String> = selected
        .iter()
        .map(|s| {
            let r = pool[s.repo].repo;
            let p = r.index.package(s.id);
            format!("{}-{}.{}@{}", p.name(), evr(&p), p.arch(), r.id)
        })
        .collect();
    out.sort();
    out
}

/// `NAME-[EPOCH:]VERSION-RELEASE.ARCH@REPO` of the newest build of each of `names` in
/// `repos`, sorted: what dnf installs for those names.
fn expected(names: &str, repos: &[&str]) -> Vec<String> {
    let manifest = strata_corpus::manifest();
    let mut v: Vec<String> = names
        .split_whitespace()
        .map(|n| {
            let rpm = manifest.newest(n, repos);
            format!("{}@{}", rpm.nevra(), rpm.repo)
        })
        .collect();
    v.sort();
    v
}

const IMAGES: [(&[&str], usize, usize); 5] = [
    // request, dnf count on base, dnf count on base+updates
    (&["bash", "coreutils"], 30, 30),
    (&["nodejs"], 43, 43),
    (&["python3-django"], 59, 59),
    (&["nginx-light"], 52, 52),
    (&["busybox"], 28, 28),
];

#[test]
fn corpus_images_match_dnf() {
    let (Some(base), Some(updates)) = (load("base"), load("updates")) else {
        panic!("the RPM corpus is missing under {}", corpus().display());
    };
    let base_only = [PoolRepo::new(&base)];
    let both = [PoolRepo::new(&base), PoolRepo::new(&updates)];
    for (request, n_base, n_both) in IMAGES {
        assert_eq!(
            solve_set(&base_only, request).len(),
            n_base,
            "{request:?} on base"
        );
        assert_eq!(
            solve_set(&both, request).len(),
            n_both,
            "{request:?} on base+updates"
        );
    }
    let (b, bu) = (&["base"][..], &["base", "updates"][..]);
    assert_eq!(solve_set(&base_only, &["bash", "coreutils"]), expected(DNF_BASH_COREUTILS, b));
    assert_eq!(solve_set(&both, &["bash", "coreutils"]), expected(DNF_BASH_COREUTILS, bu));
    assert_eq!(solve_set(&base_only, &["nginx-light"]), expected(DNF_NGINX_LIGHT, b));
    assert_eq!(solve_set(&both, &["nginx-light"]), expected(DNF_NGINX_LIGHT, bu));
}

/// dnf's install set for `bash coreutils`, on base and on base+updates alike.
const DNF_BASH_COREUTILS: &str = "\
    base-files base-passwd bash coreutils dash debianutils dpkg gawk gcc-12-base libacl1
    libattr1 libbz2-1.0 libc6 libcrypt1 libdebconfclient0 libgcc-s1 libgmp10 liblzma5 libmd0
    libmpfr6 libpcre2-8-0 libreadline8 libselinux1 libsigsegv2 libtinfo6 libzstd1 perl-base
    readline-common tar zlib1g";

/// dnf's install set for `nginx-light`, on base and on base+updates alike.
const DNF_NGINX_LIGHT: &str = "\
    base-files base-passwd coreutils dash debconf debianutils dpkg gawk gcc-12-base iproute2
    libacl1 libattr1 libbpf1 libbsd0 libbz2-1.0 libc6 libcap2 libcap2-bin libcom-err2 libcrypt1
    libdb5.3 libdebconfclient0 libelf1 libgcc-s1 libgmp10 libgssapi-krb5-2 libk5crypto3
    libkeyutils1 libkrb5-3 libkrb5support0 liblzma5 libmd0 libmnl0 libmpfr6
    libnginx-mod-http-echo libpcre2-8-0 libreadline8 libselinux1 libsigsegv2 libssl3 libtinfo6
    libtirpc-common libtirpc3 libxtables12 libzstd1 nginx nginx-common nginx-light perl-base
    readline-common tar zlib1g";
