//! `strata-imagerpm` wraps an image from the store into an RPM, so images travel the way the
//! rest of a distribution does: through yum/dnf repositories, versioned, queryable and
//! updatable. The package carries the image as a docker-archive (`docker load` and
//! `podman load` read it) under `/usr/share/strata/images/<name>/<tag>.tar`, a JSON record
//! beside it (id, manifest, base, packages inside), and Provides that name the image, its
//! tag, its id, its manifest digest and every RPM bundled inside it, in strata's words and
//! the seed's (`docker-image-NAME`, `docker-image-id`; [`meta::provides`]). An image built
//! FROM another requires its base by the id the base's own RPM provides.
//!
//! The same image always gives the same RPM, byte for byte: identity, timestamps and payload
//! are derived from the image alone.
//!
//! The way back, `strata pull 'rpm:CAPABILITY'`, is here too: [`from_repo`] chooses the
//! image RPM that provides a capability from yum repositories (through `strata-solve`, as
//! dnf would) and fetches it verified, [`unwrap`] loads the image it carries into the store
//! once its id is the one the package claims, and [`pull`] does both.

pub mod from_repo;
pub mod meta;
pub mod pull;
pub mod unwrap;

pub use from_repo::{FindError, RepoQuery};
pub use pull::{pull_from_repos, PullError, PulledRpm, RpmPullReport};
pub use unwrap::{load_image_rpm, UnwrapError, Unwrapped};

use meta::Provide;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use strata_oci::archive::{image_id, save_docker_archive, LayerForm};
use strata_oci::compress::{codec_of_media_type, Codec};
use strata_oci::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
    #[error(transparent)]
    Compose(#[from] strata_compose::Error),
    #[error("writing the RPM: {0}")]
    Rpm(#[from] rpm::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// How the package is named when `WrapOptions::name` does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameStyle {
    /// `container-image-<name>`.
    #[default]
    ContainerImage,
    /// `docker-image-<name>`, as the seed names image RPMs.
    DockerImage,
}

/// What the caller may override; everything else is derived from the image.
#[derive(Debug, Clone, Default)]
pub struct WrapOptions {
    /// Package name; default by `name_style`.
    pub name: Option<String>,
    pub name_style: NameStyle,
    /// Leave out `Requires: container-image-id(BASE)` for an image built FROM a base the
    /// store no longer holds (by default that is an error).
    pub no_base_requires: bool,
    pub version: Option<String>,
    pub release: Option<String>,
    /// Default: the `org.opencontainers.image.licenses` label, else `Unspecified`.
    pub license: Option<String>,
}

/// The RPM written, as `strata rpm --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRpm {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub image: String,
    pub image_id: String,
    pub manifest: String,
    /// Where the archive lands when the RPM is installed.
    pub archive: String,
    pub provides: Vec<String>,
    /// `container-image-id(sha256:…)` of the base image, for an image built FROM one.
    pub requires: Vec<String>,
    pub size: u64,
}

/// The record installed beside the archive.
#[derive(Serialize)]
struct Record<'a> {
    image: &'a str,
    image_id: &'a str,
    manifest: &'a str,
    created: Option<&'a str>,
    base_name: Option<&'a str>,
    base_digest: Option<&'a str>,
    base_image_id: Option<&'a str>,
    packages: Vec<String>,
}

/// Wraps `reference` (`NAME[:TAG]`) into an RPM in `out_dir`, written atomically.
pub fn wrap_image(store: &Store, reference: &str, opts: &WrapOptions, out_dir: &Path) -> Result<ImageRpm, Error> {
    let img = store.resolve(reference)?;
    let Some(tag_ref) = img.reference.clone() else {
        return Err(Error::Invalid(format!("{reference}: name the image by NAME[:TAG]; the RPM's name and Provides come from it")));
    };
    let (image_name, tag) = (tag_ref.name().to_string(), tag_ref.tag().to_string());
    let id = image_id(&img).to_string();
    let id_hex = id.strip_prefix("sha256:").unwrap_or(&id).to_string();
    let manifest = img.manifest_descriptor.digest().to_string();
    let labels = img.config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    let annotations = img.manifest.annotations().clone().unwrap_or_default();
    let created_str = img.config.created().clone();
    let created = created_str.as_deref().and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs());

    let name = opts.name.clone().unwrap_or_else(|| match opts.name_style {
        NameStyle::ContainerImage => meta::default_package_name(&image_name),
        NameStyle::DockerImage => meta::docker_image_name(&image_name),
    });
    let version = opts.version.clone().unwrap_or_else(|| meta::default_version(&tag, labels.get("org.opencontainers.image.version").map(String::as_str)));
    let release = opts.release.clone().unwrap_or_else(|| meta::default_release(created, &id_hex));
    for (what, v) in [("version", &version), ("release", &release)] {
        if !meta::is_rpm_version(v) {
            return Err(Error::Invalid(format!("{what} {v:?}: only letters, digits and . _ + ~ ^ are allowed in an RPM {what}")));
        }
    }
    let license = opts.license.clone().or_else(|| labels.get("org.opencontainers.image.licenses").cloned()).unwrap_or_else(|| "Unspecified".into());
    let arch = strata_rpm::arch::from_oci_arch(&img.config.architecture().to_string(), img.config.variant().as_deref()).to_string();
    let packages = strata_compose::installed_packages(store, &img)?;
    let provides = meta::provides(&image_name, &tag, &version, &release, &arch, &id, &manifest, &packages);
    let base_name = annotations.get("org.opencontainers.image.base.name").map(String::as_str);
    let base_digest = annotations.get("org.opencontainers.image.base.digest").map(String::as_str);
    let base_id = match base_digest {
        Some(digest) if !opts.no_base_requires => Some(base_image_id(store, base_name.unwrap_or("?"), digest, reference)?),
        _ => None,
    };
    let requires: Vec<String> = base_id.iter().map(|id| format!("container-image-id({id})")).collect();

    // gzip layers go in as stored (docker and podman load them; no recompression) and the
    // payload is left to a fast zstd pass; other layers go in plain so zstd does the work.
    let all_gzip = img.manifest.layers().iter().all(|l| codec_of_media_type(l.media_type()) == Some(Codec::Gzip));
    let (form, compression) = if all_gzip {
        (LayerForm::AsStored, rpm::CompressionWithLevel::Zstd(1))
    } else {
        (LayerForm::Uncompressed, rpm::CompressionWithLevel::Zstd(9))
    };
    let archive = save_docker_archive(store, &[reference], form, Vec::new())?;
    let record = Record {
        image: &tag_ref.to_string(),
        image_id: &id,
        manifest: &manifest,
        created: created_str.as_deref(),
        base_name,
        base_digest,
        base_image_id: base_id.as_deref(),
        packages: packages.iter().map(ToString::to_string).collect(),
    };
    let record_json = serde_json::to_vec_pretty(&record).map_err(|e| Error::Invalid(e.to_string()))?;

    let archive_path = meta::archive_path(&image_name, &tag);
    let record_path = meta::record_path(&image_name, &tag);
    let summary = format!("Container image {tag_ref}");
    let description = description(&tag_ref.to_string(), &id, &manifest, &record, &archive_path);
    let config = rpm::BuildConfig::default().compression(compression).source_date(created.unwrap_or(0).min(u64::from(u32::MAX)) as u32);
    let mut builder = rpm::PackageBuilder::new(&name, &version, &license, &arch, &summary);
    builder.using_config(config).release(&release).description(description).build_host("strata");
    for dir in image_dirs(&image_name) {
        builder.with_dir_entry(rpm::FileOptions::dir(dir).permissions(0o755))?;
    }
    builder.with_file_contents(archive, rpm::FileOptions::new(archive_path.clone()).permissions(0o644))?;
    builder.with_file_contents(record_json, rpm::FileOptions::new(record_path).permissions(0o644))?;
    // rpm-rs itself provides `NAME = V-R` and `NAME(ISA) = V-R`, as rpmbuild does: with the
    // docker-image name style those are two of the seed's, given once.
    let own = [name.clone(), format!("{name}({})", meta::isa(&arch))];
    for p in provides.iter().filter(|p| !(p.evr.as_deref() == Some(&format!("{version}-{release}")) && own.contains(&p.name))) {
        builder.provides(dependency(p));
    }
    for r in &requires {
        builder.requires(rpm::Dependency::any(r.clone()));
    }
    let package = builder.build()?;

    let file_name = format!("{name}-{version}-{release}.{arch}.rpm");
    let path = out_dir.join(&file_name);
    // The folder must be one (or absent); the RPM inside follows strata-output's rule, so a
    // link at its name to a device or FIFO is written through or refused, never replaced.
    strata_output::directory(out_dir).map_err(io_err(format!("-o {}", out_dir.display())))?;
    let mut out = strata_output::Output::create(&path).map_err(io_err(format!("writing {}", path.display())))?;
    {
        let mut w = std::io::BufWriter::new(&mut out);
        package.write(&mut w)?;
        w.flush().map_err(io_err(format!("writing {}", path.display())))?;
    }
    out.commit().map_err(io_err(format!("writing {}", path.display())))?;
    let size = std::fs::metadata(&path).map_err(io_err(format!("reading {}", path.display())))?.len();
    Ok(ImageRpm {
        path,
        name,
        version,
        release,
        arch,
        image: tag_ref.to_string(),
        image_id: id,
        manifest,
        archive: archive_path,
        provides: provides.iter().map(ToString::to_string).collect(),
        requires,
        size,
    })
}

/// The id (config digest) of the base image whose manifest digest an image's
/// `org.opencontainers.image.base.digest` records: the id the base's own RPM provides as
/// `container-image-id(…)`. The base must be in the store (tagged or kept by digest).
fn base_image_id(store: &Store, base_name: &str, digest: &str, reference: &str) -> Result<String, Error> {
    let missing = |why: String| {
        Error::Invalid(format!(
            "{reference} was built FROM {base_name} ({digest}), which {why}: its RPM would Require the base's container-image-id,              and only the base image itself tells that id. Pull or build the base into the store again, or give --no-base-requires              to write the RPM without that Requires"
        ))
    };
    let parsed = strata_oci::oci_spec::image::Digest::try_from(digest).map_err(|_| missing("is not a valid digest".into()))?;
    let base = match store.load_manifest(&parsed) {
        Ok(base) => base,
        Err(strata_oci::Error::ImageNotFound(_)) => return Err(missing("is not in the store".into())),
        Err(e) => return Err(missing(format!("cannot be read from the store ({e})"))),
    };
    Ok(image_id(&base).to_string())
}

fn dependency(p: &Provide) -> rpm::Dependency {
    match &p.evr {
        Some(evr) => rpm::Dependency::eq(p.name.clone(), evr.clone()),
        None => rpm::Dependency::any(p.name.clone()),
    }
}

/// The directories between IMAGE_DIR and the archive that this package owns: the image's
/// own (several tags' packages share it, as rpm allows for identical directories).
fn image_dirs(image_name: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut path = meta::IMAGE_DIR.to_string();
    for part in image_name.split('/') {
        path = format!("{path}/{part}");
        dirs.push(path.clone());
    }
    dirs
}

fn description(image: &str, id: &str, manifest: &str, record: &Record<'_>, archive: &str) -> String {
    let mut d = format!("The container image {image}, wrapped by strata.\n\nImage ID: {id}\nManifest: {manifest}\n");
    if let (Some(name), Some(digest)) = (record.base_name, record.base_digest) {
        d.push_str(&format!("Base image: {name} ({digest})\n"));
    }
    d.push_str(&format!("\nLoad it with `docker load -i {archive}` or `podman load -i {archive}`.\n"));
    if !record.packages.is_empty() {
        d.push_str(&format!("\nPackages in the image ({}):\n", record.packages.len()));
        for p in &record.packages {
            d.push_str(&format!("  {p}\n"));
        }
    }
    d
}
