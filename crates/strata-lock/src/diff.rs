//! Comparing two locks, in words a release engineer reads at a glance.

use crate::{LockedPackage, Lockfile};
use std::collections::BTreeMap;
use std::fmt;

/// One way in which a lock differs from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    ImageAdded { image: String },
    ImageRemoved { image: String },
    InputsChanged { image: String },
    PackageAdded { image: String, nevra: String },
    PackageRemoved { image: String, nevra: String },
    /// Same name, another EVR, arch, repo or checksum.
    PackageChanged { image: String, name: String, old: String, new: String },
    RepoChanged { repo: String, old: String, new: String },
    /// The image's layers (which packages go together) would be planned differently.
    LayersChanged { image: String },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::ImageAdded { image } => write!(f, "image {image}: not in the lock"),
            Difference::ImageRemoved { image } => write!(f, "image {image}: in the lock but not in the spec"),
            Difference::InputsChanged { image } => {
                write!(f, "image {image}: its packages, excludes, arch or repos changed in the spec")
            }
            Difference::PackageAdded { image, nevra } => write!(f, "image {image}: + {nevra}"),
            Difference::PackageRemoved { image, nevra } => write!(f, "image {image}: - {nevra}"),
            Difference::PackageChanged { image, name, old, new } => {
                write!(f, "image {image}: {name} {old} -> {new}")
            }
            Difference::RepoChanged { repo, old, new } => {
                write!(f, "repo {repo}: metadata {old} -> {new}")
            }
            Difference::LayersChanged { image } => write!(f, "image {image}: its layer plan changed"),
        }
    }
}

fn describe(p: &LockedPackage) -> String {
    format!("{}.{} ({})", p.evr(), p.arch, p.repo)
}

/// What changed from `old` to `new`, images in name order, packages in name order. Repos
/// are compared only where both locks know them.
pub fn diff(old: &Lockfile, new: &Lockfile) -> Vec<Difference> {
    let mut out = Vec::new();
    for (id, n) in &new.repos {
        if let Some(o) = old.repos.get(id) {
            if o.repomd_checksum != n.repomd_checksum {
                out.push(Difference::RepoChanged {
                    repo: id.clone(),
                    old: o.repomd_checksum.clone(),
                    new: n.repomd_checksum.clone(),
                });
            }
        }
    }
    for (image, n) in &new.images {
        let Some(o) = old.images.get(image) else {
            out.push(Difference::ImageAdded { image: image.clone() });
            continue;
        };
        if o.inputs != n.inputs {
            out.push(Difference::InputsChanged { image: image.clone() });
        }
        let by_name = |pkgs: &'_ [LockedPackage]| -> BTreeMap<String, LockedPackage> {
            pkgs.iter().map(|p| (p.name.clone(), p.clone())).collect()
        };
        let (om, nm) = (by_name(&o.packages), by_name(&n.packages));
        for (name, np) in &nm {
            match om.get(name) {
                None => out.push(Difference::PackageAdded { image: image.clone(), nevra: np.nevra() }),
                Some(op) if op != np => out.push(Difference::PackageChanged {
                    image: image.clone(),
                    name: name.clone(),
                    old: describe(op),
                    new: describe(np),
                }),
                Some(_) => {}
            }
        }
        for (name, op) in &om {
            if !nm.contains_key(name) {
                out.push(Difference::PackageRemoved { image: image.clone(), nevra: op.nevra() });
            }
        }
    }
    for image in old.images.keys() {
        if !new.images.contains_key(image) {
            out.push(Difference::ImageRemoved { image: image.clone() });
        }
    }
    if let Some(np) = &new.layers {
        for image in new.images.keys().filter(|i| old.images.contains_key(*i)) {
            if old.layers.as_ref().is_none_or(|op| op.image_fingerprint(image) != np.image_fingerprint(image)) {
                out.push(Difference::LayersChanged { image: image.clone() });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{lock, pkg};

    #[test]
    fn equal_locks_have_no_difference() {
        let l = lock(&[("a", vec![pkg("bash", "5", "base")])]);
        assert!(diff(&l, &l.clone()).is_empty());
    }

    #[test]
    fn layer_plan_changes_are_named_per_image() {
        let mut old = lock(&[("a", vec![pkg("bash", "5", "base")]), ("b", vec![pkg("bash", "5", "base")])]);
        old.replan(&strata_layers::Settings::default(), None);
        let mut new = old.clone();
        new.replan(&strata_layers::Settings::new(strata_layers::Mode::Single, 100, strata_layers::Cost::LAN), None);
        let lines: Vec<String> = diff(&old, &new).iter().map(|d| d.to_string()).collect();
        assert_eq!(lines, ["image a: its layer plan changed", "image b: its layer plan changed"]);
        assert!(diff(&old, &old.clone()).is_empty());
    }

    #[test]
    fn names_every_kind_of_change() {
        let old = lock(&[
            ("web", vec![pkg("bash", "5", "base"), pkg("gone", "1", "base")]),
            ("old", vec![pkg("x", "1", "base")]),
        ]);
        let mut new = lock(&[
            ("web", vec![pkg("bash", "5.1", "updates"), pkg("curl", "8", "base")]),
            ("fresh", vec![pkg("x", "1", "base")]),
        ]);
        new.repos.get_mut("base").unwrap().repomd_checksum = "sha256:bb".into();
        let lines: Vec<String> = diff(&old, &new).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            [
                "repo base: metadata sha256:aa -> sha256:bb",
                "image fresh: not in the lock",
                "image web: bash 5-1.x86_64 (base) -> 5.1-1.x86_64 (updates)",
                "image web: + curl-8-1.x86_64",
                "image web: - gone-1-1.x86_64",
                "image old: in the lock but not in the spec",
            ]
        );
    }
}
