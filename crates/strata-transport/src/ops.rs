//! [`export`] (push, save) and [`import`] (pull) over every transport.

use crate::parse::{ArchiveImage, Transport};
use crate::{daemon, io_err, podman, Error, Result};
use std::io::{BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use strata_oci::archive::{image_id, save_docker_archive_items, save_oci_archive_items, LayerForm, SaveItem};
use strata_oci::import::{load_docker_archive, load_oci_archive, Select, TagPolicy};
use strata_oci::oci_spec::image::Digest;
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;
use strata_registry::{Client, PullOptions, Pulled, PushOptions, Pushed};

/// The registry clients of one command (the CLI's, carrying its credential and TLS flags).
pub trait Registries {
    fn client(&self, registry: &str) -> Arc<Client>;
}

/// How [`export`] sends an image.
#[derive(Default)]
pub struct ExportOptions<'a> {
    /// Needed for `docker://` destinations.
    pub registries: Option<&'a dyn Registries>,
    pub push: PushOptions<'a>,
    /// How a docker-archive file carries layers (docker-daemon and containers-storage always
    /// get plain tars, which every version loads).
    pub layer_form: LayerForm,
    /// The docker daemon; `None` is `$DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    pub docker_host: Option<String>,
}

/// What [`export`] did.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The destination as a transport string.
    pub destination: String,
    /// The manifest digest at the destination (a registry may have got a converted one).
    pub manifest_digest: Digest,
    /// The config digest: docker's and podman's image id.
    pub image_id: Digest,
    /// The id docker or podman reports for the image, when one was asked.
    pub engine_id: Option<String>,
    /// The registry push, for its per-blob report.
    pub pushed: Option<Pushed>,
}

/// Sends `local` (NAME[:TAG] or manifest digest in `store`) to `dest`.
pub fn export(store: &Store, local: &str, dest: &Transport, opts: &ExportOptions<'_>) -> Result<Exported> {
    let img = store.resolve(local)?;
    let mut out = Exported {
        destination: dest.to_string(),
        manifest_digest: img.manifest_descriptor.digest().clone(),
        image_id: image_id(&img),
        engine_id: None,
        pushed: None,
    };
    let store_name = img.reference.as_ref().map(ToString::to_string);
    let archive = |names: Option<Vec<String>>| SaveItem { image: local, names };
    match dest {
        Transport::Registry(r) => {
            let registries = opts.registries.ok_or_else(|| Error::Unsupported("no registry access configured".into()))?;
            let pushed = registries.client(r.registry()).push(store, local, r, &opts.push)?;
            out.manifest_digest = pushed.digest.clone();
            out.pushed = Some(pushed);
        }
        Transport::OciDir { path, reference } => {
            let name = reference.clone().filter(|r| !r.is_empty()).or(store_name).ok_or_else(|| needs_name(dest))?;
            let layout = Store::open_or_create(path)
                .map_err(|e| Error::Unsupported(format!("{}: {e}\nhint: oci:DIR needs a directory that is empty or an OCI image layout", path.display())))?;
            layout.copy_image_as(store, &img, &name)?;
        }
        Transport::OciArchive { path, reference } => {
            let item = archive(reference.clone().filter(|r| !r.is_empty()).map(|r| vec![r]));
            write_file(path, |w| save_oci_archive_items(store, std::slice::from_ref(&item), w).map(drop))?;
        }
        Transport::DockerArchive { path, image } => {
            let names = match image {
                ArchiveImage::Unnamed => None,
                ArchiveImage::Name(n) => Some(vec![n.clone()]),
                ArchiveImage::Index(_) => {
                    return Err(Error::Unsupported(format!("{dest}: @N picks an image of an existing archive\nhint: as a destination, give docker-archive:FILE[:NAME:TAG]")))
                }
            };
            let item = archive(names);
            write_file(path, |w| save_docker_archive_items(store, std::slice::from_ref(&item), opts.layer_form, w).map(drop))?;
        }
        Transport::DockerDaemon { image } => {
            if image.starts_with("sha256:") {
                return Err(Error::Unsupported(format!("{dest}: an image id names an image already in docker\nhint: give docker-daemon:NAME[:TAG]")));
            }
            let name = with_tag(image);
            let host = daemon::Host::from_option(opts.docker_host.as_deref())?;
            let (store, local, names) = (store.clone(), local.to_string(), vec![name.clone()]);
            let loaded = daemon::load(&host, move |w| {
                let item = SaveItem { image: &local, names: Some(names) };
                save_docker_archive_items(&store, std::slice::from_ref(&item), LayerForm::Uncompressed, w).map(drop)
            })?;
            out.engine_id = Some(daemon::image_id(&host, &name).unwrap_or(loaded));
        }
        Transport::ContainersStorage { storage, image } => {
            let name = with_tag(image);
            let item = archive(Some(vec![name.clone()]));
            let save = |w: &mut dyn Write| save_docker_archive_items(store, std::slice::from_ref(&item), LayerForm::Uncompressed, w).map(drop);
            out.engine_id = Some(podman::load(storage.as_ref(), &name, save)?);
        }
        Transport::Rpm(_) => return Err(Error::Unsupported(format!("{dest}: rpm: is a source for `strata pull`, not a destination"))),
    }
    Ok(out)
}

/// How [`import`] takes an image in.
#[derive(Default)]
pub struct ImportOptions<'a> {
    /// Needed for `docker://` sources.
    pub registries: Option<&'a dyn Registries>,
    pub pull: PullOptions<'a>,
    /// The name in the store; `None`: the reference inside the transport, else the
    /// archive's own name, else the import is refused (asking for one).
    pub tag: Option<ImageRef>,
    pub docker_host: Option<String>,
}

/// What [`import`] brought into the store.
#[derive(Debug, Clone)]
pub struct Imported {
    pub manifest_digest: Digest,
    pub image_id: Digest,
    /// The store tags written (empty: a pull by digest or image id without -t).
    pub tagged: Vec<ImageRef>,
    /// Whether the manifest is the source's own (else rebuilt: a docker-archive without it).
    pub original_manifest: bool,
    /// The registry pull, for its per-blob report.
    pub pulled: Option<Pulled>,
}

/// Brings the image `source` names into `store`.
pub fn import(source: &Transport, store: &Store, opts: &ImportOptions<'_>) -> Result<Imported> {
    match source {
        Transport::Registry(r) => {
            let registries = opts.registries.ok_or_else(|| Error::Unsupported("no registry access configured".into()))?;
            let tags = match &opts.tag {
                Some(t) => vec![t.clone()],
                None if r.digest().is_none() => vec![ImageRef::parse(&familiar(&r.to_string()))?],
                None => Vec::new(),
            };
            let pull = PullOptions { platform: opts.pull.platform.clone(), tags: tags.clone(), progress: opts.pull.progress, max_parallel: opts.pull.max_parallel };
            let pulled = registries.client(r.registry()).pull(r, store, &pull)?;
            let image_id = pulled.resolved.image.config().digest().clone();
            Ok(Imported { manifest_digest: pulled.manifest().digest().clone(), image_id, tagged: tags, original_manifest: true, pulled: Some(pulled) })
        }
        Transport::OciDir { path, reference } => {
            let layout = Store::open(path).map_err(|e| Error::Unsupported(format!("{source}: {e}")))?;
            let img = layout.resolve_ref_name(reference.as_deref().unwrap_or(""))?;
            let from_ref = reference.as_deref().filter(|r| r.contains(':')).and_then(|r| ImageRef::parse(r).ok());
            let tag = opts.tag.clone().or(from_ref).or(img.reference.clone()).ok_or_else(|| needs_tag(source))?;
            let desc = store.copy_image_from(&layout, &img, std::slice::from_ref(&tag))?;
            Ok(Imported { manifest_digest: desc.digest().clone(), image_id: image_id(&img), tagged: vec![tag], original_manifest: true, pulled: None })
        }
        Transport::OciArchive { path, reference } => {
            // Without a REF, the archive's only image; one of several is never guessed
            // (skopeo: "more than one image in oci, choose an image").
            let select = match reference.as_deref() {
                None | Some("") => Select::Only,
                Some(r) => Select::Name(r.to_string()),
            };
            let file = open(path)?;
            let imported = load_oci_archive(store, BufReader::with_capacity(1 << 20, &file), &archive_options(opts.tag.as_ref(), select))?;
            finish(source, imported, false)
        }
        Transport::DockerArchive { path, image } => {
            let select = match image {
                // As skopeo: without NAME:TAG or @N the archive must hold one image.
                ArchiveImage::Unnamed => Select::Only,
                ArchiveImage::Name(n) => Select::Name(n.clone()),
                ArchiveImage::Index(i) => Select::Index(*i),
            };
            let file = open(path)?;
            let imported = load_docker_archive(store, BufReader::with_capacity(1 << 20, &file), &archive_options(opts.tag.as_ref(), select))?;
            finish(source, imported, false)
        }
        Transport::DockerDaemon { image } => {
            let host = daemon::Host::from_option(opts.docker_host.as_deref())?;
            let by_id = image.starts_with("sha256:");
            let name = if by_id { image.clone() } else { with_tag(image) };
            let tag = match &opts.tag {
                Some(t) => Some(t.clone()),
                None if by_id => None,
                None => Some(ImageRef::parse(&familiar(&name))?),
            };
            let store = store.clone();
            // docker saves exactly the one image asked for (a tagged name or an id: one row),
            // so its first image is the image; `Only` would only add a refusal whose hint
            // (docker-archive:FILE:@N) means nothing here.
            let imported = daemon::save(&host, &name, move |r| load_docker_archive(&store, r, &archive_options(tag.as_ref(), Select::Index(0))))?;
            finish(source, imported, by_id)
        }
        Transport::ContainersStorage { storage, image } => {
            let tag = match &opts.tag {
                Some(t) => Some(t.clone()),
                None => Some(ImageRef::parse(&familiar(&with_tag(image))).map_err(|_| needs_tag(source))?),
            };
            // `podman save IMAGE` writes the one image named: as docker-daemon above.
            let imported = podman::save(storage.as_ref(), image, |r| load_docker_archive(store, r, &archive_options(tag.as_ref(), Select::Index(0))))?;
            finish(source, imported, false)
        }
        Transport::Rpm(_) => Err(Error::Unsupported(format!("{source}: rpm: sources are not supported yet"))),
    }
}

/// Loader options: tagged as asked, else under the archive's own names.
fn archive_options(tag: Option<&ImageRef>, select: Select) -> strata_oci::import::ImportOptions {
    let tags = match tag {
        Some(t) => TagPolicy::As(vec![t.clone()]),
        None => TagPolicy::ArchiveNames,
    };
    strata_oci::import::ImportOptions { select, tags, ..Default::default() }
}

/// The one image loaded; one the archive names nothing (so nothing was tagged) is an error
/// asking for -t, unless it was asked for by id.
fn finish(source: &Transport, imported: Vec<strata_oci::import::Imported>, by_id: bool) -> Result<Imported> {
    let one = imported.into_iter().next().ok_or_else(|| Error::Unsupported(format!("{source}: no image loaded")))?;
    if one.tagged.is_empty() && !by_id {
        return Err(needs_tag(source));
    }
    Ok(Imported { manifest_digest: one.manifest_digest, image_id: one.image_id, tagged: one.tagged, original_manifest: one.original_manifest, pulled: None })
}

fn needs_tag(source: &Transport) -> Error {
    Error::Unsupported(format!("{source} gives the image no name to store it under\nhint: name it with -t NAME[:TAG]"))
}

fn needs_name(dest: &Transport) -> Error {
    Error::Unsupported(format!("{dest}: the image has no name in the store to write\nhint: give one in the destination (oci:DIR:NAME:TAG)"))
}

/// `NAME` → `NAME:latest`; a name with a tag or digest is kept.
fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// A name as a person writes it (docker's "familiar" form: no `docker.io/library/`), for a
/// store name.
fn familiar(name: &str) -> String {
    let short = name.strip_prefix("docker.io/").unwrap_or(name);
    short.strip_prefix("library/").unwrap_or(short).to_string()
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))
}

/// Writes a file through `strata-output` (temporary name, renamed once complete).
fn write_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> strata_oci::Result<()>) -> Result<()> {
    let what = || format!("writing {}", path.display());
    let mut out = strata_output::Output::create(path).map_err(io_err(what()))?;
    {
        let mut buffered = std::io::BufWriter::with_capacity(1 << 20, &mut out);
        write(&mut buffered)?;
        buffered.flush().map_err(io_err(what()))?;
    }
    out.commit().map_err(io_err(what()))
}
