//! `strata compose`: arguments in, `strata_pipeline::compose` (or `check`), results out —
//! a line per image, `--json`, the `--report` table; `--check` exits 1 when anything would
//! change.

use crate::RepoArgs;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_oci::store::Store;
use strata_pipeline::{Cancel, ComposeRequest, ImageResult};

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// The spec (JSON).
    spec: PathBuf,
    /// Compose only this image (repeatable).
    #[arg(long, value_name = "NAME")]
    image: Vec<String>,
    /// Use strata.lock as it is (no resolve); fail if it does not match the spec.
    #[arg(long)]
    locked: bool,
    /// Lock file [default: strata.lock beside the spec].
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
    /// Rebuild even if the stored image was built from the same inputs.
    #[arg(long)]
    force: bool,
    /// Layer compression [default: the spec's "compression", else gzip].
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
    /// Do not verify RPM signatures, even for repos with gpgcheck on.
    #[arg(long)]
    nogpgcheck: bool,
    /// Build nothing and write nothing: exit 0 when every image is up to date, 1 otherwise,
    /// listing what changed for each image.
    #[arg(long, conflicts_with = "force")]
    check: bool,
    /// After composing, show each image's layers and the bytes stored and pulled.
    #[arg(long)]
    report: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    repos: RepoArgs,
}

#[derive(Args, Debug, Clone)]
pub struct StoreArg {
    /// Image store (an OCI image layout) [default: $STRATA_STORE, else $XDG_DATA_HOME/strata/store].
    #[arg(long, value_name = "DIR", global = true)]
    pub store: Option<PathBuf>,
}

impl StoreArg {
    pub fn path(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(strata_pipeline::default_store)
    }

    pub fn open(&self) -> anyhow::Result<Store> {
        let p = self.path();
        Store::open(&p).with_context(|| format!("opening image store {}", p.display()))
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompressionArg {
    Gzip,
    Zstd,
}

pub fn run(args: ComposeArgs) -> anyhow::Result<ExitCode> {
    let req = ComposeRequest {
        spec: args.spec,
        images: args.image,
        locked: args.locked,
        lock: args.lock,
        store: args.store.path(),
        force: args.force,
        compression: args.compression.map(|c| match c {
            CompressionArg::Gzip => strata_spec::Compression::Gzip,
            CompressionArg::Zstd => strata_spec::Compression::Zstd,
        }),
        nogpgcheck: args.nogpgcheck,
        source_date_epoch: source_date_epoch()?,
        report: args.report,
        repos: args.repos.settings(),
    };
    let progress = crate::progress::Bars::new(!args.json, "resolving");
    if args.check {
        let checked = strata_pipeline::check(&req, &progress, &Cancel::new())?;
        crate::report::print_check(&checked, args.json)?;
        return Ok(if checked.changed() { ExitCode::from(1) } else { ExitCode::SUCCESS });
    }
    let done = match strata_pipeline::compose(&req, &progress, &Cancel::new()) {
        Ok(done) => done,
        Err(strata_pipeline::Error::Images { failures, composed }) => {
            // The images that did build are said before the failures.
            print_images(&composed, args.json);
            anyhow::bail!(strata_pipeline::Error::Images { failures, composed: Vec::new() });
        }
        Err(e) => return Err(e.into()),
    };
    print_images(&done.images, args.json);
    if args.json {
        let out: serde_json::Map<String, serde_json::Value> = done
            .images
            .iter()
            .map(|r| {
                let layers: Vec<_> = r.layers.iter().map(|l| serde_json::json!({"id": l.id, "packages": l.packages, "digest": l.digest, "size": l.size, "reused": l.reused})).collect();
                (
                    r.name.clone(),
                    serde_json::json!({"reference": r.reference, "manifest": r.manifest_digest, "image_id": r.config_digest,
                        "packages": r.packages.len(), "layers": layers, "size": r.size, "reused": r.reused, "warnings": r.warnings}),
                )
            })
            .collect();
        let mut doc = serde_json::json!({"images": out, "store": done.store});
        if let Some(rep) = &done.report {
            doc["report"] = rep.to_json();
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if let Some(rep) = &done.report {
        crate::report::print(rep);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each image's warnings on stderr and, unless `--json`, its line on stdout.
fn print_images(images: &[ImageResult], json: bool) {
    for r in images {
        for w in &r.warnings {
            eprintln!("warning: {}: {w}", r.name);
        }
        if !json {
            let new_layers = r.layers.iter().filter(|l| !l.reused).count();
            let status = if r.reused { "up to date".to_string() } else { format!("built ({} of {} layers new)", new_layers, r.layers.len()) };
            println!("{}  {}  {} packages  {} layers  {}  {}", r.reference, short(&r.config_digest), r.packages.len(), r.layers.len(), crate::resolve::human_bytes(r.size), status);
        }
    }
}

pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

pub fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    Ok(strata_pipeline::source_date_epoch_from_env()?)
}
