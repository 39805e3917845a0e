//! The index built from the real corpus repos: field values, lookups, the on-disk round
//! trip and filelists loaded on demand.

mod common;

use common::*;
use std::fmt::Write as _;
use std::io::Read;
use strata_repo::{LoadOptions, LoadedRepo, MetadataCache, RepoIndex, RepoSource};

fn base_index() -> RepoIndex {
    let gz = std::fs::read(data_file(&corpus_repo("base"), "primary")).unwrap();
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut xml).unwrap();
    RepoIndex::from_primary_xml(&xml[..]).unwrap()
}

/// Every accessor of every package, as text, so two indexes can be compared whole.
fn dump(idx: &RepoIndex) -> String {
    let mut out = String::new();
    for id in 0..idx.len() as u32 {
        let p = idx.package(id);
        let evr = p.evr();
        writeln!(
            out,
            "{id} {} {} {:?}:{}-{:?} {} {:?} {:?} {}/{} {} {} {} {:?}",
            p.name(),
            p.arch(),
            evr.epoch,
            evr.version,
            evr.release,
            p.location(),
            p.location_base(),
            p.checksum(),
            p.size_package(),
            p.size_installed(),
            p.sourcerpm(),
            p.buildtime(),
            p.summary(),
            p.id()
        )
        .unwrap();
        let kinds: [(&str, Vec<_>); 8] = [
            ("P", p.provides().collect()),
            ("R", p.requires().collect()),
            ("C", p.conflicts().collect()),
            ("O", p.obsoletes().collect()),
            ("Rec", p.recommends().collect()),
            ("Sug", p.suggests().collect()),
            ("Sup", p.supplements().collect()),
            ("E", p.enhances().collect()),
        ];
        for (k, deps) in kinds {
            for d in deps {
                writeln!(out, "  {k} {d:?}").unwrap();
            }
        }
        for f in p.files() {
            writeln!(out, "  F {f}").unwrap();
        }
    }
    for n in idx.names() {
        writeln!(out, "N {n} {:?}", idx.ids_by_name(n).collect::<Vec<_>>()).unwrap();
    }
    out
}

#[test]
fn base_repo_fields() {
    let idx = base_index();
    assert_eq!(idx.len(), corpus_count("base"));
    let bash: Vec<u32> = idx.ids_by_name("bash").collect();
    assert_eq!(bash.len(), 1);
    let bash = idx.package(bash[0]);
    let want = strata_corpus::manifest().get("base", "bash");
    assert_eq!(
        (bash.evr().epoch, bash.evr().version, bash.evr().release),
        (Some(want.epoch.unwrap_or(0)), want.version.as_str(), Some(want.release.as_str()))
    );
    assert_eq!(bash.arch(), "x86_64");
    assert_eq!(bash.summary(), "GNU Bourne Again SHell");
    assert_eq!(bash.location(), want.location());
    assert_eq!(bash.checksum(), ("sha256", want.rpm_sha256.as_str()));
    assert_eq!(bash.sourcerpm(), want.sourcerpm);
    assert!(bash.files().any(|f| f == "/bin/bash"));

    let libc6 = idx.package(idx.ids_by_name("libc6").next().unwrap());
    assert!(libc6.provides().any(|d| d.name == "libc.so.6()(64bit)" && d.op.is_none()));
    let providers: Vec<&str> = idx.whatprovides("libc.so.6()(64bit)").map(|(id, _)| idx.package(id).name()).collect();
    assert_eq!(providers, ["libc6"]);

    // Pre-Depends become Requires(pre).
    let pre = (0..idx.len() as u32).flat_map(|i| idx.package(i).requires()).filter(|d| d.pre).count();
    assert!(pre > 0);
    assert!(bash.requires().any(|d| d.pre), "bash has Pre-Depends in Debian");
    // Rich dependencies are kept verbatim.
    let rich: Vec<&str> = (0..idx.len() as u32)
        .filter(|i| idx.package(*i).requires().any(|d| d.name == "(media-types or mime-support)"))
        .map(|i| idx.package(i).name())
        .collect();
    assert!(!rich.is_empty());

    // The names table is sorted and distinct, and every package is reachable by name.
    let names: Vec<&str> = idx.names().collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(names.iter().map(|n| idx.ids_by_name(n).count()).sum::<usize>(), corpus_count("base"));
    assert_eq!(idx.file_owners("/bin/bash").map(|i| idx.package(i).name()).collect::<Vec<_>>(), ["bash"]);
    // Not in primary's subset: only filelists knows it.
    assert_eq!(idx.file_owners("/usr/share/doc/bash/copyright").count(), 0);
}

#[test]
fn write_then_open_is_identical() {
    let idx = base_index();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("primary.idx");
    idx.write(&path).unwrap();
    let back = RepoIndex::open(&path).unwrap();
    assert_eq!(dump(&idx), dump(&back));
    // Same input, same bytes: the index is deterministic.
    let path2 = dir.path().join("again.idx");
    base_index().write(&path2).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&path2).unwrap());
    // Lookups agree too.
    for cap in ["libc.so.6()(64bit)", "awk", "perl", "/bin/sh", "nope"] {
        let a: Vec<String> = idx.whatprovides(cap).map(|(i, d)| format!("{i} {d}")).collect();
        let b: Vec<String> = back.whatprovides(cap).map(|(i, d)| format!("{i} {d}")).collect();
        assert_eq!(a, b, "{cap}");
    }
}

#[test]
fn in_memory_filelists_answer_paths_beyond_primary() {
    let idx = base_index();
    let gz = std::fs::read(data_file(&corpus_repo("base"), "filelists")).unwrap();
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut xml).unwrap();
    let repo = LoadedRepo::in_memory("base", idx, Some(xml));
    let owners = repo.file_owners_full("/usr/share/doc/bash/copyright").unwrap();
    assert_eq!(owners.iter().map(|i| repo.index.package(*i).name()).collect::<Vec<_>>(), ["bash"]);
    assert!(repo.file_owners_full("/usr/share/doc/no-such-package/x").unwrap().is_empty());
    let without = LoadedRepo::in_memory("base", base_index(), None);
    assert!(without.file_owners_full("/usr/share/doc/bash/copyright").unwrap().is_empty());
}

#[test]
fn primary_file_rule() {
    assert!(LoadedRepo::primary_covers("/usr/bin/perl"));
    assert!(LoadedRepo::primary_covers("/sbin/ldconfig"));
    assert!(LoadedRepo::primary_covers("/etc/passwd"));
    assert!(LoadedRepo::primary_covers("/usr/lib/sendmail"));
    assert!(!LoadedRepo::primary_covers("/usr/share/doc/bash/copyright"));
    assert!(!LoadedRepo::primary_covers("/etcetera/x"));
}

#[test]
fn filelists_load_lazily_and_are_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let src = RepoSource { id: "base".into(), baseurls: vec![repo.display().to_string()], ..Default::default() };
    let loaded = cache.load(&src, &LoadOptions::default()).unwrap();
    let idx_files = || tree(&tmp.path().join("cache")).into_iter().filter(|f| f.ends_with(".idx")).collect::<Vec<_>>();
    assert_eq!(idx_files().len(), 1, "only primary before a file question: {:?}", idx_files());
    let owners = loaded.file_owners_full("/usr/share/doc/bash/copyright").unwrap();
    assert_eq!(owners.iter().map(|i| loaded.index.package(*i).name()).collect::<Vec<_>>(), ["bash"]);
    assert!(idx_files().iter().any(|f| f.ends_with("filelists.idx")));

    // A later run answers from the cached file index without the XML.
    std::fs::remove_file(data_file(&repo, "filelists")).unwrap();
    let again = cache.load(&src, &LoadOptions::default()).unwrap();
    assert_eq!(again.file_owners_full("/usr/share/doc/bash/copyright").unwrap(), owners);
    assert_eq!(again.package_url(owners[0]), format!("{}/{}", repo.display(), strata_corpus::manifest().get("base", "bash").location()));
}

#[test]
fn loaded_repo_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<LoadedRepo>();
    check::<RepoIndex>();
    check::<MetadataCache>();
}
