//! Scriptlet by-products that differ on every run and carry no meaning in an image.
//!
//! `ldconfig` writes `/var/cache/ldconfig/aux-cache`, keyed by the inode numbers and
//! change times of the libraries it scanned: never the same twice, and only a speed-up for
//! the next ldconfig run, which rebuilds it. Leaving it out makes the same lock give the
//! same image digest; the same choice as Debian's reproducible-builds tooling and mkosi.

use std::path::Path;

const VOLATILE: [&str; 1] = ["var/cache/ldconfig/aux-cache"];

/// Removes volatile files from `root`; returns what was removed, for the build log.
pub fn remove_volatile(root: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for rel in VOLATILE {
        let p = root.join(rel);
        // Only a regular file inside the root: never follow a link planted by a package.
        match p.symlink_metadata() {
            Ok(m) if m.is_file() => {
                std::fs::remove_file(&p)?;
                removed.push(format!("/{rel}"));
            }
            _ => {}
        }
    }
    Ok(removed)
}
