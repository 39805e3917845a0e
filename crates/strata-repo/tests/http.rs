//! Loading over HTTP from a loopback server: retries, unreachable mirrors, mirrorlists,
//! metalinks and metadata_expire.

mod common;

use common::*;
use sha2::Digest;
use std::time::Duration;
use strata_repo::{LoadOptions, MetadataCache, RepoError, RepoSource};

fn served_base() -> (tempfile::TempDir, FileServer) {
    let tmp = tempfile::tempdir().unwrap();
    copy_repodata("base", tmp.path());
    let server = FileServer::start(tmp.path());
    (tmp, server)
}

fn http_source(server: &FileServer) -> RepoSource {
    RepoSource { id: "base".into(), baseurls: vec![format!("{}/base/", server.url)], ..Default::default() }
}

#[test]
fn loads_and_retries_a_server_error() {
    let (tmp, server) = served_base();
    let primary = format!("/base/repodata/{}", data_file(&tmp.path().join("base"), "primary").file_name().unwrap().to_str().unwrap());
    server.fail(&primary, 1);
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let repo = cache.load(&http_source(&server), &LoadOptions::default()).unwrap();
    assert_eq!(repo.index.len(), corpus_count("base"));
    assert_eq!(server.hits(&primary), 2, "one 500, then the retry");
    assert_eq!(repo.baseurl, format!("{}/base/", server.url));
    let bash = repo.index.ids_by_name("bash").next().unwrap();
    assert_eq!(repo.package_url(bash), format!("{}/base/{}", server.url, strata_corpus::manifest().get("base", "bash").location()));

    // Filelists come over HTTP too, on demand.
    let owners = repo.file_owners_full("/usr/share/doc/bash/copyright").unwrap();
    assert_eq!(owners, [bash]);
}

#[test]
fn unexpired_repomd_costs_no_request_and_refresh_fetches_only_repomd() {
    let (tmp, server) = served_base();
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let src = http_source(&server);
    let first = cache.load(&src, &LoadOptions::default()).unwrap();
    let hits = server.total_hits();
    assert_eq!(hits, 2, "repomd.xml and primary");

    let warm = cache.load(&src, &LoadOptions::default()).unwrap();
    assert_eq!(server.total_hits(), hits, "a fresh cached repomd.xml needs no network");
    assert_eq!(warm.repomd_checksum, first.repomd_checksum);
    assert_eq!(warm.baseurl, first.baseurl);

    let refreshed = cache.load(&src, &LoadOptions { refresh: true }).unwrap();
    assert_eq!(server.total_hits(), hits + 1, "refresh re-reads repomd.xml and nothing else");
    assert_eq!(refreshed.index.len(), corpus_count("base"));

    let expired = RepoSource { metadata_expire: Some(Duration::ZERO), ..src };
    cache.load(&expired, &LoadOptions::default()).unwrap();
    assert_eq!(server.hits("/base/repodata/repomd.xml"), 3);
}

#[test]
fn unreachable_names_repo_and_url() {
    let tmp = tempfile::tempdir().unwrap();
    let url = dead_url();
    let src = RepoSource { id: "remote".into(), baseurls: vec![url.clone()], ..Default::default() };
    let err = MetadataCache::new(tmp.path().into()).load(&src, &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RepoError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("`remote`") && msg.contains(&format!("{url}/repodata/repomd.xml")), "{msg}");
}

#[test]
fn not_found_is_not_retried() {
    let (tmp, server) = served_base();
    let src = RepoSource { id: "x".into(), baseurls: vec![format!("{}/nothing-here", server.url)], ..Default::default() };
    let err = MetadataCache::new(tmp.path().join("cache")).load(&src, &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(server.hits("/nothing-here/repodata/repomd.xml"), 1);
}

#[test]
fn mirrorlist_tries_mirrors_in_order() {
    let (tmp, server) = served_base();
    let list = format!("# mirrors of base\n{}\n\n{}/base/   # the good one\n", dead_url(), server.url);
    std::fs::write(tmp.path().join("mirrorlist"), list).unwrap();
    let src = RepoSource {
        id: "base".into(),
        mirrorlist: Some(format!("{}/mirrorlist", server.url)),
        ..Default::default()
    };
    let repo = MetadataCache::new(tmp.path().join("cache")).load(&src, &LoadOptions::default()).unwrap();
    assert_eq!(repo.baseurl, format!("{}/base/", server.url));
    assert_eq!(repo.index.len(), corpus_count("base"));
}

fn metalink(server: &FileServer, repomd: &[u8], sha256: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/">
 <files>
  <file name="repomd.xml">
   <size>{}</size>
   <verification><hash type="sha256">{sha256}</hash></verification>
   <resources>
    <url protocol="http" type="http" preference="50">{dead}/repodata/repomd.xml</url>
    <url protocol="http" type="http" preference="100">{url}/base/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>"#,
        repomd.len(),
        dead = dead_url(),
        url = server.url,
    )
}

#[test]
fn metalink_picks_preferred_mirror_and_verifies_repomd() {
    let (tmp, server) = served_base();
    let repomd = std::fs::read(tmp.path().join("base/repodata/repomd.xml")).unwrap();
    let good = hex::encode(sha2::Sha256::digest(&repomd));
    std::fs::write(tmp.path().join("metalink.xml"), metalink(&server, &repomd, &good)).unwrap();
    let src = RepoSource {
        id: "base".into(),
        metalink: Some(format!("{}/metalink.xml", server.url)),
        ..Default::default()
    };
    let repo = MetadataCache::new(tmp.path().join("cache")).load(&src, &LoadOptions::default()).unwrap();
    assert_eq!(repo.baseurl, format!("{}/base/", server.url));
    assert_eq!(repo.repomd_checksum, format!("sha256:{good}"));

    // A repomd.xml the metalink does not vouch for is refused (a stale or hostile mirror).
    let bad = "0".repeat(64);
    std::fs::write(tmp.path().join("metalink.xml"), metalink(&server, &repomd, &bad)).unwrap();
    let err = MetadataCache::new(tmp.path().join("cache2")).load(&src, &LoadOptions::default()).unwrap_err();
    assert!(matches!(&err, RepoError::ChecksumMismatch { file, .. } if file.ends_with("repomd.xml")), "{err:?}");
}
