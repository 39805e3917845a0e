//! Remote image references as docker writes them: `[registry[:port]/]path[:tag][@digest]`.
//!
//! Normalisation follows docker's `ParseNormalizedNamed`: a first component is a registry
//! when it contains `.` or `:`, is `localhost`, or has an uppercase letter; otherwise the
//! registry is `docker.io`, where a single-component path gets `library/`. The tag defaults
//! to `latest` only when there is no digest. Unlike strata-oci's store names, these are
//! always expanded, because a registry must be contacted under one definite name.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;
use strata_oci::oci_spec::image::Digest;

/// The registry of references that name none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag of references that name neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Where docker.io's registry API actually lives.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A parsed, normalised remote image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference; see the module docs.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(parse_digest(d).map_err(bad)?)),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].find(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(bad)?;
        }
        let (registry, path) = split_registry(name);
        validate_host(registry).map_err(bad)?;
        let registry = normalize_registry(registry);
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        validate_path(&repository).map_err(bad)?;
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad("name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Builds a reference from parts already split; validates them like [`Reference::parse`].
    pub fn new(registry: &str, repository: &str, tag: Option<&str>) -> Result<Reference> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s = format!("{s}:{t}");
        }
        Reference::parse(&s)
    }

    /// The registry as references name it (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What the manifest endpoint is asked for: the digest when there is one (it pins the
    /// content; a tag beside it is informational, as in docker), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository under another tag, without digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag).map_err(|reason| Error::InvalidReference {
            reference: format!("{}/{}:{tag}", self.registry, self.repository),
            reason: reason.to_string(),
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest` (the tag, if any, is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository under another path on the same registry (for cross-repository
    /// mounts, which only work within one registry).
    pub fn in_repository(&self, repository: &str) -> Result<Reference> {
        Reference::new(&self.registry, repository, self.tag.as_deref())
    }
}

/// Host (and port) the registry's HTTP API is reached at.
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// The names docker.io goes by in references and auth files.
pub(crate) fn normalize_registry(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY.to_string()
        }
        other => other.to_string(),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

/// Splits off the registry the way docker's `splitDockerDomain` does.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn parse_digest(d: &str) -> std::result::Result<Digest, &'static str> {
    let (algo, hex) = d.split_once(':').ok_or("digest must be ALGORITHM:HEX")?;
    if algo != "sha256" {
        return Err("only sha256 digests are supported");
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("a sha256 digest is 64 lowercase hex digits");
    }
    Digest::try_from(d).map_err(|_| "malformed digest")
}

/// `[\w][\w.-]{0,127}`
fn validate_tag(tag: &str) -> std::result::Result<(), &'static str> {
    let b = tag.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    if b.is_empty()
        || b.len() > 128
        || !word(&b[0])
        || !b.iter().all(|c| word(c) || *c == b'.' || *c == b'-')
    {
        return Err("tag must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'");
    }
    Ok(())
}

/// A host name, IPv4 address or bracketed IPv6 address, with an optional port.
fn validate_host(host: &str) -> std::result::Result<(), &'static str> {
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("unclosed '[' in registry")?;
        if v6.is_empty() || !v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return Err("invalid IPv6 registry address");
        }
        match after {
            "" => ("", None),
            p => (
                "",
                Some(p.strip_prefix(':').ok_or("junk after IPv6 address")?),
            ),
        }
    } else {
        match host.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let bracketed = h.is_empty() && host.starts_with('[');
    if !bracketed && !h.split('.').all(label_ok) {
        return Err("invalid registry host");
    }
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err("invalid registry port");
        }
    }
    Ok(())
}

/// Components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
fn validate_path(path: &str) -> std::result::Result<(), &'static str> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository names must be lowercase");
    }
    for c in path.split('/') {
        strata_oci::reference::validate_component(c)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (
            r.registry().to_string(),
            r.repository().to_string(),
            r.tag().map(str::to_string),
            r.digest().map(|d| d.to_string()),
        )
    }

    fn p(
        reg: &str,
        repo: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> (String, String, Option<String>, Option<String>) {
        (
            reg.into(),
            repo.into(),
            tag.map(Into::into),
            digest.map(Into::into),
        )
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            parts("busybox"),
            p("docker.io", "library/busybox", Some("latest"), None)
        );
        assert_eq!(
            parts("busybox:1.36"),
            p("docker.io", "library/busybox", Some("1.36"), None)
        );
        assert_eq!(
            parts("user/app"),
            p("docker.io", "user/app", Some("latest"), None)
        );
        assert_eq!(
            parts("docker.io/busybox"),
            p("docker.io", "library/busybox", Some("latest"), None)
        );
        assert_eq!(
            parts("index.docker.io/user/app:v1"),
            p("docker.io", "user/app", Some("v1"), None)
        );
        assert_eq!(
            parts("localhost:5000/x"),
            p("localhost:5000", "x", Some("latest"), None)
        );
        assert_eq!(parts("localhost/x:t"), p("localhost", "x", Some("t"), None));
        assert_eq!(
            parts("127.0.0.1:5000/ns/img:tag"),
            p("127.0.0.1:5000", "ns/img", Some("tag"), None)
        );
        assert_eq!(
            parts("registry.example/ns/img:tag"),
            p("registry.example", "ns/img", Some("tag"), None)
        );
        assert_eq!(
            parts("quay.io/a/b/c"),
            p("quay.io", "a/b/c", Some("latest"), None)
        );
        assert_eq!(
            parts("Example/img"),
            p("Example", "img", Some("latest"), None)
        );
        assert_eq!(
            parts("[::1]:5000/img"),
            p("[::1]:5000", "img", Some("latest"), None)
        );
        // A single component that is not a host stays a docker.io name; a dotted one is a
        // registry only when followed by a path.
        assert_eq!(
            parts("my.app"),
            p("docker.io", "library/my.app", Some("latest"), None)
        );
    }

    #[test]
    fn digests_pin_and_suppress_the_default_tag() {
        assert_eq!(
            parts(&format!("busybox@{D}")),
            p("docker.io", "library/busybox", None, Some(D))
        );
        assert_eq!(
            parts(&format!("reg.example:443/a/b:1.0@{D}")),
            p("reg.example:443", "a/b", Some("1.0"), Some(D))
        );
        let r = Reference::parse(&format!("reg.example/a:1@{D}")).unwrap();
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("reg.example/a:1@{D}"));
        let r = Reference::parse("reg.example/a").unwrap();
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(r.to_string(), "reg.example/a:latest");
    }

    #[test]
    fn refuses_malformed_references() {
        for s in [
            "",
            ":tag",
            "Upper",
            "docker.io/Upper/x",
            "a:",
            "a:-x",
            "a//b",
            "a/",
            "/a",
            "-a",
            "a..b",
            "a@sha256:00",
            "a@md5:d41d8cd98f00b204e9800998ecf8427e",
            "a@sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "a:b:c",
            "a b",
            "host:99999999/a",
            "ho_st.example/a",
            "[::1/a",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?} accepted");
        }
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
        assert!(Reference::parse(&format!("reg.example/{}", "a".repeat(250))).is_err());
        let e = Reference::parse("a@sha512:00").unwrap_err().to_string();
        assert!(e.contains("only sha256"), "{e}");
    }

    #[test]
    fn builders_keep_the_registry() {
        let r = Reference::parse("localhost:5000/a/b:1").unwrap();
        assert_eq!(r.with_tag("2").unwrap().to_string(), "localhost:5000/a/b:2");
        assert!(r.with_tag("-bad").is_err());
        let d = Digest::try_from(D).unwrap();
        assert_eq!(r.with_digest(d).manifest_reference(), D);
        assert_eq!(
            r.in_repository("c").unwrap().to_string(),
            "localhost:5000/c:1"
        );
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }
}
