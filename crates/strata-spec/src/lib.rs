//! The strata spec: the JSON file in which a user names repositories and images.
//!
//! This crate owns reading and validating that file (unknown keys are errors that name the
//! key), reading dnf `.repo` files for repositories given by id only, dnf variable
//! substitution (`$basearch`, `$arch`, `$releasever`), `--enablerepo`/`--disablerepo`, and
//! turning relative base URLs into absolute ones (relative to the spec's folder). What the
//! spec *means* downstream (resolving, composing) lives in other crates.

mod image;
mod layering;
mod repo;
mod repofile;
mod vars;

pub use image::{Command, ImageSpec, Port, Protocol, ScriptletPolicy};
pub use layering::{Bandwidth, Compression, LayerMode, Layering, PerLayer, PullProfile};
pub use repo::{Expire, RepoEntry};
pub use repofile::{read_reposdir, RepoFileError};
pub use vars::{substitute, Vars};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A spec as read from disk, before variable substitution and repo selection.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file the spec was read from.
    pub path: PathBuf,
    /// `None` when the spec has no `repos` key: every enabled repo of the reposdir is used,
    /// as dnf does.
    pub repos: Option<Vec<RepoEntry>>,
    pub images: BTreeMap<String, ImageSpec>,
    /// How images are split into layers (all images together).
    pub layers: Layering,
    /// Layer compression; `None` leaves it to the command line (gzip by default).
    pub compression: Option<Compression>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    repos: Option<Vec<RepoEntry>>,
    images: BTreeMap<String, ImageSpec>,
    #[serde(default)]
    layers: Layering,
    #[serde(default)]
    compression: Option<Compression>,
}

/// Everything that can be wrong with a spec; each message names the file and the culprit.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read spec {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("spec {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("spec {path}: repo `{id}` has no baseurl, mirrorlist or metalink and no .repo file in {reposdir} defines it")]
    UnknownRepo { path: PathBuf, id: String, reposdir: PathBuf },
    #[error("spec {path}: {source}")]
    RepoFile { path: PathBuf, source: RepoFileError },
    #[error("spec {path}: repo `{repo}`: {message}")]
    Variable { path: PathBuf, repo: String, message: String },
    #[error("spec {path}: no image named `{name}` (the spec has: {known})")]
    UnknownImage { path: PathBuf, name: String, known: String },
    #[error("spec {path}: no repository is enabled")]
    NoRepos { path: PathBuf },
}

impl Spec {
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// Parses spec text; `path` is used for messages and to anchor relative base URLs.
    pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecError> {
        let raw: RawSpec = serde_json::from_str(text)
            .map_err(|e| SpecError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        let invalid = |message: String| SpecError::Invalid { path: path.to_path_buf(), message };
        if raw.images.is_empty() {
            return Err(invalid("`images` is empty: name at least one image".into()));
        }
        for (name, image) in &raw.images {
            image.validate().map_err(|m| invalid(format!("image `{name}`: {m}")))?;
        }
        if let Some(repos) = &raw.repos {
            let mut seen = std::collections::BTreeSet::new();
            for r in repos {
                if r.id.is_empty() {
                    return Err(invalid("a repo has an empty `id`".into()));
                }
                if !seen.insert(r.id.as_str()) {
                    return Err(invalid(format!("repo `{}` is listed twice", r.id)));
                }
            }
        }
        raw.layers.validate().map_err(|m| invalid(format!("`layers`: {m}")))?;
        Ok(Spec { path: path.to_path_buf(), repos: raw.repos, images: raw.images, layers: raw.layers, compression: raw.compression })
    }

    /// The folder relative base URLs are anchored at.
    pub fn dir(&self) -> PathBuf {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
    }

    /// The images to work on: all of them, or the named ones (each must exist).
    pub fn select_images(&self, names: &[String]) -> Result<Vec<(&str, &ImageSpec)>, SpecError> {
        if names.is_empty() {
            return Ok(self.images.iter().map(|(n, i)| (n.as_str(), i)).collect());
        }
        names
            .iter()
            .map(|n| {
                self.images.get_key_value(n).map(|(k, v)| (k.as_str(), v)).ok_or_else(|| {
                    SpecError::UnknownImage {
                        path: self.path.clone(),
                        name: n.clone(),
                        known: self.images.keys().cloned().collect::<Vec<_>>().join(", "),
                    }
                })
            })
            .collect()
    }

    /// The enabled repositories, fully resolved for one set of variables: entries given by id
    /// only are completed from `.repo` files, variables substituted, relative URLs anchored,
    /// then `disable` and `enable` patterns applied (in that order, as `--disablerepo='*'
    /// --enablerepo=X` is meant).
    pub fn repos(&self, opts: &RepoOptions, vars: &Vars) -> Result<Vec<RepoEntry>, SpecError> {
        let needs_files = self
            .repos
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| !r.has_location()));
        let from_files = if needs_files {
            read_reposdir(&opts.reposdir)
                .map_err(|source| SpecError::RepoFile { path: self.path.clone(), source })?
        } else {
            Vec::new()
        };
        let mut repos: Vec<RepoEntry> = match &self.repos {
            None => from_files.clone(),
            Some(entries) => entries
                .iter()
                .map(|e| {
                    if e.has_location() {
                        return Ok(e.clone());
                    }
                    let base = from_files.iter().find(|f| f.id == e.id).ok_or_else(|| {
                        SpecError::UnknownRepo {
                            path: self.path.clone(),
                            id: e.id.clone(),
                            reposdir: opts.reposdir.clone(),
                        }
                    })?;
                    Ok(base.overlaid_with(e))
                })
                .collect::<Result<_, SpecError>>()?,
        };
        for r in &mut repos {
            if opts.disable.iter().any(|p| glob_match(p, &r.id)) {
                r.enabled = Some(false);
            }
            if opts.enable.iter().any(|p| glob_match(p, &r.id)) {
                r.enabled = Some(true);
            }
        }
        repos.retain(|r| r.enabled.unwrap_or(true));
        let dir = self.dir();
        for r in &mut repos {
            r.substitute(vars).map_err(|message| SpecError::Variable {
                path: self.path.clone(),
                repo: r.id.clone(),
                message,
            })?;
            r.anchor(&dir);
        }
        if repos.is_empty() {
            return Err(SpecError::NoRepos { path: self.path.clone() });
        }
        Ok(repos)
    }
}

/// How repositories are selected, as on dnf's command line.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    pub reposdir: PathBuf,
    pub enable: Vec<String>,
    pub disable: Vec<String>,
}

impl Default for RepoOptions {
    fn default() -> Self {
        RepoOptions { reposdir: PathBuf::from("/etc/yum.repos.d"), enable: vec![], disable: vec![] }
    }
}

/// dnf's repo-id patterns: `*` and `?` wildcards.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn rec(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => rec(&p[1..], t) || (!t.is_empty() && rec(p, &t[1..])),
            (Some(b'?'), Some(_)) => rec(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &t[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(Path::new("/specs/images.json"), text)
    }

    #[test]
    fn reads_the_documented_shape() {
        let spec = parse(
            r#"{"repos": [{"id": "base", "baseurl": "repos/base"}],
                "images": {"baseimage": {"packages": ["bash", "coreutils"]},
                           "web": {"packages": ["nginx-light"], "entrypoint": ["/usr/sbin/nginx", "-g", "daemon off;"], "expose": "80"}}}"#,
        )
        .unwrap();
        assert_eq!(spec.images.len(), 2);
        let repos = spec.repos(&RepoOptions::default(), &Vars::for_arch("x86_64")).unwrap();
        assert_eq!(repos[0].baseurl, vec!["/specs/repos/base".to_string()]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse(r#"{"images": {"a": {"pakages": ["bash"]}}}"#).unwrap_err().to_string();
        assert!(e.contains("pakages"), "{e}");
        let e = parse(r#"{"repo": [], "images": {}}"#).unwrap_err().to_string();
        assert!(e.contains("`repo`"), "{e}");
        let e = parse(r#"{"repos": [{"id": "x", "baseurl": "y", "gpgchek": true}], "images": {"a": {"packages": ["b"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gpgchek"), "{e}");
    }

    #[test]
    fn duplicate_repo_ids_are_refused() {
        let e = parse(r#"{"repos": [{"id": "x", "baseurl": "a"}, {"id": "x", "baseurl": "b"}], "images": {"a": {"packages": ["b"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn select_images_names_the_missing_one() {
        let spec = parse(r#"{"repos": [], "images": {"a": {"packages": ["b"]}}}"#).unwrap();
        let e = spec.select_images(&["zz".into()]).unwrap_err().to_string();
        assert!(e.contains("`zz`") && e.contains("has: a"), "{e}");
    }

    #[test]
    fn enable_disable_patterns() {
        let spec = parse(
            r#"{"repos": [{"id": "base", "baseurl": "/b"}, {"id": "updates", "baseurl": "/u"},
                          {"id": "debug", "baseurl": "/d", "enabled": false}],
                "images": {"a": {"packages": ["b"]}}}"#,
        )
        .unwrap();
        let ids = |o: RepoOptions| {
            spec.repos(&o, &Vars::for_arch("x86_64")).map(|r| r.into_iter().map(|r| r.id).collect::<Vec<_>>())
        };
        assert_eq!(ids(RepoOptions::default()).unwrap(), ["base", "updates"]);
        let o = RepoOptions { disable: vec!["*".into()], enable: vec!["debug".into()], ..Default::default() };
        assert_eq!(ids(o).unwrap(), ["debug"]);
        let o = RepoOptions { disable: vec!["*".into()], ..Default::default() };
        assert!(matches!(ids(o), Err(SpecError::NoRepos { .. })));
    }

    #[test]
    fn repos_by_id_come_from_repo_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fedora.repo"),
            "[fedora]\nname=Fedora $releasever\nbaseurl=https://mirror.example/fedora/$releasever/$basearch/os/\ngpgcheck=1\n",
        )
        .unwrap();
        let spec = parse(r#"{"repos": [{"id": "fedora", "priority": 10}], "images": {"a": {"packages": ["b"]}}}"#).unwrap();
        let opts = RepoOptions { reposdir: dir.path().into(), ..Default::default() };
        let mut vars = Vars::for_arch("x86_64");
        vars.releasever = Some("41".into());
        let repos = spec.repos(&opts, &vars).unwrap();
        assert_eq!(repos[0].baseurl, ["https://mirror.example/fedora/41/x86_64/os/"]);
        assert_eq!(repos[0].priority, Some(10));
        assert_eq!(repos[0].gpgcheck, Some(true));

        let spec = parse(r#"{"repos": [{"id": "nope"}], "images": {"a": {"packages": ["b"]}}}"#).unwrap();
        let e = spec.repos(&opts, &vars).unwrap_err().to_string();
        assert!(e.contains("`nope`"), "{e}");
    }

    #[test]
    fn missing_releasever_is_explained() {
        let spec = parse(r#"{"repos": [{"id": "f", "baseurl": "https://x/$releasever/"}], "images": {"a": {"packages": ["b"]}}}"#).unwrap();
        let e = spec.repos(&RepoOptions::default(), &Vars::for_arch("x86_64")).unwrap_err().to_string();
        assert!(e.contains("--releasever"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "base"));
        assert!(glob_match("up*", "updates"));
        assert!(glob_match("b?se", "base"));
        assert!(!glob_match("b?se", "bse"));
        assert!(!glob_match("up", "updates"));
    }
}
