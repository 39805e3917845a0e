//! What a request item means: a package name, `name op evr`, one of dnf's NEVRA forms, a
//! rich expression, a provide, or a file path — tried in dnf's order.

use resolvo::{ConditionalRequirement, NameId, Requirement, SolvableId};
use strata_rpm::{Evr, Op};

use crate::catalog::Cap;
use crate::provider::{Matcher, Provider, VersionSet};

/// The outcome for one request item.
pub(crate) enum Meaning {
    Requirements(Vec<ConditionalRequirement>),
    /// Nothing visible matches it.
    Unknown,
    /// It is not a well-formed request.
    Bad(String),
}

pub(crate) fn resolve(p: &Provider<'_, '_>, item: &str) -> Meaning {
    let item = item.trim();
    if item.is_empty() {
        return Meaning::Bad("empty package request".to_owned());
    }
    if item.starts_with('(') {
        return rich(p, item);
    }
    let words: Vec<&str> = item.split_whitespace().collect();
    if words.len() > 1 {
        return versioned(p, &words);
    }
    if item.starts_with('/') {
        return capability(
            p,
            Cap {
                name: item.to_owned(),
                op: None,
                evr: Evr::default(),
            },
        );
    }
    let name = p.cat.intern_name(item);
    if !p.cat.candidates(name).is_empty() {
        return Meaning::Requirements(vec![name_requirement(p, name)]);
    }
    if let Some(req) = nevra(p, item) {
        return Meaning::Requirements(vec![req]);
    }
    capability(
        p,
        Cap {
            name: item.to_owned(),
            op: None,
            evr: Evr::default(),
        },
    )
}

fn rich(p: &Provider<'_, '_>, item: &str) -> Meaning {
    let parsed = match strata_rpm::parse_rich(item) {
        Ok(r) => r,
        Err(e) => return Meaning::Bad(format!("not a valid rich dependency: {e}")),
    };
    let reqs = crate::rich::cnf(item, &parsed)
        .iter()
        .filter_map(|c| p.clause_requirement(c))
        .collect();
    Meaning::Requirements(reqs)
}

/// `name op evr`, e.g. `bash >= 5` or `bash = 5.2.15-2+b13`.
fn versioned(p: &Provider<'_, '_>, words: &[&str]) -> Meaning {
    let [name, op, evr] = words else {
        return Meaning::Bad("expected `NAME`, `NAME OP VERSION` or a NEVRA".to_owned());
    };
    let Some(op) = Op::from_symbol(op) else {
        return Meaning::Bad(format!("unknown operator `{op}` (use <, <=, =, >=, >)"));
    };
    let Some(evr) = parse_evr(evr) else {
        return Meaning::Bad(format!(
            "`{evr}` is not a version ([EPOCH:]VERSION[-RELEASE])"
        ));
    };
    capability(
        p,
        Cap {
            name: (*name).to_owned(),
            op: Some(op),
            evr,
        },
    )
}

/// A capability request: known when anything provides its name at all. A version that no
/// provider has is left to the solver, whose explanation lists what is available.
fn capability(p: &Provider<'_, '_>, cap: Cap) -> Meaning {
    if p.cat.providers(&cap.name).is_empty() {
        return Meaning::Unknown;
    }
    Meaning::Requirements(vec![p.cap_requirement(cap).into()])
}

/// A plain name. dnf installs the obsoleter instead when every candidate is obsoleted by
/// another available package.
fn name_requirement(p: &Provider<'_, '_>, name: NameId) -> ConditionalRequirement {
    let obsoleters = obsoleters_of_all(p, name);
    let sets = if obsoleters.is_empty() {
        vec![p.intern_set(VersionSet {
            name,
            matcher: Matcher::Any,
            negate: false,
        })]
    } else {
        obsoleters
            .into_iter()
            .map(|n| {
                p.intern_set(VersionSet {
                    name: n,
                    matcher: Matcher::Any,
                    negate: false,
                })
            })
            .collect()
    };
    p.union_of(sets).into()
}

/// Names whose best candidate obsoletes every candidate of `name`, in byte order.
fn obsoleters_of_all(p: &Provider<'_, '_>, name: NameId) -> Vec<NameId> {
    let text = p.cat.name_text(name);
    let candidates = p.cat.candidates(name);
    let mut out: Vec<(String, NameId)> = Vec::new();
    for s in p.cat.obsoleters(&text) {
        let rec = p.cat.solvable(s);
        if rec.name == name || p.cat.candidates(rec.name).first() != Some(&s) {
            continue;
        }
        let caps: Vec<Cap> = p
            .cat
            .package(s)
            .obsoletes()
            .filter(|d| d.name == text)
            .map(|d| Cap::from_ref(&d))
            .collect();
        let all = candidates
            .iter()
            .all(|&c| caps.iter().any(|cap| p.cat.obsoleted_by(c, cap)));
        if all && !out.iter().any(|(_, n)| *n == rec.name) {
            out.push((p.cat.name_text(rec.name), rec.name));
        }
    }
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// dnf's NEVRA forms: `name.arch`, `name-version`, `name-version-release`, each with an
/// optional `.arch`, the version optionally `epoch:`-prefixed.
fn nevra(p: &Provider<'_, '_>, item: &str) -> Option<ConditionalRequirement> {
    let mut forms: Vec<(&str, Evr, Option<&str>)> = Vec::new();
    let mut bases: Vec<(&str, Option<&str>)> = vec![(item, None)];
    if let Some((base, arch)) = item.rsplit_once('.') {
        bases.push((base, Some(arch)));
    }
    for (base, arch) in bases {
        if arch.is_some() {
            forms.push((base, Evr::default(), arch));
        }
        if let Some((rest, release)) = base.rsplit_once('-') {
            if let Some((name, version)) = rest.rsplit_once('-') {
                if let Some(evr) = parse_evr(&format!("{version}-{release}")) {
                    forms.push((name, evr, arch));
                }
            }
            if let Some(evr) = parse_evr(release) {
                forms.push((rest, evr, arch));
            }
        }
    }
    for (name, evr, arch) in forms {
        let id = p.cat.intern_name(name);
        let matcher = Matcher::Nevra {
            evr,
            arch: arch.map(str::to_owned),
        };
        let set = p.intern_set(VersionSet {
            name: id,
            matcher,
            negate: false,
        });
        let candidates = p.cat.candidates(id);
        if candidates.iter().any(|&s: &SolvableId| p.keeps(set, s)) {
            return Some(Requirement::Single(set).into());
        }
    }
    None
}

/// `[EPOCH:]VERSION[-RELEASE]`; `None` when a part is empty or the epoch is not a number.
pub(crate) fn parse_evr(s: &str) -> Option<Evr> {
    let (epoch, rest) = match s.split_once(':') {
        Some((e, rest)) => (Some(e.parse::<u32>().ok()?), rest),
        None => (None, s),
    };
    let (version, release) = match rest.rsplit_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    let valid = |x: &str| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+~^".contains(c))
    };
    if !valid(version) || release.is_some_and(|r| !valid(r)) {
        return None;
    }
    Some(Evr {
        epoch,
        version: version.to_owned(),
        release: release.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_forms() {
        let e = parse_evr("1:2.3-4.el9").unwrap();
        assert_eq!(
            (e.epoch, e.version.as_str(), e.release.as_deref()),
            (Some(1), "2.3", Some("4.el9"))
        );
        let e = parse_evr("5").unwrap();
        assert_eq!((e.epoch, e.version.as_str(), e.release), (None, "5", None));
        let e = parse_evr("5.2.15-2+b13").unwrap();
        assert_eq!(e.release.as_deref(), Some("2+b13"));
        assert!(parse_evr("x:1").is_none());
        assert!(parse_evr("1-").is_none());
        assert!(parse_evr("").is_none());
        assert!(parse_evr("1/2").is_none());
    }
}
