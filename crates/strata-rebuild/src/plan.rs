//! The planning rules, on plain data: what is registered, what the changed repositories
//! now resolve to, and which rebuild inputs were already acted on.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use strata_client::{PackageChange, PlannedRebuild, RebuildPlan, RepoChange, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Composed from a spec.
    Spec,
    /// Built from a Dockerfile.
    Dockerfile,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spec => "spec",
            Kind::Dockerfile => "dockerfile",
        }
    }
}

/// A registered image as its last build left it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub name: String,
    pub kind: Kind,
    /// The source of its last build (`commit`: what was built).
    pub source: Source,
    /// Composed images: the content digest of the last build's lock entry.
    pub content: Option<String>,
    /// Digest of the spec or Dockerfile the last build read.
    pub input_digest: Option<String>,
    /// The last build's rpmdb (NEVRA).
    pub packages: Vec<String>,
    /// Dockerfile images: the registered image they are built FROM, and the FROM text.
    pub parent: Option<String>,
    pub base_from: Option<String>,
}

/// A composed image resolved again now.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub content: String,
    /// (NEVRA, base URL of the repository it comes from).
    pub packages: Vec<(String, String)>,
    /// The source to build: the registered commit, or the ref's new one.
    pub source: Source,
    /// The registered commit, when the ref moved since.
    pub moved_from: Option<String>,
    /// Digest of the spec at `source`.
    pub spec_digest: String,
}

fn sha256(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// What a composed rebuild is made of: its content (packages and inputs) and its spec.
pub fn input_hash_of_spec(content: &str, spec_digest: &str) -> String {
    sha256(&["spec", content, spec_digest])
}

/// `name-[epoch:]version-release[.arch]` split into the name and the rest, an epoch of 0
/// dropped (rpm prints it either way). The arch is the part after the last dot only when
/// it follows the release.
pub fn nevra_parts(nevra: &str) -> Option<(&str, String)> {
    let rest = match nevra.rsplit_once('.') {
        Some((r, a)) if !a.contains('-') => r,
        _ => nevra,
    };
    let (nv, _release) = rest.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    let version = &nevra[name.len() + 1..];
    Some((name, version.strip_prefix("0:").unwrap_or(version).to_string()))
}

/// Old → new versions by package name (several entries of one name, multilib, are
/// joined).
fn changes(old: &[String], new: &[String]) -> Vec<PackageChange> {
    let index = |list: &[String]| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in list.iter().filter(|n| !n.starts_with("gpg-pubkey-")) {
            if let Some((name, ver)) = nevra_parts(n) {
                m.entry(name.to_string()).or_default().push(ver);
            }
        }
        m.into_iter().map(|(k, mut v)| (k, { v.sort(); v.join(" ") })).collect::<BTreeMap<_, _>>()
    };
    let (old, new) = (index(old), index(new));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter(|n| old.get(*n) != new.get(*n))
        .map(|n| PackageChange { name: n.clone(), old: old.get(n).cloned(), new: new.get(n).cloned() })
        .collect()
}

/// The plan: the composed images whose content changes (depth 0), every registered
/// Dockerfile image built FROM a planned one (one depth later), in order of depth then
/// name. An input already acted on (`done`: the input hashes of rebuilds queued, running
/// or built) is not planned again, nor is what depends on it.
pub fn plan(registered: &[Registered], repos: Vec<RepoChange>, fresh: &BTreeMap<String, Fresh>, done: &BTreeSet<String>) -> RebuildPlan {
    let mut planned: BTreeMap<String, PlannedRebuild> = BTreeMap::new();
    let mut unchanged = Vec::new();
    for reg in registered.iter().filter(|r| r.kind == Kind::Spec) {
        let Some(f) = fresh.get(&reg.name) else { continue };
        let same_content = reg.content.as_deref() == Some(f.content.as_str());
        let same_spec = f.moved_from.is_none() || reg.input_digest.as_deref() == Some(f.spec_digest.as_str());
        let input_hash = input_hash_of_spec(&f.content, &f.spec_digest);
        if (same_content && same_spec) || done.contains(&input_hash) {
            unchanged.push(reg.name.clone());
            continue;
        }
        let new: Vec<String> = f.packages.iter().map(|(n, _)| n.clone()).collect();
        let changes = changes(&reg.packages, &new);
        let changed_names: BTreeSet<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        let repos: BTreeSet<String> = f
            .packages
            .iter()
            .filter(|(n, _)| nevra_parts(n).is_some_and(|(name, _)| changed_names.contains(name)))
            .map(|(_, url)| url.clone())
            .collect();
        let mut reason = match changes.len() {
            0 => "its lock changes (same versions, new builds of them)".to_string(),
            1 => "1 package changes".to_string(),
            n => format!("{n} packages change"),
        };
        if let Some(old) = &f.moved_from {
            reason.push_str(&format!("; its ref moved from {} to {}", short(old), short(f.source.commit.as_deref().unwrap_or_default())));
        }
        planned.insert(
            reg.name.clone(),
            PlannedRebuild {
                image: reg.name.clone(),
                kind: Kind::Spec.as_str().into(),
                depth: 0,
                parent: None,
                reason,
                changes,
                repos: repos.into_iter().collect(),
                source: f.source.clone(),
                moved_from: f.moved_from.clone(),
                input_hash,
            },
        );
    }
    // Children follow their parents, depth by depth, until nothing more is added.
    loop {
        let mut added = Vec::new();
        for reg in registered.iter().filter(|r| r.kind == Kind::Dockerfile && !planned.contains_key(&r.name)) {
            let Some(parent) = reg.parent.as_ref().and_then(|p| planned.get(p)) else { continue };
            let commit = reg.source.commit.clone().unwrap_or_default();
            let input_hash = sha256(&["dockerfile", &parent.input_hash, reg.input_digest.as_deref().unwrap_or_default(), &commit]);
            if done.contains(&input_hash) {
                continue;
            }
            added.push(PlannedRebuild {
                image: reg.name.clone(),
                kind: Kind::Dockerfile.as_str().into(),
                depth: parent.depth + 1,
                parent: Some(parent.image.clone()),
                reason: format!("its base {} is rebuilt", parent.image),
                changes: parent.changes.clone(),
                repos: parent.repos.clone(),
                source: reg.source.clone(),
                moved_from: None,
                input_hash,
            });
        }
        if added.is_empty() {
            break;
        }
        for p in added {
            planned.insert(p.image.clone(), p);
        }
    }
    let mut rebuilds: Vec<PlannedRebuild> = planned.into_values().collect();
    rebuilds.sort_by(|a, b| (a.depth, &a.image).cmp(&(b.depth, &b.image)));
    unchanged.sort();
    RebuildPlan { repos, rebuilds, unchanged, refused: Vec::new() }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(commit: &str) -> Source {
        Source { url: "file:///src".into(), r#ref: None, commit: Some(commit.into()), path: None }
    }

    fn spec(name: &str, content: &str, packages: &[&str]) -> Registered {
        Registered {
            name: name.into(),
            kind: Kind::Spec,
            source: src("c1"),
            content: Some(content.into()),
            input_digest: Some("spec1".into()),
            packages: packages.iter().map(|s| s.to_string()).collect(),
            parent: None,
            base_from: None,
        }
    }

    fn child(name: &str, parent: &str) -> Registered {
        Registered {
            name: name.into(),
            kind: Kind::Dockerfile,
            source: src("c2"),
            content: None,
            input_digest: Some("df".into()),
            packages: Vec::new(),
            parent: Some(parent.into()),
            base_from: Some(format!("reg/{parent}:latest")),
        }
    }

    fn fresh(content: &str, packages: &[&str]) -> Fresh {
        Fresh {
            content: content.into(),
            packages: packages.iter().map(|p| (p.to_string(), "http://repo/updates".to_string())).collect(),
            source: src("c1"),
            moved_from: None,
            spec_digest: "spec1".into(),
        }
    }

    #[test]
    fn only_changed_content_is_rebuilt_and_children_follow_parents() {
        let registered = vec![
            spec("web", "A", &["nginx-1.22.1-9.x86_64", "bash-5.2-1.x86_64"]),
            spec("base", "B", &["bash-5.2-1.x86_64"]),
            child("site", "web"),
            child("site-extra", "site"),
            child("other", "base"),
        ];
        let mut f = BTreeMap::new();
        f.insert("web".to_string(), fresh("A2", &["nginx-1.22.1-9+deb12u11.x86_64", "bash-5.2-1.x86_64"]));
        f.insert("base".to_string(), fresh("B", &["bash-5.2-1.x86_64"]));
        let p = plan(&registered, Vec::new(), &f, &BTreeSet::new());
        let order: Vec<(&str, u32)> = p.rebuilds.iter().map(|r| (r.image.as_str(), r.depth)).collect();
        assert_eq!(order, [("web", 0), ("site", 1), ("site-extra", 2)]);
        assert_eq!(p.unchanged, ["base"]);
        assert_eq!(
            p.rebuilds[0].changes,
            [PackageChange { name: "nginx".into(), old: Some("1.22.1-9.x86_64".into()), new: Some("1.22.1-9+deb12u11.x86_64".into()) }]
        );
        assert_eq!(p.rebuilds[1].changes, p.rebuilds[0].changes, "a child's changes are its base's");
        assert_eq!(p.rebuilds[1].parent.as_deref(), Some("web"));
        assert_eq!(p.rebuilds[0].repos, ["http://repo/updates"]);

        // The same input again (a refresh before the rebuild registered): nothing twice.
        let done: BTreeSet<String> = p.rebuilds.iter().map(|r| r.input_hash.clone()).collect();
        let again = plan(&registered, Vec::new(), &f, &done);
        assert!(again.rebuilds.is_empty(), "{again:?}");
        assert_eq!(again.unchanged, ["base", "web"]);
    }

    #[test]
    fn a_moved_ref_with_a_new_spec_is_a_rebuild_even_with_the_same_packages() {
        let registered = vec![spec("web", "A", &["nginx-1-1.x86_64"])];
        let mut f = BTreeMap::new();
        let mut moved = fresh("A", &["nginx-1-1.x86_64"]);
        moved.source = src("c9");
        moved.moved_from = Some("c1".into());
        moved.spec_digest = "spec2".into();
        f.insert("web".to_string(), moved);
        let p = plan(&registered, Vec::new(), &f, &BTreeSet::new());
        assert_eq!(p.rebuilds.len(), 1);
        assert!(p.rebuilds[0].reason.contains("ref moved from c1 to c9"), "{}", p.rebuilds[0].reason);
        assert_eq!(p.rebuilds[0].source.commit.as_deref(), Some("c9"));
    }

    #[test]
    fn nevras_split_as_rpm_prints_them() {
        assert_eq!(nevra_parts("libssl3-3.0.20-1.x86_64"), Some(("libssl3", "3.0.20-1.x86_64".to_string())));
        assert_eq!(nevra_parts("tzdata-0:2024a-1.noarch"), Some(("tzdata", "2024a-1.noarch".to_string())));
        assert_eq!(nevra_parts("perl-base-1:5.36-2.x86_64"), Some(("perl-base", "1:5.36-2.x86_64".to_string())));
        assert_eq!(nevra_parts("gpg-pubkey-abcd-1234"), Some(("gpg-pubkey", "abcd-1234".to_string())));
        assert_eq!(nevra_parts("nodash"), None);
    }
}
