//! The lock file (`strata.lock`): for every image the exact, checksummed package set a
//! resolve chose, and for every repository the repomd.xml it was chosen from.
//!
//! This crate owns the file format (stable key order, packages sorted, pretty JSON so diffs
//! read well), atomic writing, comparing two locks in words (`--locked`, `--check`), and
//! producing a lock from a spec (loading repos, solving each image).

mod diff;
mod layers;
mod resolve;

pub use diff::{diff, Difference};
pub use layers::{layer_settings, pull_cost, updated, PlanProblem};
pub use resolve::{locked_package, resolve_spec, source_of, ResolveError, ResolveOptions, ResolveStep};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_spec::{ImageSpec, RepoEntry};

/// The lock format version this build reads and writes.
pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub version: u32,
    pub images: BTreeMap<String, LockedImage>,
    pub repos: BTreeMap<String, LockedRepo>,
    /// Which packages go into which layer, for all images together (`strata-layers`).
    /// Recorded so that the next resolve keeps layers stable; absent in locks written
    /// before layering existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<strata_layers::Plan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedImage {
    /// Digest of what the spec asked for this image (see [`inputs_digest`]): a lock whose
    /// inputs differ from the spec's is stale without resolving anything.
    pub inputs: String,
    pub arch: String,
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRepo {
    pub repomd_checksum: String,
    pub baseurl: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub epoch: u32,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub repo: String,
    pub location: String,
    pub checksum: Checksum,
    pub size: u64,
    pub installed_size: u64,
    pub sourcerpm: String,
    /// The package's build time (seconds since the epoch) from the repository's metadata;
    /// the layer planner reads how recently a source changed from it. 0 (and absent, in
    /// locks from before it was recorded) when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub buildtime: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checksum {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl LockedImage {
    /// `sha256:` over what the image is made of — its inputs digest, arch and every
    /// package's checksum — so equal digests mean an equal package set from equal inputs
    /// (the build service's "is this image's content changing?").
    pub fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.inputs.as_bytes());
        h.update(b"\0");
        h.update(self.arch.as_bytes());
        let mut sums: Vec<String> = self.packages.iter().map(|p| format!("{}:{}", p.checksum.kind, p.checksum.value)).collect();
        sums.sort();
        for s in sums {
            h.update(b"\0");
            h.update(s.as_bytes());
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

impl LockedPackage {
    /// `name-[epoch:]version-release.arch`, epoch shown only when non-zero (rpm's habit).
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lock file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("lock file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write lock file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl Lockfile {
    pub fn new() -> Lockfile {
        Lockfile { version: LOCK_VERSION, images: BTreeMap::new(), repos: BTreeMap::new(), layers: None }
    }

    pub fn read(path: &Path) -> Result<Lockfile, LockError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| LockError::Read { path: path.into(), source })?;
        let lock: Lockfile = serde_json::from_str(&text)
            .map_err(|e| LockError::Invalid { path: path.into(), message: e.to_string() })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Invalid {
                path: path.into(),
                message: format!(
                    "format version {} (this strata reads version {LOCK_VERSION}); re-run `strata resolve`",
                    lock.version
                ),
            });
        }
        Ok(lock)
    }

    /// Canonical text: pretty JSON, maps sorted, packages sorted, trailing newline.
    pub fn to_json(&self) -> String {
        let mut sorted = self.clone();
        for image in sorted.images.values_mut() {
            image.packages.sort();
        }
        let mut s = serde_json::to_string_pretty(&sorted).expect("lock serialises");
        s.push('\n');
        s
    }

    /// Writes atomically: a reader sees the old lock or the new one, never half of one. A
    /// lock that already says exactly this is left alone (a no-op run writes nothing). The
    /// path follows strata-output's rule: `--lock /dev/stdout` or a FIFO is written through,
    /// a directory or device refused, a symlink followed and kept.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let text = self.to_json();
        // Compared only when it is a regular file: reading a FIFO would wait for a writer.
        if path.is_file() && std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
            return Ok(());
        }
        strata_output::write(path, text.as_bytes()).map_err(|source| LockError::Write { path: path.into(), source })
    }

    /// Merges `other`'s images and the repos they use into `self`, replacing same-named
    /// images, and drops repos no image refers to any more.
    pub fn merge(&mut self, other: Lockfile) {
        self.images.extend(other.images);
        self.repos.extend(other.repos);
        self.prune_repos();
    }

    /// Drops repos that no image's packages come from.
    pub fn prune_repos(&mut self) {
        let used: std::collections::BTreeSet<&str> = self
            .images
            .values()
            .flat_map(|i| i.packages.iter().map(|p| p.repo.as_str()))
            .collect();
        self.repos.retain(|id, _| used.contains(id.as_str()));
    }
}

impl Default for Lockfile {
    fn default() -> Self {
        Lockfile::new()
    }
}

/// Digest over what decides an image's package set: its resolve options and the enabled
/// repositories (ids, locations, priorities, costs, excludes). Config-only keys such as `cmd`
/// are deliberately left out: changing them does not change the lock.
/// Where a spec's lock lives unless told otherwise: `NAME.lock` beside `NAME.json`
/// (`strata.lock` for `strata.json`), so two specs in one folder (`images.json` and
/// `images-updates.json`) never overwrite each other's lock.
pub fn default_lock_path(spec: &std::path::Path) -> std::path::PathBuf {
    spec.with_extension("lock")
}

pub fn inputs_digest(image: &ImageSpec, arch: &str, repos: &[RepoEntry]) -> String {
    #[derive(Serialize)]
    struct Inputs<'a> {
        packages: &'a [String],
        exclude: &'a [String],
        install_weak_deps: bool,
        arch: &'a str,
        repos: Vec<RepoInputs<'a>>,
    }
    #[derive(Serialize)]
    struct RepoInputs<'a> {
        id: &'a str,
        baseurl: &'a [String],
        mirrorlist: Option<&'a str>,
        metalink: Option<&'a str>,
        priority: i32,
        cost: i32,
        exclude: &'a [String],
    }
    let inputs = Inputs {
        packages: &image.packages,
        exclude: &image.exclude,
        install_weak_deps: image.install_weak_deps,
        arch,
        repos: repos
            .iter()
            .map(|r| RepoInputs {
                id: &r.id,
                baseurl: &r.baseurl,
                mirrorlist: r.mirrorlist.as_deref(),
                metalink: r.metalink.as_deref(),
                priority: r.priority(),
                cost: r.cost(),
                exclude: &r.exclude,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&inputs).expect("inputs serialise");
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pkg(name: &str, version: &str, repo: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            epoch: 0,
            version: version.into(),
            release: "1".into(),
            arch: "x86_64".into(),
            repo: repo.into(),
            location: format!("Packages/{name}-{version}-1.x86_64.rpm"),
            checksum: Checksum { kind: "sha256".into(), value: "ab".repeat(32) },
            size: 10,
            installed_size: 20,
            sourcerpm: format!("{name}-{version}-1.src.rpm"),
            buildtime: 0,
        }
    }

    pub(crate) fn lock(images: &[(&str, Vec<LockedPackage>)]) -> Lockfile {
        let mut l = Lockfile::new();
        for (name, pkgs) in images {
            l.images.insert(
                name.to_string(),
                LockedImage { inputs: "sha256:00".into(), arch: "x86_64".into(), packages: pkgs.clone() },
            );
        }
        l.repos.insert("base".into(), LockedRepo { repomd_checksum: "sha256:aa".into(), baseurl: "/r".into() });
        l
    }

    #[test]
    fn text_is_sorted_and_round_trips() {
        let l = lock(&[("web", vec![pkg("zlib", "1", "base"), pkg("bash", "5", "base")])]);
        let text = l.to_json();
        assert!(text.find("\"bash\"").unwrap() < text.find("\"zlib\"").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.lock");
        l.write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let back = Lockfile::read(&path).unwrap();
        assert_eq!(back.to_json(), text);
        // Only the lock itself is left behind: the temp file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn json_shape_scripts_rely_on() {
        let l = lock(&[("web", vec![pkg("bash", "5", "base")])]);
        let v: serde_json::Value = serde_json::from_str(&l.to_json()).unwrap();
        let p = &v["images"]["web"]["packages"][0];
        for key in ["name", "epoch", "version", "release", "arch", "repo", "location", "size", "installed_size", "sourcerpm"] {
            assert!(!p[key].is_null(), "missing {key}");
        }
        assert!(p["epoch"].is_u64());
        assert_eq!(p["checksum"]["type"], "sha256");
        assert_eq!(v["repos"]["base"]["repomd_checksum"], "sha256:aa");
    }

    #[test]
    fn other_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.lock");
        std::fs::write(&path, r#"{"version": 9, "images": {}, "repos": {}}"#).unwrap();
        let e = Lockfile::read(&path).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
    }

    #[test]
    fn inputs_digest_tracks_resolve_inputs_only() {
        let spec = |j: &str| serde_json::from_str::<ImageSpec>(j).unwrap();
        let repos = vec![RepoEntry { id: "base".into(), baseurl: vec!["/r".into()], ..Default::default() }];
        let a = inputs_digest(&spec(r#"{"packages": ["bash"]}"#), "x86_64", &repos);
        let b = inputs_digest(&spec(r#"{"packages": ["bash"], "cmd": ["/bin/bash"]}"#), "x86_64", &repos);
        let c = inputs_digest(&spec(r#"{"packages": ["bash", "curl"]}"#), "x86_64", &repos);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut repos2 = repos.clone();
        repos2[0].priority = Some(5);
        assert_ne!(a, inputs_digest(&spec(r#"{"packages": ["bash"]}"#), "x86_64", &repos2));
    }
}
