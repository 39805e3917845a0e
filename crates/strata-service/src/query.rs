//! The reverse query: which images ship a package matching `NAME [OP EVR]`, compared as
//! rpm compares a requirement with a provide (strata-rpm's range overlap), over the RPM
//! lists the workers read from each image's rpmdb.
//!
//! It scans the recorded results of built builds; a package table with indexes is the
//! next step once the record count calls for it (the rebuild issue queries the same data).

use std::collections::BTreeMap;
use strata_client::{BuildResult, QueryHit, TagPointer};
use strata_rpm::{Dep, DepRef, EvrRef, Op};

/// A recorded NEVRA (`name-[epoch:]version-release[.arch]`) as a provide of itself.
fn provide(nevra: &str) -> Option<(&str, EvrRef<'_>)> {
    // The arch is the part after the last dot only when it follows the release.
    let (rest, _arch) = match nevra.rsplit_once('.') {
        Some((r, a)) if !a.contains('-') => (r, a),
        _ => (nevra, ""),
    };
    let (nv, _release) = rest.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    Some((name, EvrRef::parse(&rest[name.len() + 1..])))
}

pub fn matches(dep: &Dep, nevra: &str) -> bool {
    let Some((name, evr)) = provide(nevra) else { return false };
    name == dep.name && dep.as_ref().matches_provide(&DepRef { name, op: Some(Op::Eq), evr, pre: false })
}

/// `builds`: (id, scratch, created, result), newest first. Without `all`, each image's
/// current builds only: those a floating tag (`latest`, `testing`) points at, or — for an
/// image no tag is recorded for — its newest built non-scratch build.
pub fn hits(dep: &Dep, builds: &[(i64, bool, String, BuildResult)], all: bool, tags: &BTreeMap<String, Vec<TagPointer>>) -> Vec<QueryHit> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (id, scratch, created, result) in builds {
        for img in &result.images {
            let floating: Vec<String> = tags.get(&img.name).into_iter().flatten().filter(|p| p.build_id == *id).map(|p| p.tag.clone()).collect();
            let current = match tags.contains_key(&img.name) {
                true => !floating.is_empty(),
                false => !*scratch && seen.insert(img.name.clone()),
            };
            if !all && !current {
                continue;
            }
            let packages: Vec<String> = img.packages.iter().filter(|p| matches(dep, p)).cloned().collect();
            if !packages.is_empty() {
                out.push(QueryHit {
                    image: img.name.clone(),
                    build_id: *id,
                    reference: img.reference.clone(),
                    created: created.clone(),
                    scratch: *scratch,
                    tags: floating,
                    packages,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_rpm_does() {
        let q = |s: &str| Dep::parse(s).unwrap();
        assert!(matches(&q("libssl3 < 3.0.22"), "libssl3-3.0.20-1.x86_64"));
        assert!(!matches(&q("libssl3 < 3.0.22"), "libssl3-3.0.22-1.x86_64"));
        assert!(matches(&q("libssl3 <= 3.0.22"), "libssl3-3.0.22-1.x86_64"));
        assert!(matches(&q("libssl3 < 3.0.9"), "libssl3-3.0.8-1.x86_64"), "rpmvercmp, not string order");
        assert!(!matches(&q("libssl3 < 3.0.9"), "libssl3-3.0.10-1.x86_64"));
        assert!(matches(&q("bash"), "bash-5.2.15-2.x86_64"));
        assert!(!matches(&q("bash"), "bash-completion-2.11-1.noarch"), "names are whole");
        assert!(matches(&q("bash-completion"), "bash-completion-2.11-1.noarch"));
        assert!(matches(&q("tzdata > 1:2020"), "tzdata-1:2021a-1.noarch"), "epochs first");
        assert!(!matches(&q("tzdata > 1:2020"), "tzdata-2024a-1.noarch"));
        assert!(matches(&q("gpg-pubkey"), "gpg-pubkey-abcd-1234"), "no arch");
    }

    #[test]
    fn current_builds_are_the_newest_non_scratch_ones() {
        let img = |name: &str, pkgs: &[&str]| strata_client::ImageOutput { name: name.into(), packages: pkgs.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let res = |imgs: Vec<strata_client::ImageOutput>| BuildResult { images: imgs, ..Default::default() };
        let builds = vec![
            (4, true, "t4".into(), res(vec![img("web", &["openssl-3.0.1-1.x86_64"])])),
            (3, false, "t3".into(), res(vec![img("web", &["openssl-3.0.30-1.x86_64"])])),
            (2, false, "t2".into(), res(vec![img("web", &["openssl-3.0.1-1.x86_64"]), img("base", &["openssl-3.0.1-1.x86_64"])])),
        ];
        let q = Dep::parse("openssl < 3.0.22").unwrap();
        let none = BTreeMap::new();
        let current: Vec<(String, i64)> = hits(&q, &builds, false, &none).into_iter().map(|h| (h.image, h.build_id)).collect();
        assert_eq!(current, [("base".to_string(), 2)], "web's current build (3) is fixed; the scratch build does not count");
        let all: Vec<i64> = hits(&q, &builds, true, &none).into_iter().map(|h| h.build_id).collect();
        assert_eq!(all, [4, 2, 2]);
        // With tags recorded: latest still on the old build 2, testing on the fixed 3.
        let tag = |t: &str, b: i64| TagPointer { tag: t.into(), build_id: b, digest: String::new() };
        let tags = BTreeMap::from([("web".to_string(), vec![tag("latest", 2), tag("testing", 3)])]);
        let current: Vec<(String, i64, Vec<String>)> = hits(&q, &builds, false, &tags).into_iter().map(|h| (h.image, h.build_id, h.tags)).collect();
        assert_eq!(current, [("web".to_string(), 2, vec!["latest".to_string()]), ("base".to_string(), 2, vec![])]);
    }
}
