//! What a composed image's record needs from its spec and lock: the content digest the
//! rebuild planner compares, the repositories the service watches for it, and the check
//! that the image's own rpmdb holds exactly the lock's packages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use strata_client::ImageRepo;
use strata_lock::{LockedImage, Lockfile};
use strata_spec::Spec;

/// Per image of the lock: (content digest, repositories to watch).
pub type Facts = BTreeMap<String, (String, Vec<ImageRepo>)>;

/// The facts of every image in the lock beside `spec`. Repositories whose base URL lies
/// inside the checkout (`checkout`) change only with a commit, so they are not watched;
/// nor are mirrorlist/metalink repositories without a base URL.
pub fn facts(spec_path: &Path, lock: &Lockfile, checkout: &Path) -> Result<Facts, String> {
    let spec = Spec::load(spec_path).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let base = spec_path.parent().unwrap_or(Path::new("."));
    let mut repos = Vec::new();
    for entry in spec.repos.iter().flatten() {
        if entry.enabled == Some(false) {
            continue;
        }
        let locked = lock.repos.get(&entry.id);
        let Some(url) = locked.map(|l| l.baseurl.clone()).or_else(|| entry.baseurl.first().map(|u| absolute(base, u))) else { continue };
        let local = url.strip_prefix("file://").unwrap_or(&url);
        if local.starts_with('/') && Path::new(local).starts_with(checkout) {
            continue;
        }
        // A repository no package came from is not in the lock: its state is read now,
        // so the service can tell later whether the image was built against the state it
        // knows (a digest read a moment after the resolve can only be newer, which the
        // next refresh then checks).
        let repomd = match locked {
            Some(l) => l.repomd_checksum.clone(),
            None => strata_rebuild::repomd_digest(&strata_repo::Fetcher::new(), &url).unwrap_or_default(),
        };
        repos.push(ImageRepo {
            url,
            repomd,
            metadata_expire_seconds: entry.metadata_expire.map(|e| e.max_age().map_or(-1, |d| d.as_secs() as i64)),
        });
    }
    Ok(lock.images.iter().map(|(name, img)| (name.clone(), (img.content_digest(), repos.clone()))).collect())
}

fn absolute(base: &Path, url: &str) -> String {
    if url.contains("://") || url.starts_with('/') {
        url.to_string()
    } else {
        base.join(url).display().to_string()
    }
}

/// rpm prints an epoch of 0 or none alike; compare without it.
fn normal(nevra: &str) -> String {
    nevra.replacen("-0:", "-", 1)
}

/// Whether the rpmdb's packages (`installed`, NEVRA) are exactly the lock's; the
/// difference, in words, when not. gpg-pubkey entries are keys, not packages.
pub fn verify(locked: &LockedImage, installed: &[String]) -> Result<(), String> {
    let want: BTreeSet<String> = locked.packages.iter().map(|p| normal(&p.nevra())).collect();
    let have: BTreeSet<String> = installed.iter().filter(|n| !n.starts_with("gpg-pubkey-")).map(|n| normal(n)).collect();
    if want == have {
        return Ok(());
    }
    let missing: Vec<&String> = want.difference(&have).collect();
    let extra: Vec<&String> = have.difference(&want).collect();
    let list = |v: &[&String]| v.iter().take(20).map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Err(format!(
        "the image's rpmdb does not hold the lock's packages: {} missing ({}), {} not in the lock ({})",
        missing.len(),
        list(&missing),
        extra.len(),
        list(&extra)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_lock::{Checksum, LockedPackage};

    fn pkg(name: &str, epoch: u32, v: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            epoch,
            version: v.into(),
            release: "1".into(),
            arch: "x86_64".into(),
            repo: "base".into(),
            location: String::new(),
            checksum: Checksum { kind: "sha256".into(), value: name.into() },
            size: 0,
            installed_size: 0,
            sourcerpm: String::new(),
            buildtime: 0,
        }
    }

    #[test]
    fn the_rpmdb_must_hold_exactly_the_lock() {
        let lock = LockedImage { inputs: "i".into(), arch: "x86_64".into(), packages: vec![pkg("bash", 0, "5.2"), pkg("tzdata", 1, "2024a")] };
        let ok = ["bash-0:5.2-1.x86_64".to_string(), "tzdata-1:2024a-1.x86_64".into(), "gpg-pubkey-abcd-1234".into()];
        assert_eq!(verify(&lock, &ok), Ok(()));
        let old = ["bash-5.1-1.x86_64".to_string(), "tzdata-1:2024a-1.x86_64".into()];
        let e = verify(&lock, &old).unwrap_err();
        assert!(e.contains("1 missing (bash-5.2-1.x86_64)") && e.contains("1 not in the lock (bash-5.1-1.x86_64)"), "{e}");
    }
}
