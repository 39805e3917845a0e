//! The corpus images (shared/corpus/images.json) solved on the real Debian-derived repos,
//! checked against dnf 4.14 (`--setopt=install_weak_deps=False`): package counts for every
//! image, and the exact NEVRA sets for `bash coreutils` and `nginx-light`.
//!
//! The expected sets were produced with the corpus README's dnf command line
//! (`dnf --installroot R --repofrompath base,... [--repofrompath updates,...] --assumeno
//! install ...`) on 2026-11-22. The corpus sits at `../shared/corpus` beside the project.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use strata_repo::{LoadedRepo, RepoIndex};
use strata_solve::{solve, PoolRepo, Request};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/out/repos")
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

fn words(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
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
    assert_eq!(
        solve_set(&base_only, &["bash", "coreutils"]),
        words(DNF_BASE_BASH_COREUTILS)
    );
    assert_eq!(
        solve_set(&both, &["bash", "coreutils"]),
        words(DNF_BOTH_BASH_COREUTILS)
    );
    assert_eq!(
        solve_set(&base_only, &["nginx-light"]),
        words(DNF_BASE_NGINX_LIGHT)
    );
    assert_eq!(
        solve_set(&both, &["nginx-light"]),
        words(DNF_BOTH_NGINX_LIGHT)
    );
}

const DNF_BASE_BASH_COREUTILS: &str = "\
    base-files-12.4+deb12u15-0.x86_64@base base-passwd-3.6.1-0.x86_64@base
    bash-5.2.15-2+b13.x86_64@base coreutils-9.1-1.x86_64@base dash-0.5.12-2.x86_64@base
    debianutils-5.7-0.5~deb12u1.x86_64@base dpkg-1.21.23-0.x86_64@base
    gawk-1:5.2.1-2.x86_64@base gcc-12-base-12.2.0-14+deb12u1.x86_64@base
    libacl1-2.3.1-3.x86_64@base libattr1-1:2.5.1-4.x86_64@base
    libbz2-1.0-1.0.8-5+b1.x86_64@base libc6-2.36-9+deb12u14.x86_64@base
    libcrypt1-1:4.4.33-2.x86_64@base libdebconfclient0-0.270-0.x86_64@base
    libgcc-s1-12.2.0-14+deb12u1.x86_64@base libgmp10-2:6.2.1+dfsg1-1.1.x86_64@base
    liblzma5-5.4.1-1+deb12u1.x86_64@base libmd0-1.0.4-2.x86_64@base
    libmpfr6-4.2.0-1.x86_64@base libpcre2-8-0-10.42-1.x86_64@base
    libreadline8-8.2-1.3.x86_64@base libselinux1-3.4-1+b6.x86_64@base
    libsigsegv2-2.14-1.x86_64@base libtinfo6-6.4-4.x86_64@base
    libzstd1-1.5.4+dfsg2-5.x86_64@base perl-base-5.36.0-7+deb12u3.x86_64@base
    readline-common-8.2-1.3.noarch@base tar-1.34+dfsg-1.2+deb12u1.x86_64@base
    zlib1g-1:1.2.13.dfsg-1.x86_64@base";

const DNF_BASE_NGINX_LIGHT: &str = "\
    base-files-12.4+deb12u15-0.x86_64@base base-passwd-3.6.1-0.x86_64@base
    coreutils-9.1-1.x86_64@base dash-0.5.12-2.x86_64@base debconf-1.5.82-0.noarch@base
    debianutils-5.7-0.5~deb12u1.x86_64@base dpkg-1.21.23-0.x86_64@base
    gawk-1:5.2.1-2.x86_64@base gcc-12-base-12.2.0-14+deb12u1.x86_64@base
    iproute2-6.1.0-3.x86_64@base libacl1-2.3.1-3.x86_64@base libattr1-1:2.5.1-4.x86_64@base
    libbpf1-1:1.1.2-0+deb12u1.x86_64@base libbsd0-0.11.7-2.x86_64@base
    libbz2-1.0-1.0.8-5+b1.x86_64@base libc6-2.36-9+deb12u14.x86_64@base
    libcap2-1:2.66-4+deb12u3+b1.x86_64@base libcap2-bin-1:2.66-4+deb12u3+b1.x86_64@base
    libcom-err2-1.47.0-2+b2.x86_64@base libcrypt1-1:4.4.33-2.x86_64@base
    libdb5.3-5.3.28+dfsg2-1.x86_64@base libdebconfclient0-0.270-0.x86_64@base
    libelf1-0.188-2.1.x86_64@base libgcc-s1-12.2.0-14+deb12u1.x86_64@base
    libgmp10-2:6.2.1+dfsg1-1.1.x86_64@base libgssapi-krb5-2-1.20.1-2+deb12u5.x86_64@base
    libk5crypto3-1.20.1-2+deb12u5.x86_64@base libkeyutils1-1.6.3-2.x86_64@base
    libkrb5-3-1.20.1-2+deb12u5.x86_64@base libkrb5support0-1.20.1-2+deb12u5.x86_64@base
    liblzma5-5.4.1-1+deb12u1.x86_64@base libmd0-1.0.4-2.x86_64@base
    libmnl0-1.0.4-3.x86_64@base libmpfr6-4.2.0-1.x86_64@base
    libnginx-mod-http-echo-1:0.63-4.x86_64@base libpcre2-8-0-10.42-1.x86_64@base
    libreadline8-8.2-1.3.x86_64@base libselinux1-3.4-1+b6.x86_64@base
    libsigsegv2-2.14-1.x86_64@base libssl3-3.0.20-1~deb12u2.x86_64@base
    libtinfo6-6.4-4.x86_64@base libtirpc-common-1.3.3+ds-1.noarch@base
    libtirpc3-1.3.3+ds-1.x86_64@base libxtables12-1.8.9-2.x86_64@base
    libzstd1-1.5.4+dfsg2-5.x86_64@base nginx-1.22.1-9+deb12u9.x86_64@base
    nginx-common-1.22.1-9+deb12u9.noarch@base nginx-light-1.22.1-9+deb12u9.noarch@base
    perl-base-5.36.0-7+deb12u3.x86_64@base readline-common-8.2-1.3.noarch@base
    tar-1.34+dfsg-1.2+deb12u1.x86_64@base zlib1g-1:1.2.13.dfsg-1.x86_64@base";

const DNF_BOTH_BASH_COREUTILS: &str = "\
    base-files-12.4+deb12u15-0.x86_64@base base-passwd-3.6.1-0.x86_64@base
    bash-5.2.15-2+b13.1.x86_64@updates coreutils-9.1-1.x86_64@base dash-0.5.12-2.x86_64@base
    debianutils-5.7-0.5~deb12u1.x86_64@base dpkg-1.21.23-0.x86_64@base
    gawk-1:5.2.1-2.x86_64@base gcc-12-base-12.2.0-14+deb12u1.x86_64@base
    libacl1-2.3.1-3.x86_64@base libattr1-1:2.5.1-4.x86_64@base
    libbz2-1.0-1.0.8-5+b1.x86_64@base libc6-2.36-9+deb12u14.x86_64@base
    libcrypt1-1:4.4.33-2.x86_64@base libdebconfclient0-0.270-0.x86_64@base
    libgcc-s1-12.2.0-14+deb12u1.x86_64@base libgmp10-2:6.2.1+dfsg1-1.1.x86_64@base
    liblzma5-5.4.1-1+deb12u2.x86_64@updates libmd0-1.0.4-2.x86_64@base
    libmpfr6-4.2.0-1.x86_64@base libpcre2-8-0-10.42-1+deb12u2.x86_64@updates
    libreadline8-8.2-1.3.x86_64@base libselinux1-3.4-1+b6.x86_64@base
    libsigsegv2-2.14-1.x86_64@base libtinfo6-6.4-4.x86_64@base
    libzstd1-1.5.4+dfsg2-5.x86_64@base perl-base-5.36.0-7+deb12u4.x86_64@updates
    readline-common-8.2-1.3.noarch@base tar-1.34+dfsg-1.2+deb12u1.x86_64@base
    zlib1g-1:1.2.13.dfsg-1.x86_64@base";

const DNF_BOTH_NGINX_LIGHT: &str = "\
    base-files-12.4+deb12u15-0.x86_64@base base-passwd-3.6.1-0.x86_64@base
    coreutils-9.1-1.x86_64@base dash-0.5.12-2.x86_64@base debconf-1.5.82-0.noarch@base
    debianutils-5.7-0.5~deb12u1.x86_64@base dpkg-1.21.23-0.x86_64@base
    gawk-1:5.2.1-2.x86_64@base gcc-12-base-12.2.0-14+deb12u1.x86_64@base
    iproute2-6.1.0-3.x86_64@base libacl1-2.3.1-3.x86_64@base libattr1-1:2.5.1-4.x86_64@base
    libbpf1-1:1.1.2-0+deb12u1.x86_64@base libbsd0-0.11.7-2.x86_64@base
    libbz2-1.0-1.0.8-5+b1.x86_64@base libc6-2.36-9+deb12u14.x86_64@base
    libcap2-1:2.66-4+deb12u3+b1.x86_64@base libcap2-bin-1:2.66-4+deb12u3+b1.x86_64@base
    libcom-err2-1.47.0-2+b2.x86_64@base libcrypt1-1:4.4.33-2.x86_64@base
    libdb5.3-5.3.28+dfsg2-1.x86_64@base libdebconfclient0-0.270-0.x86_64@base
    libelf1-0.188-2.1.x86_64@base libgcc-s1-12.2.0-14+deb12u1.x86_64@base
    libgmp10-2:6.2.1+dfsg1-1.1.x86_64@base libgssapi-krb5-2-1.20.1-2+deb12u5.x86_64@base
    libk5crypto3-1.20.1-2+deb12u5.x86_64@base libkeyutils1-1.6.3-2.x86_64@base
    libkrb5-3-1.20.1-2+deb12u5.x86_64@base libkrb5support0-1.20.1-2+deb12u5.x86_64@base
    liblzma5-5.4.1-1+deb12u2.x86_64@updates libmd0-1.0.4-2.x86_64@base
    libmnl0-1.0.4-3.x86_64@base libmpfr6-4.2.0-1.x86_64@base
    libnginx-mod-http-echo-1:0.63-4.x86_64@base libpcre2-8-0-10.42-1+deb12u2.x86_64@updates
    libreadline8-8.2-1.3.x86_64@base libselinux1-3.4-1+b6.x86_64@base
    libsigsegv2-2.14-1.x86_64@base libssl3-3.0.22-1~deb12u2.x86_64@updates
    libtinfo6-6.4-4.x86_64@base libtirpc-common-1.3.3+ds-1.noarch@base
    libtirpc3-1.3.3+ds-1.x86_64@base libxtables12-1.8.9-2.x86_64@base
    libzstd1-1.5.4+dfsg2-5.x86_64@base nginx-1.22.1-9+deb12u11.x86_64@updates
    nginx-common-1.22.1-9+deb12u11.noarch@updates
    nginx-light-1.22.1-9+deb12u11.noarch@updates perl-base-5.36.0-7+deb12u4.x86_64@updates
    readline-common-8.2-1.3.noarch@base tar-1.34+dfsg-1.2+deb12u1.x86_64@base
    zlib1g-1:1.2.13.dfsg-1.x86_64@base";
