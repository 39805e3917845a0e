//! A watched repository's state: the digest of its repomd.xml, one small request.

use sha2::{Digest, Sha256};
use strata_repo::{join_url, Fetcher};

/// The most a repomd.xml may be (real ones are a few kB).
const MAX_REPOMD: u64 = 4 << 20;

/// `sha256:` of `BASEURL/repodata/repomd.xml` as served now (the form the lock records).
pub fn repomd_digest(fetcher: &Fetcher, baseurl: &str) -> Result<String, String> {
    let url = join_url(baseurl, "repodata/repomd.xml");
    let bytes = fetcher.get_limited(baseurl, &url, MAX_REPOMD).map_err(|e| e.to_string())?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&bytes))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_of_the_repomd_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repodata")).unwrap();
        std::fs::write(dir.path().join("repodata/repomd.xml"), b"<repomd/>").unwrap();
        let d = super::repomd_digest(&strata_repo::Fetcher::new(), &dir.path().display().to_string()).unwrap();
        use sha2::Digest;
        assert_eq!(d, format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"<repomd/>"))));
        assert!(super::repomd_digest(&strata_repo::Fetcher::new(), "/nonexistent/repo").is_err());
    }
}
