//! One repository entry, with dnf's option names and defaults.

use crate::vars::{substitute, Vars};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;
use std::time::Duration;

/// A repository as the spec (or a `.repo` file) describes it. Options left out keep dnf's
/// defaults, which the accessors apply.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepoEntry {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub baseurl: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrorlist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metalink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpgcheck: Option<bool>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub gpgkey: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i32>,
    /// Package-name globs hidden from this repo (dnf's `exclude`/`excludepkgs`).
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_expire: Option<Expire>,
}

/// dnf's `metadata_expire`: seconds, a number with an `s`/`m`/`h`/`d` suffix, or
/// `-1`/`never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Expire {
    After(Duration),
    Never,
}

impl From<Expire> for String {
    fn from(e: Expire) -> String {
        match e {
            Expire::Never => "never".into(),
            Expire::After(d) => d.as_secs().to_string(),
        }
    }
}

impl Expire {
    pub fn parse(s: &str) -> Result<Expire, String> {
        let s = s.trim();
        if s == "-1" || s.eq_ignore_ascii_case("never") {
            return Ok(Expire::Never);
        }
        let (num, mult) = match s.char_indices().last() {
            Some((i, 's')) => (&s[..i], 1),
            Some((i, 'm')) => (&s[..i], 60),
            Some((i, 'h')) => (&s[..i], 3600),
            Some((i, 'd')) => (&s[..i], 86400),
            _ => (s, 1),
        };
        let n: u64 = num.trim().parse().map_err(|_| {
            format!("metadata_expire `{s}` is not a duration (use seconds, 30m, 6h, 2d or never)")
        })?;
        Ok(Expire::After(Duration::from_secs(n * mult)))
    }

    /// As a maximum age; `None` means the cached metadata never expires.
    pub fn max_age(self) -> Option<Duration> {
        match self {
            Expire::After(d) => Some(d),
            Expire::Never => None,
        }
    }
}

impl<'de> Deserialize<'de> for Expire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        Expire::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Accepts `"x"` or `["x", "y"]`, as dnf accepts one or several values.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

impl RepoEntry {
    pub const DEFAULT_PRIORITY: i32 = 99;
    pub const DEFAULT_COST: i32 = 1000;

    pub fn has_location(&self) -> bool {
        !self.baseurl.is_empty() || self.mirrorlist.is_some() || self.metalink.is_some()
    }

    pub fn priority(&self) -> i32 {
        self.priority.unwrap_or(Self::DEFAULT_PRIORITY)
    }

    pub fn cost(&self) -> i32 {
        self.cost.unwrap_or(Self::DEFAULT_COST)
    }

    pub fn gpgcheck(&self) -> bool {
        self.gpgcheck.unwrap_or(false)
    }

    /// `self` (from a `.repo` file) with every option that `spec` sets replacing its own.
    pub(crate) fn overlaid_with(&self, spec: &RepoEntry) -> RepoEntry {
        let mut out = self.clone();
        macro_rules! take {
            ($($f:ident),*) => { $( if spec.$f.is_some() { out.$f = spec.$f.clone(); } )* };
        }
        take!(name, mirrorlist, metalink, enabled, gpgcheck, priority, cost, metadata_expire);
        if !spec.gpgkey.is_empty() {
            out.gpgkey = spec.gpgkey.clone();
        }
        if !spec.exclude.is_empty() {
            out.exclude = spec.exclude.clone();
        }
        out
    }

    pub(crate) fn substitute(&mut self, vars: &Vars) -> Result<(), String> {
        for u in self.baseurl.iter_mut().chain(self.gpgkey.iter_mut()) {
            *u = substitute(u, vars)?;
        }
        for u in [&mut self.mirrorlist, &mut self.metalink].into_iter().flatten() {
            *u = substitute(u, vars)?;
        }
        if let Some(n) = &mut self.name {
            *n = substitute(n, vars)?;
        }
        Ok(())
    }

    /// Makes relative locations absolute paths under `dir` (the spec's folder); URLs with a
    /// scheme are left alone.
    pub(crate) fn anchor(&mut self, dir: &Path) {
        for u in self
            .baseurl
            .iter_mut()
            .chain(self.gpgkey.iter_mut())
            .chain(self.mirrorlist.iter_mut())
            .chain(self.metalink.iter_mut())
        {
            if !u.contains("://") && !u.starts_with('/') {
                *u = dir.join(&*u).to_string_lossy().into_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_forms() {
        assert_eq!(Expire::parse("3600").unwrap(), Expire::After(Duration::from_secs(3600)));
        assert_eq!(Expire::parse("6h").unwrap(), Expire::After(Duration::from_secs(6 * 3600)));
        assert_eq!(Expire::parse("2d").unwrap(), Expire::After(Duration::from_secs(2 * 86400)));
        assert_eq!(Expire::parse("90m").unwrap(), Expire::After(Duration::from_secs(5400)));
        assert_eq!(Expire::parse("never").unwrap(), Expire::Never);
        assert_eq!(Expire::parse("-1").unwrap(), Expire::Never);
        assert!(Expire::parse("soon").unwrap_err().contains("soon"));
        let e: RepoEntry = serde_json::from_str(r#"{"id": "x", "metadata_expire": 60}"#).unwrap();
        assert_eq!(e.metadata_expire, Some(Expire::After(Duration::from_secs(60))));
    }

    #[test]
    fn one_or_many_values() {
        let e: RepoEntry =
            serde_json::from_str(r#"{"id": "x", "baseurl": "a", "exclude": ["k*", "j"]}"#).unwrap();
        assert_eq!(e.baseurl, ["a"]);
        assert_eq!(e.exclude, ["k*", "j"]);
    }

    #[test]
    fn anchoring_keeps_urls() {
        let mut e = RepoEntry {
            id: "x".into(),
            baseurl: vec!["rel/dir".into(), "/abs".into(), "https://h/p".into(), "file:///f".into()],
            ..Default::default()
        };
        e.anchor(Path::new("/spec"));
        assert_eq!(e.baseurl, ["/spec/rel/dir", "/abs", "https://h/p", "file:///f"]);
    }
}
