//! Semantics tests on tiny inline repositories (primary.xml built by `Pkg`).

mod deps;
mod policy;
mod requests;

use strata_repo::{LoadedRepo, RepoIndex};

use crate::{solve, PoolRepo, Request, SolveError};

/// A package of a test repository. `deps` lines: `P:` provides, `R:` requires, `C:`
/// conflicts, `O:` obsoletes, `Rec:` recommends, `Sup:` supplements, `F:` a file in
/// primary; each followed by `name [op evr]` or a rich expression.
pub(crate) struct Pkg<'a> {
    pub name: &'a str,
    pub evr: &'a str,
    pub arch: &'a str,
    pub deps: &'a [&'a str],
}

pub(crate) fn p<'a>(name: &'a str, evr: &'a str, deps: &'a [&'a str]) -> Pkg<'a> {
    Pkg {
        name,
        evr,
        arch: "x86_64",
        deps,
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `1:2.0-3` → `epoch="1" ver="2.0" rel="3"` (attributes left out when absent).
fn evr_attrs(evr: &str) -> String {
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, evr),
    };
    let (ver, rel) = match rest.rsplit_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    let mut s = String::new();
    if let Some(e) = epoch {
        s.push_str(&format!(" epoch=\"{e}\""));
    }
    s.push_str(&format!(" ver=\"{}\"", esc(ver)));
    if let Some(r) = rel {
        s.push_str(&format!(" rel=\"{}\"", esc(r)));
    }
    s
}

fn entry(dep: &str) -> String {
    let dep = dep.trim();
    if dep.starts_with('(') {
        return format!("<rpm:entry name=\"{}\"/>", esc(dep));
    }
    let words: Vec<&str> = dep.split_whitespace().collect();
    match words.as_slice() {
        [name] => format!("<rpm:entry name=\"{}\"/>", esc(name)),
        [name, op, evr] => {
            let flags = match *op {
                "<" => "LT",
                "<=" => "LE",
                "=" => "EQ",
                ">=" => "GE",
                ">" => "GT",
                other => panic!("test helper: bad op {other}"),
            };
            format!(
                "<rpm:entry name=\"{}\" flags=\"{flags}\"{}/>",
                esc(name),
                evr_attrs(evr)
            )
        }
        _ => panic!("test helper: bad dep {dep}"),
    }
}

pub(crate) fn primary_xml(pkgs: &[Pkg<'_>]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"",
    );
    x.push_str(&format!("{}\">\n", pkgs.len()));
    for (i, pkg) in pkgs.iter().enumerate() {
        let (e, rest) = match pkg.evr.split_once(':') {
            Some((e, r)) => (e, r),
            None => ("0", pkg.evr),
        };
        let (v, r) = rest.rsplit_once('-').unwrap_or((rest, "1"));
        x.push_str(&format!(
            "<package type=\"rpm\"><name>{}</name><arch>{}</arch><version epoch=\"{e}\" ver=\"{}\" rel=\"{}\"/>\
             <checksum type=\"sha256\" pkgid=\"YES\">{:064x}</checksum><summary>test</summary><description>test</description>\
             <packager/><url/><time file=\"1\" build=\"1\"/><size package=\"1\" installed=\"1\" archive=\"1\"/>\
             <location href=\"Packages/{}-{}-{}.{}.rpm\"/><format><rpm:license>MIT</rpm:license>\
             <rpm:sourcerpm>{}-{}-{}.src.rpm</rpm:sourcerpm><rpm:header-range start=\"1\" end=\"2\"/>",
            esc(pkg.name), pkg.arch, esc(v), esc(r), i + 1, pkg.name, v, r, pkg.arch, pkg.name, v, r
        ));
        // rpm's automatic `Provides: NAME = EVR` is left out on purpose: the solver must
        // not rely on it.
        for (tag, prefix) in [
            ("provides", "P:"),
            ("requires", "R:"),
            ("conflicts", "C:"),
            ("obsoletes", "O:"),
            ("recommends", "Rec:"),
            ("supplements", "Sup:"),
        ] {
            let entries: Vec<String> = pkg
                .deps
                .iter()
                .filter_map(|d| d.strip_prefix(prefix))
                .map(entry)
                .collect();
            if !entries.is_empty() {
                x.push_str(&format!("<rpm:{tag}>{}</rpm:{tag}>", entries.concat()));
            }
        }
        for f in pkg.deps.iter().filter_map(|d| d.strip_prefix("F:")) {
            x.push_str(&format!("<file>{}</file>", esc(f.trim())));
        }
        x.push_str("</format></package>\n");
    }
    x.push_str("</metadata>\n");
    x
}

/// A filelists.xml giving `files` to the package at `pkg_index` of the same repository.
pub(crate) fn filelists_xml(pkgs: &[Pkg<'_>], files: &[(usize, &str)]) -> Vec<u8> {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"",
    );
    x.push_str(&format!("{}\">\n", pkgs.len()));
    for (i, pkg) in pkgs.iter().enumerate() {
        let (e, rest) = match pkg.evr.split_once(':') {
            Some((e, r)) => (e, r),
            None => ("0", pkg.evr),
        };
        let (v, r) = rest.rsplit_once('-').unwrap_or((rest, "1"));
        x.push_str(&format!(
            "<package pkgid=\"{:064x}\" name=\"{}\" arch=\"{}\"><version epoch=\"{e}\" ver=\"{}\" rel=\"{}\"/>",
            i + 1,
            esc(pkg.name),
            pkg.arch,
            esc(v),
            esc(r)
        ));
        for (_, f) in files.iter().filter(|(idx, _)| *idx == i) {
            x.push_str(&format!("<file>{}</file>", esc(f)));
        }
        x.push_str("</package>\n");
    }
    x.push_str("</filelists>\n");
    x.into_bytes()
}

pub(crate) fn repo(id: &str, pkgs: &[Pkg<'_>]) -> LoadedRepo {
    let index =
        RepoIndex::from_primary_xml(primary_xml(pkgs).as_bytes()).expect("test primary parses");
    LoadedRepo::in_memory(id, index, None)
}

pub(crate) fn request(packages: &[&str]) -> Request {
    Request {
        packages: packages.iter().map(|s| s.to_string()).collect(),
        exclude: Vec::new(),
        install_weak_deps: false,
        arch: "x86_64".to_owned(),
    }
}

/// The solution as `name-evr.arch@repo` strings, in solve order (sorted by name).
pub(crate) fn nevras(pool: &[PoolRepo<'_>], req: &Request) -> Result<Vec<String>, SolveError> {
    let selected = solve(pool, req)?;
    Ok(selected
        .iter()
        .map(|s| {
            let r = pool[s.repo].repo;
            let pkg = r.index.package(s.id);
            format!(
                "{}-{}.{}@{}",
                pkg.name(),
                crate::catalog::evr_string(pkg.evr()),
                pkg.arch(),
                r.id
            )
        })
        .collect())
}

/// Solve one repository for `packages`; panics with the error text on failure.
pub(crate) fn ok(pkgs: &[Pkg<'_>], packages: &[&str]) -> Vec<String> {
    let r = repo("r", pkgs);
    let pool = [PoolRepo::new(&r)];
    match nevras(&pool, &request(packages)) {
        Ok(v) => v
            .into_iter()
            .map(|s| s.trim_end_matches("@r").to_owned())
            .collect(),
        Err(e) => panic!("expected a solution, got: {e}"),
    }
}

/// Solve one repository for `packages`, expecting a failure; its Display text.
pub(crate) fn err(pkgs: &[Pkg<'_>], packages: &[&str]) -> String {
    let r = repo("r", pkgs);
    let pool = [PoolRepo::new(&r)];
    match nevras(&pool, &request(packages)) {
        Ok(v) => panic!("expected a failure, got {v:?}"),
        Err(e) => e.to_string(),
    }
}
