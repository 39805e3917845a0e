//! `strata images`, `strata inspect`, `strata save`: reading the image store.

use crate::compose::{short, StoreArg};
use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_transport::Transport;
use strata_oci::archive::{image_id, save_docker_archive, save_oci_archive, LayerForm};
use strata_oci::store::Store;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn images(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let mut rows = Vec::new();
    for entry in store.list()? {
        let img = store.resolve(&entry.reference.to_string())?;
        let size: u64 = img.manifest.layers().iter().map(|l| l.size()).sum();
        rows.push((entry.reference.to_string(), image_id(&img).to_string(), img.config.created().clone().unwrap_or_default(), size));
    }
    if args.json {
        let v: Vec<_> = rows.iter().map(|(r, id, c, s)| serde_json::json!({"reference": r, "image_id": id, "created": c, "size": s})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<40} {:<12} {:<22} SIZE", "IMAGE", "IMAGE ID", "CREATED");
        for (r, id, c, s) in rows {
            println!("{r:<40} {:<12} {c:<22} {}", short(&id), crate::resolve::human_bytes(s));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// NAME[:TAG] or manifest digest.
    image: String,
    #[command(flatten)]
    store: StoreArg,
}

/// Config, layers and the package list read from the image's own rpmdb.
pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let img = store.resolve(&args.image)?;
    let packages: Vec<String> = strata_compose::installed_packages(&store, &img)?.iter().map(ToString::to_string).collect();
    let doc = serde_json::json!({
        "reference": img.reference.as_ref().map(|r| r.to_string()),
        "manifest": img.manifest_descriptor.digest().to_string(),
        "image_id": image_id(&img).to_string(),
        "annotations": img.manifest.annotations(),
        // As stored: Docker's fields the OCI types leave out (Healthcheck, OnBuild) too.
        "config": serde_json::from_slice::<serde_json::Value>(&img.config_bytes)?,
        "layers": img.manifest.layers(),
        "packages": packages,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// NAME[:TAG] (repeatable for docker-archive and oci).
    #[arg(required = true)]
    images: Vec<String>,
    /// Output file (`-` for stdout; a FIFO, terminal or /dev/stdout is written through, a
    /// file replaced only on success); for `oci`, a directory (created, or added to). Or a
    /// transport, as `strata push` takes it (one IMAGE; --format is then ignored):
    /// oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG],
    /// docker-daemon:NAME[:TAG], containers-storage:[STORE]NAME[:TAG], docker://HOST/REPO:TAG.
    #[arg(short, long, value_name = "FILE|TRANSPORT:...")]
    output: PathBuf,
    #[arg(long, value_enum, default_value = "docker-archive")]
    format: SaveFormat,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SaveFormat {
    DockerArchive,
    OciArchive,
    /// An OCI image layout directory (skopeo's `oci:DIR:NAME:TAG`).
    Oci,
}

pub fn save(args: SaveArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    if let Some(dest) = args.output.to_str().filter(|o| Transport::is_named(o)) {
        let dest = Transport::parse(dest)?;
        let [image] = args.images.as_slice() else {
            bail!("-o {dest}: a transport takes one image, {} given\nhint: save them one at a time, or as one archive file (-o FILE)", args.images.len());
        };
        let registries;
        let mut opts = strata_transport::ExportOptions::default();
        if let Transport::Registry(_) = dest {
            registries = crate::registry::RegistryArgs::default().client()?;
            opts.registries = Some(&registries);
        }
        let exported = strata_transport::export(&store, image, &dest, &opts).with_context(|| format!("saving {image} to {dest}"))?;
        crate::registry::print_exported(image, &exported, false)?;
        return Ok(ExitCode::SUCCESS);
    }
    let refs: Vec<&str> = args.images.iter().map(String::as_str).collect();
    let resolved = refs.iter().map(|r| store.resolve(r)).collect::<Result<Vec<_>, _>>()?;
    if let SaveFormat::Oci = args.format {
        if args.output.as_os_str() == "-" {
            bail!("an OCI layout is a directory; give -o DIR");
        }
        strata_output::directory(&args.output)?;
        let layout = Store::open_or_create(&args.output).with_context(|| format!("{} is not an OCI image layout", args.output.display()))?;
        for img in &resolved {
            let tags: Vec<_> = img.reference.iter().cloned().collect();
            layout.copy_image_from(&store, img, &tags)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // `-`, a pipe or a terminal get the bytes as they come; a file is replaced only once the
    // whole archive is written (strata-output).
    let out = strata_output::Output::create(&args.output)?;
    let shown = out.shown().to_string();
    if out.is_terminal() {
        bail!("refusing to write an image archive to a terminal ({shown})\nhint: redirect it (`-o - > img.tar`) or pipe it (`-o - | docker load`)");
    }
    let out = write_archive(&store, &refs, args.format, std::io::BufWriter::with_capacity(1 << 20, out))
        .with_context(|| format!("writing {shown}"))?;
    let out = out.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {shown}"))?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

fn write_archive<W: std::io::Write>(store: &Store, refs: &[&str], format: SaveFormat, out: W) -> anyhow::Result<W> {
    Ok(match format {
        // Uncompressed layers: docker 20.10 `load` wants plain tars in docker-archive.
        SaveFormat::DockerArchive => save_docker_archive(store, refs, LayerForm::Uncompressed, out)?,
        SaveFormat::Oci => unreachable!("written as a directory above"),
        SaveFormat::OciArchive => {
            if refs.len() != 1 {
                bail!("an oci-archive holds one image; give one NAME");
            }
            save_oci_archive(store, refs, out)?
        }
    })
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Keep what is younger than this (a build running now may still need it): 1h, 30m, 0s.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    grace: std::time::Duration,
    /// Cache folder whose unpacked build layers and RPM cache are pruned too [default:
    /// $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Remove the cached RPMs (CACHE/rpms) no compose used within this: 30d, 12h; 0 keeps
    /// them all.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = humantime::parse_duration)]
    rpm_max_age: std::time::Duration,
    /// Print what was removed as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
}

/// Removes what no tagged image needs (`strata_pipeline::gc`, which the build service's
/// worker runs between builds too) and says what went.
pub fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let cache_root = args.cache_dir.clone().unwrap_or_else(strata_repo::MetadataCache::default_root);
    // A worker's builds hold the store's gate while their blobs are still untagged: wait
    // for them rather than take their blobs (the grace alone does not cover a long build).
    let gate = strata_pipeline::Gate::new(store.root());
    let _held = gate
        .gc_waiting(|| eprintln!("waiting for the builds of a strata worker on {} to end (they hold {})", store.root().display(), gate.path().display()))
        .with_context(|| format!("locking {}", gate.path().display()))?;
    let opts = strata_pipeline::GcOptions { grace: args.grace, rpm_max_age: args.rpm_max_age };
    let report = strata_pipeline::gc_with(&store, &cache_root, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::to_value(report)?)?);
    } else {
        println!(
            "removed {} blobs ({}), {} cache entries, {} unpacked layers, {} upload records; kept {} unreferenced blobs younger than {}; removed {} cached RPMs ({}) {}, {} partial downloads{}",
            report.blobs_removed,
            crate::resolve::human_bytes(report.bytes_freed),
            report.cache_entries_removed,
            report.unpacked_layers_removed,
            report.upload_records_removed,
            report.blobs_kept_young,
            humantime::format_duration(args.grace),
            report.rpms_removed,
            crate::resolve::human_bytes(report.rpm_bytes_freed),
            if args.rpm_max_age.is_zero() { "(--rpm-max-age 0 keeps them)".to_string() } else { format!("unused for {}", humantime::format_duration(args.rpm_max_age)) },
            report.rpm_partials_removed,
            match report.rpm_entries_skipped {
                0 => String::new(),
                n => format!("; left {n} things in {} the cache did not put there", strata_pipeline::rpm_cache_dir(&cache_root).display()),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// NAME[:TAG] of each image to untag.
    #[arg(required = true)]
    images: Vec<String>,
    #[command(flatten)]
    store: StoreArg,
}

/// Removes tags; the blobs stay until `strata gc`.
pub fn rmi(args: RmiArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    for name in &args.images {
        let tag = strata_oci::reference::ImageRef::parse(name)?;
        if !store.untag(&tag)? {
            bail!("{tag}: no such image in {}", store.root().display());
        }
        println!("untagged {tag}");
    }
    Ok(ExitCode::SUCCESS)
}
