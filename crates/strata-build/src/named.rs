//! Named build contexts, docker buildx's `--build-context NAME=VALUE`:
//! `NAME=docker-image://REF` makes a FROM, `COPY --from=` or `RUN --mount=from=` that names
//! NAME use the image REF instead; `NAME=DIR` (a local directory) is what `COPY --from=NAME`
//! and `RUN --mount=from=NAME` read.
//!
//! Names are matched as buildx matches them: both sides are references, compared in their
//! familiar form with `:latest` dropped — `web`, `web:latest` and `docker.io/library/web`
//! are one name, `web:1` is another, and `HOST/web` (with a registry) never matches `web`.
//! A name that is a stage of the Dockerfile still means the stage (replacing a stage, which
//! BuildKit does, is refused).

use crate::Error;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use strata_oci::oci_spec::image::Digest;
use strata_oci::reference::ImageRef;

const FLAG: &str = "--build-context";
const IMAGE_SCHEME: &str = "docker-image://";

/// What a named context stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// `docker-image://REF`: the image REF (`NAME[:TAG]`, `NAME@sha256:...`).
    Image(String),
    /// A local directory.
    Dir(PathBuf),
}

#[derive(Debug, Clone)]
pub(crate) struct NamedContext {
    /// The name as given on the command line.
    pub name: String,
    pub source: ContextSource,
}

/// The named contexts of one build, by matching key.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamedContexts {
    by_key: BTreeMap<String, NamedContext>,
    used: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

/// The key a reference is matched by: docker's familiar form (`docker.io/` and
/// `docker.io/library/` dropped), without a trailing `:latest`.
pub(crate) fn match_key(reference: &str) -> String {
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let mut s = name_tag;
    for domain in ["docker.io/", "index.docker.io/"] {
        if let Some(rest) = s.strip_prefix(domain) {
            s = rest;
            break;
        }
    }
    // `library/web` is docker's `web`, unless it has more path components.
    if let Some(rest) = s.strip_prefix("library/").filter(|r| !r.contains('/')) {
        s = rest;
    }
    match digest {
        Some(d) => format!("{s}@{d}"),
        None => s.strip_suffix(":latest").unwrap_or(s).to_string(),
    }
}

/// Checks `NAME[:TAG][@DIGEST]` (the grammar of strata's references).
fn check_reference(r: &str) -> Result<(), String> {
    let (name_tag, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    ImageRef::parse(name_tag).map_err(|e| e.to_string())?;
    if let Some(d) = digest {
        Digest::from_str(d).map_err(|e| format!("bad digest {d:?}: {e}"))?;
    }
    Ok(())
}

/// One `--build-context` value, `NAME=docker-image://REF` or `NAME=DIR`.
pub fn parse_build_context(value: &str) -> Result<(String, String), String> {
    let (name, source) = value.split_once('=').ok_or_else(|| format!("{FLAG} {value}: expected NAME=docker-image://REF (or NAME=DIR)"))?;
    check(name, source).map_err(|e| format!("{FLAG} {value}: {e}"))?;
    Ok((name.to_string(), source.to_string()))
}

/// Every `--build-context` of a command line, as [`crate::BuildOptions::contexts`] takes
/// them; a name given twice (also as `web` and `web:latest`) is refused.
pub fn parse_build_contexts(values: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for v in values {
        let (name, source) = parse_build_context(v)?;
        if let Some(first) = keys.insert(match_key(&name), name.clone()) {
            return Err(format!("{FLAG} {v}: the name {name} was given already (as {first})"));
        }
        out.insert(name, source);
    }
    Ok(out)
}

fn check(name: &str, source: &str) -> Result<ContextSource, String> {
    if name.is_empty() {
        return Err("the NAME before '=' is empty".into());
    }
    check_reference(name).map_err(|e| format!("the name {name:?} is not an image reference: {e}"))?;
    if let Some(r) = source.strip_prefix(IMAGE_SCHEME) {
        if r.is_empty() {
            return Err(format!("no reference after {IMAGE_SCHEME}"));
        }
        check_reference(r).map_err(|e| format!("{r:?} is not an image reference (NAME[:TAG] or NAME@sha256:...): {e}"))?;
        return Ok(ContextSource::Image(r.to_string()));
    }
    if let Some((scheme, _)) = source.split_once("://") {
        return Err(format!("{scheme}:// contexts are not supported; accepted: NAME=docker-image://REF or NAME=DIR (a local directory)"));
    }
    if source.is_empty() {
        return Err("nothing after '='; expected docker-image://REF or a local directory".into());
    }
    let dir = PathBuf::from(source);
    if !dir.is_dir() {
        return Err(format!("{source} is not a directory (an image is docker-image://REF)"));
    }
    Ok(ContextSource::Dir(dir))
}

impl NamedContexts {
    /// Checks [`crate::BuildOptions::contexts`] against each other and the Dockerfile's
    /// stage names.
    pub fn new(contexts: &BTreeMap<String, String>, stage_names: &[&str]) -> Result<NamedContexts, Error> {
        let mut by_key: BTreeMap<String, NamedContext> = BTreeMap::new();
        for (name, source) in contexts {
            let bad = |m: String| Error::BuildContext(format!("{FLAG} {name}={source}: {m}"));
            let source = check(name, source).map_err(bad)?;
            let key = match_key(name);
            if stage_names.contains(&key.as_str()) {
                return Err(bad(format!("{key} is a stage of the Dockerfile; replacing a stage is not supported")));
            }
            if let Some(other) = by_key.get(&key) {
                return Err(bad(format!("the name {name} was given already (as {})", other.name)));
            }
            by_key.insert(key, NamedContext { name: name.clone(), source });
        }
        Ok(NamedContexts { by_key, used: Default::default() })
    }

    /// The context a FROM or `--from` reference (after expansion) names, if any.
    pub fn get(&self, reference: &str) -> Option<&NamedContext> {
        let key = match_key(reference);
        let c = self.by_key.get(&key)?;
        self.used.borrow_mut().insert(key);
        Some(c)
    }

    /// The names no FROM, `COPY --from` or `RUN --mount=from=` of the build used.
    pub fn unused(&self) -> Vec<&str> {
        let used = self.used.borrow();
        self.by_key.iter().filter(|(k, _)| !used.contains(*k)).map(|(_, c)| c.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn names_match_as_buildx_matches_them() {
        assert_eq!(match_key("alpine"), "alpine");
        assert_eq!(match_key("alpine:latest"), "alpine");
        assert_eq!(match_key("docker.io/library/alpine:latest"), "alpine");
        assert_eq!(match_key("index.docker.io/library/alpine"), "alpine");
        assert_eq!(match_key("library/alpine"), "alpine");
        assert_eq!(match_key("docker.io/team/app:latest"), "team/app");
        assert_eq!(match_key("library/team/app"), "library/team/app");
        assert_eq!(match_key("alpine:3"), "alpine:3");
        assert_eq!(match_key("registry:5000/web:latest"), "registry:5000/web");
        assert_eq!(match_key("registry:5000/web"), "registry:5000/web");
        assert_ne!(match_key("registry:5000/web"), match_key("web"));
        assert_eq!(match_key(&format!("alpine@{D}")), format!("alpine@{D}"));
        assert_eq!(match_key(&format!("alpine:latest@{D}")), format!("alpine:latest@{D}"));
    }

    #[test]
    fn image_contexts_parse() {
        let (n, s) = parse_build_context(&format!("registry:5000/web:latest=docker-image://registry:5000/web@{D}")).unwrap();
        assert_eq!(n, "registry:5000/web:latest");
        assert_eq!(check(&n, &s).unwrap(), ContextSource::Image(format!("registry:5000/web@{D}")));
        assert_eq!(check("alpine", "docker-image://alpine:3.20").unwrap(), ContextSource::Image("alpine:3.20".into()));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check("src", dir.path().to_str().unwrap()).unwrap(), ContextSource::Dir(dir.path().to_path_buf()));
    }

    #[test]
    fn bad_contexts_are_refused_naming_the_flag() {
        for (value, says) in [
            ("alpine", "expected NAME=docker-image://REF"),
            ("=docker-image://alpine", "NAME before '=' is empty"),
            ("alpine=docker-image://", "no reference after docker-image://"),
            ("alpine=docker-image://Alpine", "not an image reference"),
            ("alpine=docker-image://alpine@sha256:12", "bad digest"),
            ("alpine=docker-image://alpine:", "not an image reference"),
            ("Alpine=docker-image://alpine", "not an image reference"),
            ("alpine=oci-layout:///tmp/x", "oci-layout:// contexts are not supported; accepted: NAME=docker-image://REF"),
            ("alpine=https://example.org/x.git", "https:// contexts are not supported"),
            ("alpine=/nonexistent/dir", "is not a directory"),
            ("alpine=", "nothing after '='"),
        ] {
            let e = parse_build_context(value).unwrap_err();
            assert!(e.starts_with(&format!("--build-context {value}: ")), "{e}");
            assert!(e.contains(says), "{value}: {e}");
        }
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        let one = format!("web=docker-image://web@{D}");
        for second in ["web=docker-image://web:2", "web:latest=docker-image://web:2", "docker.io/library/web=docker-image://web:2"] {
            let e = parse_build_contexts(&[one.clone(), second.to_string()]).unwrap_err();
            assert!(e.starts_with(&format!("--build-context {second}: ")) && e.contains("given already (as web)"), "{e}");
        }
        let both = parse_build_contexts(&[one, "web:1=docker-image://web:2".into()]).unwrap();
        assert_eq!(both.len(), 2);
        let lib = NamedContexts::new(&BTreeMap::from([("web".to_string(), "docker-image://a".to_string()), ("web:latest".to_string(), "docker-image://b".to_string())]), &[]);
        assert!(lib.unwrap_err().to_string().contains("given already"));
    }

    #[test]
    fn lookups_follow_the_matching_and_count_use() {
        let given = BTreeMap::from([("registry:5000/web:latest".to_string(), format!("docker-image://registry:5000/web@{D}")), ("tools".to_string(), "docker-image://tools:2".to_string())]);
        let c = NamedContexts::new(&given, &["build"]).unwrap();
        assert!(c.get("registry:5000/web:1").is_none());
        assert!(c.get("web").is_none());
        assert_eq!(c.unused(), vec!["registry:5000/web:latest", "tools"]);
        assert_eq!(c.get("registry:5000/web").unwrap().source, ContextSource::Image(format!("registry:5000/web@{D}")));
        assert_eq!(c.unused(), vec!["tools"]);
        assert!(c.get("tools:latest").is_some());
        assert!(c.unused().is_empty());
        let stage = NamedContexts::new(&BTreeMap::from([("build".to_string(), "docker-image://x".to_string())]), &["build"]).unwrap_err();
        assert!(stage.to_string().contains("--build-context build=docker-image://x: build is a stage of the Dockerfile"), "{stage}");
    }
}
