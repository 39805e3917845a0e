//! The package diff between two builds of an image, from the RPM lists (NEVRA strings)
//! the workers read from each image's rpmdb.

use std::collections::BTreeMap;
use strata_client::PackageChange;

/// Added (`old` none), removed (`new` none) and changed packages, each sorted by name, and
/// how many stayed the same. Versions are `[EPOCH:]VERSION-RELEASE.ARCH`; several
/// packages of one name (multilib) are compared as one, their versions joined.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<PackageChange>,
    pub removed: Vec<PackageChange>,
    pub changed: Vec<PackageChange>,
    pub unchanged: usize,
}

fn index(list: &[String]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for nevra in list {
        // A string that is not a NEVRA is kept whole, as its own name.
        let (name, version) = strata_rebuild::nevra_parts(nevra).map_or((nevra.as_str(), String::new()), |(n, v)| (n, v));
        m.entry(name.to_string()).or_default().push(version);
    }
    m.into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v.join(" "))
        })
        .collect()
}

pub fn diff(old: &[String], new: &[String]) -> Diff {
    let (old, new) = (index(old), index(new));
    let mut d = Diff::default();
    for (name, o) in &old {
        match new.get(name) {
            None => d.removed.push(PackageChange { name: name.clone(), old: Some(o.clone()), new: None }),
            Some(n) if n != o => d.changed.push(PackageChange { name: name.clone(), old: Some(o.clone()), new: Some(n.clone()) }),
            Some(_) => d.unchanged += 1,
        }
    }
    for (name, n) in &new {
        if !old.contains_key(name) {
            d.added.push(PackageChange { name: name.clone(), old: None, new: Some(n.clone()) });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn added_removed_changed_and_unchanged() {
        let old = v(&["bash-5.2.15-2+b2.x86_64", "libssl3-3.0.15-1~deb12u1.x86_64", "tzdata-2024a-0+deb12u1.noarch", "gone-1-1.noarch"]);
        let new = v(&["bash-5.2.15-2+b13.1.x86_64", "libssl3-3.0.22-1~deb12u2.x86_64", "tzdata-2024a-0+deb12u1.noarch", "fresh-2:1.0-3.x86_64"]);
        let d = diff(&old, &new);
        let c = |n: &str, o: Option<&str>, w: Option<&str>| PackageChange { name: n.into(), old: o.map(Into::into), new: w.map(Into::into) };
        assert_eq!(d.changed, [c("bash", Some("5.2.15-2+b2.x86_64"), Some("5.2.15-2+b13.1.x86_64")), c("libssl3", Some("3.0.15-1~deb12u1.x86_64"), Some("3.0.22-1~deb12u2.x86_64"))]);
        assert_eq!(d.added, [c("fresh", None, Some("2:1.0-3.x86_64"))]);
        assert_eq!(d.removed, [c("gone", Some("1-1.noarch"), None)]);
        assert_eq!(d.unchanged, 1);
        assert_eq!(diff(&new, &new), Diff { unchanged: 4, ..Diff::default() });
    }

    #[test]
    fn multilib_names_compare_as_one() {
        let d = diff(&v(&["glibc-2.36-9.x86_64", "glibc-2.36-9.i686"]), &v(&["glibc-2.36-9.i686", "glibc-2.36-9.x86_64"]));
        assert_eq!(d.unchanged, 1);
        assert!(d.changed.is_empty());
    }
}
