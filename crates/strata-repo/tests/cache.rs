//! The metadata cache on local repos: warm loads, refusing bad files, leaving nothing
//! half-written behind.

mod common;

use common::*;
use sha2::Digest;
use std::path::Path;
use strata_repo::{LoadOptions, MetadataCache, RepoError, RepoSource};

fn source(repo: &Path) -> RepoSource {
    RepoSource { id: "base".into(), baseurls: vec![format!("file://{}", repo.display())], ..Default::default() }
}

#[test]
fn warm_load_needs_only_repomd() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let first = cache.load(&source(&repo), &LoadOptions::default()).unwrap();
    assert_eq!(first.index.len(), corpus_count("base"));
    assert_eq!(first.revision, Some(repomd_revision(&repo)));
    let repomd = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
    assert_eq!(first.repomd_checksum, format!("sha256:{}", hex::encode(sha2::Sha256::digest(&repomd))));

    // With primary gone but repomd.xml unchanged, the cached index must serve the load.
    std::fs::remove_file(data_file(&repo, "primary")).unwrap();
    let second = cache.load(&source(&repo), &LoadOptions { refresh: true }).unwrap();
    assert_eq!(second.index.len(), corpus_count("base"));
    assert_eq!(second.repomd_checksum, first.repomd_checksum);
    assert_eq!(second.baseurl, format!("file://{}", repo.display()));
    let files = tree(&tmp.path().join("cache"));
    assert!(files.iter().all(|f| f.starts_with("repos/base-")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(&format!("{}/primary.idx", &first.repomd_checksum[7..]))));
}

#[test]
fn changed_repomd_rebuilds_and_damaged_index_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let first = cache.load(&source(&repo), &LoadOptions::default()).unwrap();
    // Truncate the cached index: the next load notices and rebuilds from primary.xml.gz.
    let idx = tree(&tmp.path().join("cache")).into_iter().find(|f| f.ends_with("primary.idx")).unwrap();
    let idx = tmp.path().join("cache").join(idx);
    let bytes = std::fs::read(&idx).unwrap();
    std::fs::write(&idx, &bytes[..bytes.len() / 2]).unwrap();
    let again = cache.load(&source(&repo), &LoadOptions::default()).unwrap();
    assert_eq!(again.index.len(), corpus_count("base"));
    assert_eq!(std::fs::read(&idx).unwrap(), bytes);
    // Another repomd.xml (here: another revision) is another cache generation.
    let text = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    let (old, new) = (repomd_revision(&repo), format!("{}1", repomd_revision(&repo)));
    std::fs::write(repo.join("repodata/repomd.xml"), text.replace(&format!("{old}</revision>"), &format!("{new}</revision>"))).unwrap();
    let third = cache.load(&source(&repo), &LoadOptions::default()).unwrap();
    assert_ne!(third.repomd_checksum, first.repomd_checksum);
    assert_eq!(third.revision, Some(new));
}

#[test]
fn corrupted_primary_is_refused_and_nothing_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let primary = data_file(&repo, "primary");
    let mut bytes = std::fs::read(&primary).unwrap();
    bytes[1000] ^= 0x55; // same size, other content
    std::fs::write(&primary, &bytes).unwrap();
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let err = cache.load(&source(&repo), &LoadOptions::default()).unwrap_err();
    match &err {
        RepoError::ChecksumMismatch { repo: r, file, expected, actual, .. } => {
            assert_eq!(r, "base");
            assert!(file.ends_with("-primary.xml.gz"), "{file}");
            assert_ne!(expected, actual);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("primary.xml.gz"), "{err}");
    assert!(tree(&tmp.path().join("cache")).iter().all(|f| !f.ends_with(".idx")), "an index was cached");
}

/// Replaces `kind`'s file with `bytes` and makes repomd.xml vouch for it, as a broken
/// createrepo run would.
fn publish(repo: &Path, kind: &str, bytes: &[u8]) {
    let path = data_file(repo, kind);
    let old = std::fs::read(&path).unwrap();
    let (old_sum, new_sum) = (hex::encode(sha2::Sha256::digest(&old)), hex::encode(sha2::Sha256::digest(bytes)));
    std::fs::write(&path, bytes).unwrap();
    let md = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    let md = md
        .replace(&format!(">{old_sum}</checksum>"), &format!(">{new_sum}</checksum>"))
        .replace(&format!("<size>{}</size>", old.len()), &format!("<size>{}</size>", bytes.len()));
    std::fs::write(repo.join("repodata/repomd.xml"), md).unwrap();
}

#[test]
fn truncated_gzip_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let gz = std::fs::read(data_file(&repo, "primary")).unwrap();
    publish(&repo, "primary", &gz[..gz.len() / 2]);
    let cache = MetadataCache::new(tmp.path().join("cache"));
    let err = cache.load(&source(&repo), &LoadOptions::default()).unwrap_err();
    assert!(matches!(&err, RepoError::Corrupt { repo, file, .. } if repo == "base" && file.ends_with("primary.xml.gz")), "{err:?}");
    assert!(tree(&tmp.path().join("cache")).iter().all(|f| !f.ends_with(".idx")));
}

#[test]
fn size_mismatch_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let primary = data_file(&repo, "primary");
    let mut bytes = std::fs::read(&primary).unwrap();
    let declared = bytes.len();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(&primary, &bytes).unwrap();
    let err = MetadataCache::new(tmp.path().join("cache")).load(&source(&repo), &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains(&format!("repomd.xml says {declared}")), "{err}");
}

#[test]
fn corrupt_filelists_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let fl = data_file(&repo, "filelists");
    let mut bytes = std::fs::read(&fl).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&fl, &bytes).unwrap();
    let loaded = MetadataCache::new(tmp.path().join("cache")).load(&source(&repo), &LoadOptions::default()).unwrap();
    for _ in 0..2 {
        let err = loaded.file_owners_full("/usr/share/doc/bash/copyright").unwrap_err();
        assert!(matches!(&err, RepoError::ChecksumMismatch { file, .. } if file.ends_with("filelists.xml.gz")), "{err:?}");
    }
    assert!(tree(&tmp.path().join("cache")).iter().all(|f| !f.ends_with("filelists.idx")));
}

#[test]
fn missing_repo_names_repo_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let src = RepoSource { id: "gone".into(), baseurls: vec!["/nonexistent/strata-repo".into()], ..Default::default() };
    let err = MetadataCache::new(tmp.path().into()).load(&src, &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RepoError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("`gone`") && msg.contains("/nonexistent/strata-repo/repodata/repomd.xml"), "{msg}");
    let none = RepoSource { id: "empty".into(), ..Default::default() };
    let err = MetadataCache::new(tmp.path().into()).load(&none, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, RepoError::NoMetadata { .. }), "{err}");
}

#[test]
fn concurrent_loads_share_one_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = copy_repodata("base", tmp.path());
    let root = tmp.path().join("cache");
    let lens: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (root, src) = (root.clone(), source(&repo));
                s.spawn(move || MetadataCache::new(root).load(&src, &LoadOptions::default()).unwrap().index.len())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(lens, [corpus_count("base"); 4]);
    let files = tree(&root);
    assert_eq!(files.iter().filter(|f| f.ends_with("primary.idx")).count(), 1, "{files:?}");
    assert_eq!(files.iter().filter(|f| f.ends_with("primary.cold")).count(), 1, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".idx") || f.ends_with(".cold")), "temporary files left: {files:?}");
}
