//! Transport strings as skopeo and podman spell them (containers-transports(5)).

use crate::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use strata_registry::Reference;

/// Where an image goes to or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `docker://HOST/REPO[:TAG|@DIGEST]`, or a bare `HOST/REPO[:TAG]`: a registry.
    Registry(Reference),
    /// `oci:DIR[:REF]`: an OCI image layout directory; REF is the
    /// `org.opencontainers.image.ref.name`, any string (empty: see [`crate::export`]).
    OciDir { path: PathBuf, reference: Option<String> },
    /// `oci-archive:FILE[:REF]`: a tar of an OCI image layout.
    OciArchive { path: PathBuf, reference: Option<String> },
    /// `docker-archive:FILE[:NAME:TAG|:@N]`: what `docker save` writes.
    DockerArchive { path: PathBuf, image: ArchiveImage },
    /// `docker-daemon:NAME[:TAG]` or `docker-daemon:sha256:ID` (a source only): a running
    /// docker, over its Engine API socket (`$DOCKER_HOST`).
    DockerDaemon { image: String },
    /// `containers-storage:[[DRIVER@]ROOT[+RUNROOT][:OPTIONS]]NAME[:TAG]`: podman's and
    /// buildah's image storage.
    ContainersStorage { storage: Option<StorageSpec>, image: String },
    /// `rpm:CAPABILITY`: an image RPM from a yum repository (a source only). Parsed here so
    /// that every source is named in one place; loading it is `strata pull`'s own.
    Rpm(String),
}

/// Which image of a docker-archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveImage {
    /// None named: as a destination, the store's name; as a source, the only image.
    Unnamed,
    /// `NAME:TAG`.
    Name(String),
    /// `@N`, from 0 (a source only).
    Index(usize),
}

/// A containers-storage location other than the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSpec {
    pub driver: Option<String>,
    pub root: PathBuf,
    pub run_root: Option<PathBuf>,
    /// Driver options, comma-separated in the spec.
    pub options: Vec<String>,
}

/// The transports a string can name, for hints.
pub const KNOWN: &str = "docker://HOST/REPO[:TAG], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG|:@N], docker-daemon:NAME[:TAG], containers-storage:[STORE]NAME[:TAG], rpm:CAPABILITY (pull only), or a bare HOST/REPO[:TAG] for a registry";

/// Transports of containers/image strata does not write or read.
const UNSUPPORTED: &[&str] = &["dir", "docker", "atomic", "ostree", "sif", "tarball"];

impl Transport {
    /// Parses a transport string with skopeo's rules: the transport name up to the first
    /// `:`, and for `oci`, `oci-archive` and `docker-archive` the path up to the next `:`
    /// (paths cannot hold one), the rest being the reference.
    pub fn parse(input: &str) -> Result<Transport> {
        let err = |reason: String| Error::Parse { input: input.to_string(), reason };
        if let Some(rest) = input.strip_prefix("docker://") {
            return Ok(Transport::Registry(Reference::parse(rest).map_err(|e| err(e.to_string()))?));
        }
        let Some((name, rest)) = input.split_once(':') else {
            return registry(input);
        };
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (rest, None),
        };
        let path_of = |what: &str| -> Result<PathBuf> {
            if path.is_empty() {
                return Err(err(format!("{name}: needs a {what}")));
            }
            Ok(PathBuf::from(path))
        };
        match name {
            "oci" | "oci-archive" => {
                let reference = reference.map(str::to_string);
                if let Some(r) = reference.as_deref().filter(|r| !r.is_empty()) {
                    check_ref_name(r).map_err(|reason| err(format!("reference {r:?}: {reason}")))?;
                }
                let what = if name == "oci" { "directory" } else { "file" };
                Ok(if name == "oci" {
                    Transport::OciDir { path: path_of(what)?, reference }
                } else {
                    Transport::OciArchive { path: path_of(what)?, reference }
                })
            }
            "docker-archive" => {
                let image = match reference {
                    None | Some("") => ArchiveImage::Unnamed,
                    Some(r) => match r.strip_prefix('@') {
                        Some(n) => ArchiveImage::Index(n.parse().map_err(|_| err(format!("@{n}: an image index is a number from 0")))?),
                        None => {
                            Reference::parse(r).map_err(|e| err(format!("{r}: {e}")))?;
                            if r.contains('@') {
                                return Err(err(format!("{r}: a docker-archive names images NAME:TAG, not by digest")));
                            }
                            ArchiveImage::Name(r.to_string())
                        }
                    },
                };
                Ok(Transport::DockerArchive { path: path_of("file")?, image })
            }
            "docker-daemon" => {
                if rest.is_empty() {
                    return Err(err("docker-daemon: needs NAME[:TAG] or sha256:ID".into()));
                }
                if let Some(id) = rest.strip_prefix("sha256:") {
                    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(err("an image id is sha256: and 64 hex digits".into()));
                    }
                } else {
                    Reference::parse(rest).map_err(|e| err(e.to_string()))?;
                }
                Ok(Transport::DockerDaemon { image: rest.to_string() })
            }
            "containers-storage" => parse_storage(rest).map_err(err),
            "rpm" => {
                if rest.is_empty() {
                    return Err(err("rpm: needs a capability, e.g. rpm:container-image(web)".into()));
                }
                Ok(Transport::Rpm(rest.to_string()))
            }
            n if UNSUPPORTED.contains(&n) => {
                let hint = if n == "docker" { format!("\nhint: a registry is docker://{rest}") } else { String::new() };
                Err(err(format!("strata does not support the {n}: transport{hint}\nhint: known transports: {KNOWN}")))
            }
            // `localhost:5000/app`, `app:1`: a registry reference with a port or a tag.
            _ if looks_like_reference(name, rest) => registry(input),
            _ => Err(err(format!("unknown transport {name:?}\nhint: known transports: {KNOWN}"))),
        }
    }

    /// Whether `s` starts with a transport name (`oci:`, `docker://`, ...), as opposed to
    /// a file path or a bare registry reference: how `strata save -o` tells the two apart.
    pub fn is_named(s: &str) -> bool {
        s.starts_with("docker://")
            || ["oci", "oci-archive", "docker-archive", "docker-daemon", "containers-storage"].iter().any(|t| s.strip_prefix(t).is_some_and(|r| r.starts_with(':')))
    }

    /// The transport's name as skopeo prints it.
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Registry(_) => "docker",
            Transport::OciDir { .. } => "oci",
            Transport::OciArchive { .. } => "oci-archive",
            Transport::DockerArchive { .. } => "docker-archive",
            Transport::DockerDaemon { .. } => "docker-daemon",
            Transport::ContainersStorage { .. } => "containers-storage",
            Transport::Rpm(_) => "rpm",
        }
    }
}

fn registry(input: &str) -> Result<Transport> {
    Reference::parse(input).map(Transport::Registry).map_err(|e| Error::Parse {
        input: input.to_string(),
        reason: format!("{e}\nhint: known transports: {KNOWN}"),
    })
}

/// Whether `NAME:REST` reads as a registry reference rather than a transport: a host with a
/// port (`localhost:5000/…`) or a name with a tag (`app:1`, `team/app:1`).
fn looks_like_reference(name: &str, rest: &str) -> bool {
    let port = rest.split('/').next().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) && rest.contains('/');
    let tag = !rest.is_empty() && !rest.contains('/') && rest.len() <= 128 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let name_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
    name_ok && (port || tag || name.contains('/'))
}

/// An OCI ref name as the image-spec's annotation rules allow it.
fn check_ref_name(r: &str) -> std::result::Result<(), String> {
    let ok = r.split('/').all(|component| {
        !component.is_empty()
            && component.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:@+".contains(&b))
            && component.as_bytes()[0].is_ascii_alphanumeric()
            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric()
    });
    if ok { Ok(()) } else { Err("an OCI ref name is letters, digits and -._:@+ between them, in /-separated components".into()) }
}

/// `[[DRIVER@]ROOT[+RUNROOT][:OPTIONS]]IMAGE` (the brackets literal), as containers/image's
/// storage transport parses it.
fn parse_storage(rest: &str) -> std::result::Result<Transport, String> {
    let (storage, image) = match rest.strip_prefix('[') {
        Some(inner) => {
            let (spec, image) = inner.split_once(']').ok_or("a storage specifier [..] has no closing ]")?;
            let (driver, spec) = match spec.split_once('@') {
                Some((d, s)) if d.is_empty() => return Err(format!("empty driver in [{d}@{s}]")),
                Some((d, s)) => (Some(d.to_string()), s),
                None => (None, spec),
            };
            let (spec, options) = match spec.split_once(':') {
                Some((s, o)) => (s, o.split(',').filter(|o| !o.is_empty()).map(String::from).collect()),
                None => (spec, Vec::new()),
            };
            let (root, run_root) = match spec.split_once('+') {
                Some((r, rr)) => (r, Some(PathBuf::from(rr))),
                None => (spec, None),
            };
            if !root.starts_with('/') {
                return Err(format!("the storage root {root:?} must be an absolute path"));
            }
            (Some(StorageSpec { driver, root: PathBuf::from(root), run_root, options }), image)
        }
        None => (None, rest),
    };
    if image.is_empty() {
        return Err("containers-storage: needs an image NAME[:TAG]".into());
    }
    Ok(Transport::ContainersStorage { storage, image: image.to_string() })
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_ref = |f: &mut fmt::Formatter<'_>, kind: &str, path: &PathBuf, r: &Option<String>| match r {
            Some(r) => write!(f, "{kind}:{}:{r}", path.display()),
            None => write!(f, "{kind}:{}", path.display()),
        };
        match self {
            Transport::Registry(r) => write!(f, "docker://{r}"),
            Transport::OciDir { path, reference } => with_ref(f, "oci", path, reference),
            Transport::OciArchive { path, reference } => with_ref(f, "oci-archive", path, reference),
            Transport::DockerArchive { path, image } => match image {
                ArchiveImage::Unnamed => write!(f, "docker-archive:{}", path.display()),
                ArchiveImage::Name(n) => write!(f, "docker-archive:{}:{n}", path.display()),
                ArchiveImage::Index(i) => write!(f, "docker-archive:{}:@{i}", path.display()),
            },
            Transport::DockerDaemon { image } => write!(f, "docker-daemon:{image}"),
            Transport::ContainersStorage { storage, image } => {
                write!(f, "containers-storage:")?;
                if let Some(s) = storage {
                    write!(f, "[{}", s.driver.as_deref().map(|d| format!("{d}@")).unwrap_or_default())?;
                    write!(f, "{}", s.root.display())?;
                    if let Some(rr) = &s.run_root {
                        write!(f, "+{}", rr.display())?;
                    }
                    if !s.options.is_empty() {
                        write!(f, ":{}", s.options.join(","))?;
                    }
                    write!(f, "]")?;
                }
                write!(f, "{image}")
            }
            Transport::Rpm(c) => write!(f, "rpm:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Transport {
        Transport::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> String {
        Transport::parse(s).expect_err(s).to_string()
    }

    #[test]
    fn registry_forms() {
        for s in ["docker://localhost:5000/web:1", "localhost:5000/web:1", "quay.io/team/app", "busybox:latest", "busybox", "team/app:1"] {
            assert!(matches!(p(s), Transport::Registry(_)), "{s}");
        }
        let Transport::Registry(r) = p("docker://localhost:5000/web@sha256:0000000000000000000000000000000000000000000000000000000000000000") else { panic!() };
        assert!(r.digest().is_some());
        assert_eq!(p("localhost:5000/web:1").to_string(), "docker://localhost:5000/web:1");
    }

    #[test]
    fn oci_forms_split_at_the_first_colon() {
        assert_eq!(p("oci:/tmp/l"), Transport::OciDir { path: "/tmp/l".into(), reference: None });
        assert_eq!(p("oci:/tmp/l:"), Transport::OciDir { path: "/tmp/l".into(), reference: Some(String::new()) });
        assert_eq!(p("oci:/tmp/l:web:1"), Transport::OciDir { path: "/tmp/l".into(), reference: Some("web:1".into()) });
        assert_eq!(p("oci-archive:x.tar:latest"), Transport::OciArchive { path: "x.tar".into(), reference: Some("latest".into()) });
        assert!(refused("oci::x").contains("needs a directory"));
        assert!(refused("oci:/l:bad ref").contains("OCI ref name"));
        assert_eq!(p("oci-archive:x.tar:latest").to_string(), "oci-archive:x.tar:latest");
    }

    #[test]
    fn docker_archive_forms() {
        assert_eq!(p("docker-archive:a.tar"), Transport::DockerArchive { path: "a.tar".into(), image: ArchiveImage::Unnamed });
        assert_eq!(p("docker-archive:a.tar:web:1"), Transport::DockerArchive { path: "a.tar".into(), image: ArchiveImage::Name("web:1".into()) });
        assert_eq!(p("docker-archive:a.tar:@2"), Transport::DockerArchive { path: "a.tar".into(), image: ArchiveImage::Index(2) });
        assert!(refused("docker-archive:a.tar:@x").contains("a number"));
    }

    #[test]
    fn daemon_storage_and_rpm() {
        assert_eq!(p("docker-daemon:web:1"), Transport::DockerDaemon { image: "web:1".into() });
        let id = format!("docker-daemon:sha256:{}", "a".repeat(64));
        assert!(matches!(p(&id), Transport::DockerDaemon { .. }));
        assert!(refused("docker-daemon:sha256:abc").contains("64 hex"));
        assert_eq!(p("containers-storage:web:1"), Transport::ContainersStorage { storage: None, image: "web:1".into() });
        let s = "containers-storage:[vfs@/tmp/r+/tmp/rr:a=b,c]localhost/web:1";
        assert_eq!(
            p(s),
            Transport::ContainersStorage {
                storage: Some(StorageSpec { driver: Some("vfs".into()), root: "/tmp/r".into(), run_root: Some("/tmp/rr".into()), options: vec!["a=b".into(), "c".into()] }),
                image: "localhost/web:1".into()
            }
        );
        assert_eq!(p(s).to_string(), s);
        assert!(refused("containers-storage:[rel/root]web").contains("absolute"));
        assert_eq!(p("rpm:container-image(web)"), Transport::Rpm("container-image(web)".into()));
    }

    #[test]
    fn unknown_transports_list_the_known_ones() {
        for s in ["oci-achive:/tmp/x.tar", "dockr-archive:/a.tar:web:1", "s3:/bucket"] {
            let e = refused(s);
            assert!(e.contains("unknown transport") && e.contains("oci-archive:FILE"), "{s}: {e}");
        }
        assert!(refused("dir:/tmp/x").contains("does not support the dir: transport"));
        assert!(refused("docker:web:1").contains("docker://web:1"));
    }
}
