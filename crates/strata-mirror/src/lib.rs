//! `strata-mirror` publishes images from the store as what a plain ftp/http mirror serves,
//! the way distributions publish their container images:
//!
//! ```text
//! MIRROR/
//!   NAME/VERSION/NAME-VERSION.ARCH.tar.xz   docker-archive, xz (`docker load < FILE`)
//!   NAME/VERSION/CHECKSUM                   SHA256 lines, optionally clear-signed
//!   rpms/docker-image-NAME-V-R.ARCH.rpm     the image as an RPM (strata-imagerpm)
//!   rpms/repodata/                          yum/dnf metadata, written by strata
//!   index.json, index.html                  every image, version, digest and size
//! ```
//!
//! One publisher at a time (a lock file), every file through a temporary and a rename, and
//! the order that keeps the tree consistent if the process dies at any point: archives,
//! CHECKSUM files and RPMs first, then the repository metadata (repomd.xml last of it),
//! then index.json and index.html, so an index or repomd.xml never names a file that is
//! not there. A manifest digest the index already lists is skipped: republishing unchanged
//! images rewrites nothing.
//!
//! Modules by responsibility: [`tree`] (the folder, lock, atomic writes), [`archive`],
//! [`checksum`], [`repodata`], [`index`]; this file is the operation itself.

pub mod archive;
pub mod checksum;
pub mod index;
pub mod names;
pub mod repodata;
pub mod tree;

use index::{FileRef, ImageEntry, Index, Published, Repository, RpmRef, INDEX_HTML, INDEX_JSON};
use serde::Serialize;
use std::path::{Path, PathBuf};
use strata_imagerpm::{NameStyle, WrapOptions};
use strata_oci::store::Store;
use tree::{Outcome, Tree};

/// The folder of the yum repository inside the mirror.
pub const RPMS_DIR: &str = "rpms";
/// Where checksums of the repository's RPMs are remembered between publishes.
const HASH_CACHE: &str = ".strata-mirror-rpms.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InTheWay(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
    #[error("wrapping the image as an RPM: {0}")]
    ImageRpm(#[from] strata_imagerpm::Error),
}

/// How to publish.
#[derive(Debug, Default)]
pub struct Options {
    /// Links in index.html and index.json absolute under this URL (checked by
    /// [`index::check_base_url`]); relative without it.
    pub base_url: Option<String>,
    /// Clear-signs every CHECKSUM file written.
    pub signer: Option<checksum::Signer>,
    /// xz preset of the archives ([`archive::DEFAULT_XZ_PRESET`] when `None`).
    pub xz_preset: Option<u32>,
}

/// What happened to one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// As given: `NAME[:TAG]`.
    pub reference: String,
    /// Its folder in the mirror.
    pub name: String,
    pub version: String,
    pub arch: String,
    pub manifest: String,
    pub image_id: String,
    /// `published`, or `unchanged` when the index already listed this manifest.
    pub status: &'static str,
    pub archive: String,
    pub checksum: String,
    pub rpm: String,
}

/// What a publish did, as `strata publish --json` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub mirror: PathBuf,
    pub images: Vec<ImageReport>,
    /// Files written (new or changed), relative to the mirror, in the order written.
    pub written: Vec<String>,
    /// Files that already held exactly what would have been written.
    pub unchanged: Vec<String>,
    /// Old repository metadata removed.
    pub removed: Vec<String>,
}

impl Report {
    fn note(&mut self, rel: &str, outcome: Outcome, progress: &mut dyn FnMut(&str)) {
        match outcome {
            Outcome::Written => {
                progress(&format!("wrote {rel}"));
                self.written.push(rel.to_string());
            }
            Outcome::Unchanged => self.unchanged.push(rel.to_string()),
        }
    }
}

/// One image to publish, checked and read from the store before anything is written.
struct Planned {
    reference: String,
    store_name: String,
    tag: String,
    folder: String,
    version: String,
    arch: String,
    manifest: String,
    image_id: String,
}

fn plan(store: &Store, reference: &str) -> Result<Planned, Error> {
    let parsed = names::parse_reference(reference)?;
    let img = store.resolve(&parsed.reference).map_err(|e| match e {
        strata_oci::Error::ImageNotFound(_) => Error::Invalid(format!("{e}\n  hint: `strata images` lists the store's images; compose, build or pull {} first", parsed.reference)),
        e => Error::Oci(e),
    })?;
    let labels = img.config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    let version = strata_imagerpm::meta::default_version(&parsed.tag, labels.get("org.opencontainers.image.version").map(String::as_str));
    let arch = strata_rpm::arch::from_oci_arch(&img.config.architecture().to_string(), img.config.variant().as_deref()).to_string();
    Ok(Planned {
        reference: parsed.reference,
        store_name: parsed.name,
        tag: parsed.tag,
        folder: parsed.folder,
        version,
        arch,
        manifest: img.manifest_descriptor.digest().to_string(),
        image_id: strata_oci::archive::image_id(&img).to_string(),
    })
}

/// Publishes `references` (`NAME[:TAG]`, from `store`) into the mirror folder `mirror`.
/// `progress` gets one line per step worth telling a person about.
pub fn publish(store: &Store, references: &[String], mirror: &Path, opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report, Error> {
    let base_url = opts.base_url.as_deref().map(index::check_base_url).transpose()?;
    // Every image is checked and found before the mirror is touched.
    let mut planned = Vec::new();
    for r in references {
        let p = plan(store, r)?;
        if let Some(other) = planned.iter().find(|o: &&Planned| o.folder == p.folder && o.store_name != p.store_name) {
            return Err(names::collision(&p.folder, &other.store_name, &p.store_name));
        }
        planned.push(p);
    }
    let tree = Tree::open(mirror, &mut |lock| progress(&format!("waiting for another publisher ({} is locked)", lock.display())))?;
    let mut report = Report { mirror: mirror.to_path_buf(), ..Default::default() };
    tree.check_file_slot(INDEX_HTML)?;
    let old_json = match tree.check_file_slot(INDEX_JSON)? {
        Some(_) => Some(std::fs::read(tree.path(INDEX_JSON)).map_err(|source| Error::Io { context: format!("reading {}", tree.path(INDEX_JSON).display()), source })?),
        None => None,
    };
    let mut index = Index::parse(old_json.as_deref(), &tree.path(INDEX_JSON))?;
    for p in &planned {
        if let Some(entry) = index.images.get(&p.folder).filter(|e| e.image != p.store_name) {
            return Err(names::collision(&p.folder, &entry.image, &p.store_name));
        }
    }

    for p in &planned {
        if let Some((version, arch, published)) = already_published(&tree, &index, p) {
            progress(&format!("{}: {} already published as {}/{version} ({arch})", p.reference, p.manifest, p.folder));
            report.images.push(image_report(p, &version, &arch, &published, "unchanged"));
            continue;
        }
        progress(&format!("{}: publishing {} as {}/{} ({})", p.reference, p.manifest, p.folder, p.version, p.arch));
        let published = publish_one(&tree, store, p, base_url.as_deref(), opts, &mut report, progress)?;
        let entry = index.images.entry(p.folder.clone()).or_insert_with(|| ImageEntry { image: p.store_name.clone(), ..Default::default() });
        entry.versions.entry(p.version.clone()).or_default().insert(p.arch.clone(), published.clone());
        let size = write_checksum(&tree, &index, &p.folder, &p.version, opts.signer.as_ref(), &mut report, progress)?;
        // One CHECKSUM per version folder, shared by its arches.
        for e in index.images.get_mut(&p.folder).and_then(|i| i.versions.get_mut(&p.version)).into_iter().flat_map(|a| a.values_mut()) {
            e.checksum.size = size;
        }
        let published = index.images[&p.folder].versions[&p.version][&p.arch].clone();
        report.images.push(image_report(p, &p.version, &p.arch, &published, "published"));
    }

    let cache_rel = format!("{RPMS_DIR}/{HASH_CACHE}");
    let mut cache: repodata::HashCache = match tree.check_file_slot(&cache_rel)? {
        Some(_) => std::fs::read(tree.path(&cache_rel)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default(),
        None => Default::default(),
    };
    let repo = repodata::update(&tree, RPMS_DIR, &mut cache)?;
    for rel in &repo.written {
        progress(&format!("wrote {rel}"));
    }
    report.written.extend(repo.written);
    report.removed.extend(repo.removed);
    tree.write(&cache_rel, &serde_json::to_vec(&cache).expect("the cache serializes"))?;

    // Links follow the base URL of this publish, for old entries too.
    index.base_url = base_url.clone();
    for img in index.images.values_mut() {
        for p in img.versions.values_mut().flat_map(|a| a.values_mut()) {
            for f in [&mut p.archive, &mut p.checksum, &mut p.rpm.file] {
                f.href = Index::href(base_url.as_deref(), &f.path);
            }
        }
    }
    index.repository = Repository { path: format!("{RPMS_DIR}/"), href: Index::href(base_url.as_deref(), &format!("{RPMS_DIR}/")), packages: repo.packages };
    let outcome = tree.write(INDEX_JSON, &index.to_json())?;
    report.note(INDEX_JSON, outcome, progress);
    let outcome = tree.write(INDEX_HTML, index.to_html().as_bytes())?;
    report.note(INDEX_HTML, outcome, progress);
    Ok(report)
}

/// The index's entry for this manifest digest, when every file it names is still there
/// with its recorded size (a file removed by hand is published again).
fn already_published(tree: &Tree, index: &Index, p: &Planned) -> Option<(String, String, Published)> {
    let (_, version, arch, published) = index.entries().find(|(name, _, _, e)| *name == p.folder && e.manifest == p.manifest)?;
    let present = |f: &FileRef| matches!(tree.check_file_slot(&f.path), Ok(Some(md)) if md.len() == f.size);
    (present(&published.archive) && present(&published.checksum) && present(&published.rpm.file)).then(|| (version.to_string(), arch.to_string(), published.clone()))
}

fn image_report(p: &Planned, version: &str, arch: &str, e: &Published, status: &'static str) -> ImageReport {
    ImageReport {
        reference: p.reference.clone(),
        name: p.folder.clone(),
        version: version.to_string(),
        arch: arch.to_string(),
        manifest: p.manifest.clone(),
        image_id: p.image_id.clone(),
        status,
        archive: e.archive.path.clone(),
        checksum: e.checksum.path.clone(),
        rpm: e.rpm.file.path.clone(),
    }
}

/// The archive and the RPM of one image; they are made at once (xz and zstd each keep a
/// core busy).
fn publish_one(tree: &Tree, store: &Store, p: &Planned, base_url: Option<&str>, opts: &Options, report: &mut Report, progress: &mut dyn FnMut(&str)) -> Result<Published, Error> {
    let dir = format!("{}/{}", p.folder, p.version);
    tree.ensure_dir(&dir)?;
    let archive_rel = format!("{dir}/{}-{}.{}.tar.xz", p.folder, p.version, p.arch);
    tree.check_file_slot(&archive_rel)?;
    tree.check_file_slot(&format!("{dir}/CHECKSUM"))?;
    let staging = tree.staging(RPMS_DIR)?;
    let wrap_opts = WrapOptions { name_style: NameStyle::DockerImage, ..Default::default() };
    let preset = opts.xz_preset.unwrap_or(archive::DEFAULT_XZ_PRESET);
    let (archive, rpm) = std::thread::scope(|s| {
        let rpm = s.spawn(|| strata_imagerpm::wrap_image(store, &p.reference, &wrap_opts, staging.path()));
        let archive = archive::write_xz_archive(tree, store, &p.reference, &archive_rel, preset);
        (archive, rpm.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    let archive = archive?;
    report.note(&archive_rel, Outcome::Written, progress);
    let rpm = rpm?;
    if rpm.version != p.version {
        // Both come from strata_imagerpm::meta::default_version; a difference is a bug.
        return Err(Error::Invalid(format!("{}: the RPM's version {} is not the mirror folder's {}", p.reference, rpm.version, p.version)));
    }
    let file_name = rpm.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let rpm_rel = format!("{RPMS_DIR}/{file_name}");
    let outcome = tree.place(&rpm.path, &rpm_rel)?;
    report.note(&rpm_rel, outcome, progress);
    let (rpm_size, rpm_sha) = tree::hash_file(&tree.path(&rpm_rel))?;
    let checksum_rel = format!("{dir}/CHECKSUM");
    Ok(Published {
        tag: p.tag.clone(),
        manifest: p.manifest.clone(),
        image_id: p.image_id.clone(),
        archive: FileRef { href: Index::href(base_url, &archive_rel), path: archive_rel, size: archive.size, sha256: archive.sha256 },
        // The size is set once the CHECKSUM is written.
        checksum: FileRef { href: Index::href(base_url, &checksum_rel), path: checksum_rel, size: 0, sha256: String::new() },
        rpm: RpmRef {
            file: FileRef { href: Index::href(base_url, &rpm_rel), path: rpm_rel, size: rpm_size, sha256: rpm_sha },
            nevra: format!("{}-{}-{}.{}", rpm.name, rpm.version, rpm.release, rpm.arch),
            provides: rpm.provides,
            requires: rpm.requires,
        },
        published: strata_oci::config::rfc3339(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)),
    })
}

/// The CHECKSUM of `folder/version`: every arch's archive the index lists there. Returns
/// the file's size.
fn write_checksum(tree: &Tree, index: &Index, folder: &str, version: &str, signer: Option<&checksum::Signer>, report: &mut Report, progress: &mut dyn FnMut(&str)) -> Result<u64, Error> {
    let rel = format!("{folder}/{version}/CHECKSUM");
    let arches = &index.images[folder].versions[version];
    let listed: Vec<checksum::Listed> = arches
        .values()
        .map(|e| checksum::Listed { name: e.archive.path.rsplit('/').next().unwrap_or_default().to_string(), size: e.archive.size, sha256: e.archive.sha256.clone() })
        .collect();
    let body = checksum::body(&listed);
    let existing = match tree.check_file_slot(&rel)? {
        Some(_) => std::fs::read_to_string(tree.path(&rel)).unwrap_or_default(),
        None => String::new(),
    };
    if !checksum::is_current(&existing, &body, signer) {
        let text = match signer {
            Some(s) => s.sign(&body)?,
            None => body,
        };
        tree.write(&rel, text.as_bytes())?;
        report.note(&rel, Outcome::Written, progress);
    } else {
        report.unchanged.push(rel.clone());
    }
    let md = tree.check_file_slot(&rel)?.ok_or_else(|| Error::Invalid(format!("{rel} vanished while publishing")))?;
    Ok(md.len())
}
