//! Test support: the RPM corpus the tests run on, found by one rule, and its manifest.
//!
//! The corpus (RPM repositories `base` and `updates` converted from Debian 12, a
//! metadata-only `scale` repository, the example specs) is, in this order:
//!
//! 1. the folder `$STRATA_CORPUS_DIR` names (scripts/test.sh sets it);
//! 2. `../shared/corpus` beside the workspace (CI's copy);
//! 3. `target/corpus/current` in the workspace, which `corpus/build.py` builds from Debian
//!    packages fetched with apt.
//!
//! Two corpora built on different days hold different versions (Debian point releases and
//! security updates move), so tests take the versions, file names and counts they expect
//! from the corpus's own `out/manifest.json` through [`manifest`], never from literals.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

/// The file every complete corpus has.
const MARKER: &str = "out/repos/base/repodata/repomd.xml";

/// The workspace root (the folder holding `Cargo.lock`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the corpus is, by the rule in the crate documentation; panics naming every place
/// it looked and how to build one when there is none.
pub fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let from_env = std::env::var_os("STRATA_CORPUS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = from_env {
            // An explicit choice is never silently replaced by another corpus.
            assert!(
                dir.join(MARKER).is_file(),
                "STRATA_CORPUS_DIR={} is not an RPM corpus (it has no {MARKER})\n\
                 hint: unset it to use ../shared/corpus or the built one, or build one with corpus/build.py",
                dir.display()
            );
            return canonical(&dir);
        }
        let candidates = [root.join("../shared/corpus"), root.join("target/corpus/current")];
        match candidates.iter().find(|d| d.join(MARKER).is_file()) {
            Some(dir) => canonical(dir),
            None => panic!(
                "the RPM corpus is missing: STRATA_CORPUS_DIR is not set, and neither {} nor {} holds {MARKER}\n\
                 hint: scripts/test.sh builds it when needed, or run corpus/build.py (about 10 minutes and \
                 400 MB the first time; see corpus/README.md)",
                candidates[0].display(),
                candidates[1].display()
            ),
        }
    })
    .clone()
}

fn canonical(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|e| panic!("cannot resolve the corpus path {}: {e}", dir.display()))
}

/// `out/repos/NAME` of the corpus (`base` or `updates`).
pub fn repo(name: &str) -> PathBuf {
    dir().join("out/repos").join(name)
}

/// One RPM of the corpus, as `out/manifest.json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Rpm {
    /// `base` or `updates`.
    pub repo: String,
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// `debian` (converted as it is) or `synthetic-update` (the bash rebuild: Release + `.1`,
    /// one added file).
    pub variant: String,
    pub sourcerpm: String,
    /// The RPM file, relative to the corpus's `out/`.
    pub rpm: String,
    pub rpm_sha256: String,
    /// rpm's `_binary_payload` (`w19.zstdio`, `w6.xzdio`, `w9.gzdio`).
    pub payload: String,
    pub debian_version: String,
}

impl Rpm {
    /// `VERSION-RELEASE`.
    pub fn vr(&self) -> String {
        format!("{}-{}", self.version, self.release)
    }

    /// `[EPOCH:]VERSION-RELEASE`, the epoch only when there is one (dnf's way of printing).
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) if e != 0 => format!("{e}:{}", self.vr()),
            _ => self.vr(),
        }
    }

    /// `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// The file name in the repository's `Packages/` (`NAME-VERSION-RELEASE.ARCH.rpm`).
    pub fn file_name(&self) -> &str {
        self.rpm.rsplit('/').next().unwrap_or(&self.rpm)
    }

    /// `Packages/FILE`, the location the repository metadata gives.
    pub fn location(&self) -> String {
        format!("Packages/{}", self.file_name())
    }

    /// The RPM file on disk.
    pub fn path(&self) -> PathBuf {
        dir().join("out").join(&self.rpm)
    }
}

/// The corpus's manifest: every RPM of `base` and `updates`.
#[derive(Debug)]
pub struct Manifest {
    pub rpms: Vec<Rpm>,
}

/// The manifest of [`dir`]'s corpus, read once.
pub fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let path = dir().join("out/manifest.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let rpms = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a corpus manifest: {e}", path.display()));
        Manifest { rpms }
    })
}

impl Manifest {
    /// How many RPMs `repo` holds.
    pub fn count(&self, repo: &str) -> usize {
        self.rpms.iter().filter(|r| r.repo == repo).count()
    }

    /// The package `name` in `repo` (the newest, when the repository has two builds: in
    /// `updates`, bash's synthetic rebuild beside a Debian update of bash).
    pub fn find(&self, repo: &str, name: &str) -> Option<&Rpm> {
        let mut found: Vec<&Rpm> = self.rpms.iter().filter(|r| r.repo == repo && r.name == name).collect();
        found.sort_by_key(|r| r.variant != "synthetic-update");
        found.first().copied()
    }

    /// [`Manifest::find`] that panics naming the corpus when the package is not there.
    #[track_caller]
    pub fn get(&self, repo: &str, name: &str) -> &Rpm {
        self.find(repo, name)
            .unwrap_or_else(|| panic!("the corpus at {} has no {name} in {repo}", dir().display()))
    }

    /// The build of `name` a resolver picks from `repos`: the corpus builder guarantees
    /// that every package in `updates` sorts newer than its `base` build, and that the
    /// synthetic bash sorts newer than the build it is made from, so this needs no version
    /// comparison (and shares none with the code under test).
    #[track_caller]
    pub fn newest(&self, name: &str, repos: &[&str]) -> &Rpm {
        ["updates", "base"]
            .into_iter()
            .filter(|r| repos.contains(r))
            .find_map(|r| self.find(r, name))
            .unwrap_or_else(|| panic!("the corpus at {} has no {name} in {repos:?}", dir().display()))
    }

    /// The Debian update of `name` in `updates`. Panics when the corpus has none: the
    /// tests of security updates need one (libssl3, the nginx packages), and every corpus
    /// built from Debian 12's archive has them.
    #[track_caller]
    pub fn updated_build(&self, name: &str) -> &Rpm {
        self.rpms
            .iter()
            .find(|r| r.repo == "updates" && r.name == name && r.variant == "debian")
            .unwrap_or_else(|| panic!("the corpus at {} has no Debian update of {name}, which this test needs", dir().display()))
    }
}
