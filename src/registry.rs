//! `strata pull` and `strata push`, and the registry access `strata build` pulls base
//! images through (`strata-registry`).

use crate::compose::StoreArg;
use anyhow::Context;
use clap::Args;
use std::process::ExitCode;
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;
use strata_registry::{Client, ClientConfig, Credentials, ManifestFormat, PullOptions, PushOptions, Reference};

/// Which registries may be reached without verified TLS.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Contact this registry (host[:port]) over plain HTTP or unverified TLS, as podman's
    /// --tls-verify=false (repeatable; also $STRATA_INSECURE_REGISTRIES, comma-separated).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

impl RegistryArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let mut config = ClientConfig { credentials: Credentials::from_default_files().context("reading registry credentials")?, ..ClientConfig::default() };
        let from_env = std::env::var("STRATA_INSECURE_REGISTRIES").unwrap_or_default();
        for host in self.insecure.iter().map(String::as_str).chain(from_env.split(',').map(str::trim).filter(|h| !h.is_empty())) {
            config = config.insecure(host);
        }
        Ok(Client::new(config))
    }
}

/// Pulls into the store a base image `strata build` does not find there, tagged under the
/// name the Dockerfile used (a digest reference stays untagged: it is found by digest).
pub struct Puller(pub Client);

impl strata_build::Puller for Puller {
    fn pull(&self, reference: &str, store: &Store) -> Result<String, String> {
        let r = Reference::parse(reference).map_err(|e| e.to_string())?;
        let tags = if reference.contains('@') { Vec::new() } else { ImageRef::parse(reference).map(|t| vec![t]).unwrap_or_default() };
        let pulled = self.0.pull(&r, store, &PullOptions { tags, ..PullOptions::default() }).map_err(|e| e.to_string())?;
        Ok(pulled.manifest().digest().to_string())
    }
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// [registry/]name[:tag][@sha256:digest]
    reference: String,
    /// Name in the store [default: the reference as given, unless it is by digest].
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tag: Option<String>,
    /// os/arch[/variant] to take from a multi-platform image.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArg,
}

pub fn pull(args: PullArgs) -> anyhow::Result<ExitCode> {
    let store_path = args.store.path();
    let store = Store::open_or_create(&store_path).with_context(|| format!("opening image store {}", store_path.display()))?;
    let r = Reference::parse(&args.reference)?;
    let tag = match &args.tag {
        Some(t) => Some(ImageRef::parse(t)?),
        None if !args.reference.contains('@') => Some(ImageRef::parse(&args.reference).with_context(|| format!("{} cannot name an image in the store; give -t NAME", args.reference))?),
        None => None,
    };
    let opts = PullOptions { platform: strata_registry::Platform::parse(&args.platform)?, tags: tag.clone().into_iter().collect(), ..PullOptions::default() };
    let pulled = args.registry.client()?.pull(&r, &store, &opts)?;
    println!("{}  {}  {}", tag.map_or_else(|| "(by digest)".to_string(), |t| t.to_string()), pulled.digest(), pulled.manifest().digest());
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image in the store, NAME[:TAG] or a manifest digest.
    image: String,
    /// Where to: registry/name[:tag].
    destination: String,
    /// A repository on the same registry that already has the base image's blobs
    /// (mounted instead of uploaded; repeatable).
    #[arg(long = "mount-from", value_name = "REPOSITORY")]
    mount_from: Vec<String>,
    /// Manifest to push: auto (the store's; Docker schema 2 if the registry refuses OCI),
    /// oci (the store's or nothing), docker (Docker v2 schema 2; a new digest).
    #[arg(long, value_enum, default_value = "auto")]
    format: PushFormat,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PushFormat {
    Auto,
    Oci,
    Docker,
}

pub fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let dest = Reference::parse(&args.destination)?;
    let format = match args.format {
        PushFormat::Auto => ManifestFormat::Auto,
        PushFormat::Oci => ManifestFormat::AsStored,
        PushFormat::Docker => ManifestFormat::Docker,
    };
    let opts = PushOptions { mount_from: args.mount_from.clone(), format, ..PushOptions::default() };
    let pushed = args.registry.client()?.push(&store, &args.image, &dest, &opts)?;
    if pushed.converted && args.format == PushFormat::Auto {
        eprintln!("note: {} refused the OCI manifest; pushed as Docker v2 schema 2 ({}), a new digest", dest.registry(), pushed.media_type);
    }
    println!("{}  {}", pushed.reference, pushed.digest);
    Ok(ExitCode::SUCCESS)
}
