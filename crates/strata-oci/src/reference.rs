//! Image references as the store names images: `NAME[:TAG]`, tag defaulting to `latest`.
//!
//! The grammar follows docker's distribution reference, simplified to what a local store
//! needs: path components of lowercase letters, digits and `._-` separators, optionally led
//! by a registry host (`registry.example.com:5000/team/app`). Names are stored as written,
//! not expanded to `docker.io/library/...`, so `strata` never invents a registry.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The tag used when a reference has none.
pub const DEFAULT_TAG: &str = "latest";

/// `NAME:TAG`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    name: String,
    tag: String,
}

impl ImageRef {
    /// Parses `NAME[:TAG]`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        if s.contains('@') {
            return Err(bad(
                "digest references are not tags; resolve them by digest",
            ));
        }
        // A ':' after the last '/' separates the tag; one before it belongs to a host:port.
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match s[last_slash..].find(':') {
            Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
            None => (s, DEFAULT_TAG),
        };
        Self::new(name, tag).map_err(|e| match e {
            Error::InvalidReference { reason, .. } => bad(reason),
            other => other,
        })
    }

    /// Builds a reference from its parts, validating both.
    pub fn new(name: &str, tag: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidReference {
            reference: format!("{name}:{tag}"),
            reason,
        };
        validate_name(name).map_err(bad)?;
        validate_tag(tag).map_err(bad)?;
        Ok(ImageRef {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

impl FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

fn validate_tag(tag: &str) -> std::result::Result<(), &'static str> {
    let b = tag.as_bytes();
    let ok_first = b
        .first()
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
    let ok_rest = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    if tag.len() > 128 || !ok_first || !ok_rest {
        return Err("tag must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'");
    }
    Ok(())
}

fn validate_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("name must be 1-255 characters");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first component with '.', ':' or equal to "localhost" is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        validate_host(parts.remove(0))?;
    }
    for part in parts {
        validate_component(part)?;
    }
    Ok(())
}

fn validate_host(host: &str) -> std::result::Result<(), &'static str> {
    let (h, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !h.split('.').all(label_ok) {
        return Err("invalid registry host");
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err("invalid registry port");
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`: one path component of an image name, as the
/// distribution reference grammar has it (registry clients check remote names with it too).
pub fn validate_component(c: &str) -> std::result::Result<(), &'static str> {
    const MSG: &str =
        "name components are lowercase letters and digits joined by '.', '_', '__' or '-'";
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return Err(MSG);
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return Err(MSG);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_tags_and_hosts() {
        let r = ImageRef::parse("fedora").unwrap();
        assert_eq!((r.name(), r.tag()), ("fedora", "latest"));
        let r = ImageRef::parse("fedora:41").unwrap();
        assert_eq!((r.name(), r.tag()), ("fedora", "41"));
        let r = ImageRef::parse("localhost:5000/team/app").unwrap();
        assert_eq!((r.name(), r.tag()), ("localhost:5000/team/app", "latest"));
        let r = ImageRef::parse("registry.example.com:5000/a_b/c-d:v1.2_3").unwrap();
        assert_eq!(r.to_string(), "registry.example.com:5000/a_b/c-d:v1.2_3");
    }

    #[test]
    fn refuses_bad_references() {
        for s in [
            "",
            ":tag",
            "Upper",
            "a:",
            "a:-x",
            "a//b",
            "a/",
            "-a",
            "a..b",
            "a@sha256:00",
            "a:b:c",
            "a b",
            "a/../b",
            "host:99999999/a",
        ] {
            assert!(ImageRef::parse(s).is_err(), "{s:?} accepted");
        }
        assert!(ImageRef::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }
}
