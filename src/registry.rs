//! `strata pull` and `strata push`, and the registry access `strata build` pulls base
//! images through (`strata-registry`).

use crate::compose::StoreArg;
use anyhow::Context;
use clap::Args;
use std::process::ExitCode;
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strata_registry::{Client, ClientConfig, Credential, Credentials, ManifestFormat, Outcome, PullOptions, PushOptions, Reference};

/// How registries are reached: TLS verification and credentials, as podman and skopeo
/// spell the flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Contact this registry (host[:port]) over plain HTTP or unverified TLS, as podman's
    /// --tls-verify=false (repeatable; also $STRATA_INSECURE_REGISTRIES, comma-separated).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// --tls-verify=false: every registry contacted is reached over plain HTTP or
    /// unverified TLS, as with --insecure-registry for each.
    #[arg(long = "tls-verify", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,
    /// Credentials for the registries contacted, beating every auth file (PASS asked on
    /// the terminal when left out).
    #[arg(long = "creds", value_name = "USER[:PASS]")]
    pub creds: Option<String>,
    /// Read credentials from this auth file (containers auth.json or docker config.json)
    /// instead of the default ones.
    #[arg(long = "authfile", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Trust the CA certificates in DIR's *.crt files besides the system's (a registry
    /// with a private CA), as podman and skopeo do.
    #[arg(long = "cert-dir", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn client(&self) -> anyhow::Result<Registries> {
        let credentials = match &self.authfile {
            Some(path) => {
                if !path.exists() {
                    anyhow::bail!("auth file {} does not exist", path.display());
                }
                let mut c = Credentials::none();
                c.add_file(path).context("reading registry credentials")?;
                c
            }
            None => Credentials::from_default_files().context("reading registry credentials")?,
        };
        let mut config = ClientConfig { credentials, ..ClientConfig::default() };
        if let Some(dir) = &self.cert_dir {
            config = config.cert_dir(dir).map_err(anyhow::Error::msg)?;
        }
        let from_env = std::env::var("STRATA_INSECURE_REGISTRIES").unwrap_or_default();
        for host in self.insecure.iter().map(String::as_str).chain(from_env.split(',').map(str::trim).filter(|h| !h.is_empty())) {
            config = config.insecure(host);
        }
        let creds = match &self.creds {
            None => None,
            Some(c) => Some(match c.split_once(':') {
                Some((user, pass)) => Credential::basic(user, pass),
                None => {
                    let pass = crate::login::read_password(&format!("Password for {c}: ")).context("--creds USER without :PASS")?;
                    Credential::basic(c.as_str(), pass)
                }
            }),
        };
        if matches!(&creds, Some(Credential::Basic { username, .. }) if username.is_empty()) {
            anyhow::bail!("--creds: empty user name");
        }
        Ok(Registries { config, all_insecure: self.tls_verify == Some(false), creds, clients: Mutex::new(HashMap::new()) })
    }
}

/// The registry clients of one command: one per registry, so that --tls-verify=false and
/// --creds apply to whichever registries the command turns out to contact (a build's
/// bases are known only as it goes).
pub struct Registries {
    config: ClientConfig,
    all_insecure: bool,
    creds: Option<Credential>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
}

impl Registries {
    /// The client for `registry` (as a reference names it).
    pub fn get(&self, registry: &str) -> Arc<Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(registry.to_string())
            .or_insert_with(|| {
                let mut config = self.config.clone();
                if self.all_insecure {
                    config = config.insecure(registry);
                }
                if let Some(c) = &self.creds {
                    config.credentials.insert(registry, c.clone());
                }
                Arc::new(Client::new(config))
            })
            .clone()
    }
}

/// Pulls into the store a base image `strata build` does not find there, tagged under the
/// name the Dockerfile used (a digest reference stays untagged: it is found by digest).
pub struct Puller(pub Registries);

impl strata_build::Puller for Puller {
    fn pull(&self, reference: &str, store: &Store) -> Result<String, String> {
        let r = Reference::parse(reference).map_err(|e| e.to_string())?;
        let tags = if reference.contains('@') { Vec::new() } else { ImageRef::parse(reference).map(|t| vec![t]).unwrap_or_default() };
        let pulled = self.0.get(r.registry()).pull(&r, store, &PullOptions { tags, ..PullOptions::default() }).map_err(|e| e.to_string())?;
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
    let pulled = args.registry.client()?.get(r.registry()).pull(&r, &store, &opts)?;
    println!("{}  {}  {}", tag.map_or_else(|| "(by digest)".to_string(), |t| t.to_string()), pulled.digest(), pulled.manifest().digest());
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image in the store, NAME[:TAG] or a manifest digest; with --all, the spec.
    image: String,
    /// Where to: registry/name[:tag]; with --all, registry[/namespace] under which each
    /// image goes as NAME:TAG.
    destination: String,
    /// Push every image of the spec (as `strata compose SPEC` stored it, NAME:TAG) to
    /// DESTINATION/NAME:TAG: each shared blob sent once and mounted into the other
    /// repositories; every image must be in the store before anything is sent.
    #[arg(long)]
    all: bool,
    /// With --all: only this image of the spec (repeatable).
    #[arg(long = "image", value_name = "NAME", requires = "all")]
    images: Vec<String>,
    /// Blobs transferred at once (for --all, across all the images).
    #[arg(long = "max-parallel", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    /// One JSON document on stdout: per image the reference, digest and what happened to
    /// each blob (uploaded, mounted, present).
    #[arg(long)]
    json: bool,
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
    let format = match args.format {
        PushFormat::Auto => ManifestFormat::Auto,
        PushFormat::Oci => ManifestFormat::AsStored,
        PushFormat::Docker => ManifestFormat::Docker,
    };
    let opts = PushOptions { mount_from: args.mount_from.clone(), format, max_parallel: args.max_parallel.into(), ..PushOptions::default() };
    let (registry, pushes) = if args.all {
        let (registry, list) = push_all_list(&args, &store)?;
        let images: Vec<(String, Reference)> = list.iter().map(|(_, local, remote)| (local.clone(), remote.clone())).collect();
        let pushed = args.registry.client()?.get(&registry).push_many(&store, &images, &opts)?;
        (registry, list.into_iter().map(|(name, _, _)| name).zip(pushed).collect::<Vec<_>>())
    } else {
        let dest = Reference::parse(&args.destination)?;
        let pushed = args.registry.client()?.get(dest.registry()).push(&store, &args.image, &dest, &opts)?;
        (dest.registry().to_string(), vec![(args.image.clone(), pushed)])
    };
    for (_, pushed) in &pushes {
        if pushed.converted && args.format == PushFormat::Auto {
            eprintln!("note: {registry} refused the OCI manifest; pushed {} as Docker v2 schema 2 ({}), a new digest", pushed.reference, pushed.media_type);
        }
    }
    if args.json {
        let count = |p: &strata_registry::Pushed, o: Outcome| p.blobs.iter().filter(|b| b.outcome == o).count();
        let images: Vec<serde_json::Value> = pushes
            .iter()
            .map(|(name, p)| {
                serde_json::json!({
                    "image": name,
                    "reference": p.reference.to_string(),
                    "digest": p.digest.to_string(),
                    "media_type": p.media_type,
                    "converted": p.converted,
                    "uploaded": count(p, Outcome::Transferred),
                    "mounted": count(p, Outcome::Mounted),
                    "present": count(p, Outcome::Present),
                    "blobs": p.blobs.iter().map(|b| serde_json::json!({
                        "digest": b.digest.to_string(),
                        "size": b.size,
                        "outcome": match b.outcome { Outcome::Transferred => "uploaded", Outcome::Mounted => "mounted", Outcome::Present => "present" },
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let total = |o| pushes.iter().map(|(_, p)| count(p, o)).sum::<usize>();
        let doc = serde_json::json!({
            "images": images,
            "uploaded": total(Outcome::Transferred),
            "mounted": total(Outcome::Mounted),
            "present": total(Outcome::Present),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for (_, pushed) in &pushes {
            println!("{}  {}", pushed.reference, pushed.digest);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `push --all SPEC PREFIX`: (spec image name, store NAME:TAG, PREFIX/NAME:TAG) for each
/// selected image, after checking that the store has every one of them. Returns the
/// registry they all go to.
fn push_all_list(args: &PushArgs, store: &Store) -> anyhow::Result<(String, Vec<(String, String, Reference)>)> {
    let spec_path = PathBuf::from(&args.image);
    let spec = strata_spec::Spec::load(&spec_path).with_context(|| format!("reading the spec {}", spec_path.display()))?;
    let selected: Vec<String> = if args.images.is_empty() {
        spec.images.keys().cloned().collect()
    } else {
        for name in &args.images {
            if !spec.images.contains_key(name) {
                anyhow::bail!("--image {name}: the spec {} has no such image (it has: {})", spec_path.display(), spec.images.keys().cloned().collect::<Vec<_>>().join(", "));
            }
        }
        let mut v = args.images.clone();
        v.dedup();
        v
    };
    let prefix = args.destination.trim_end_matches('/');
    let mut list = Vec::new();
    let mut missing = Vec::new();
    for name in selected {
        let tag = spec.images[&name].tag.clone().unwrap_or_else(|| "latest".into());
        let local = format!("{name}:{tag}");
        if store.resolve(&local).is_err() {
            missing.push(local);
            continue;
        }
        let remote = Reference::parse(&format!("{prefix}/{name}:{tag}")).with_context(|| format!("destination for image {name}"))?;
        list.push((name, local, remote));
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "not in the store {}: {} (compose them first: strata compose {}); nothing pushed",
            args.store.path().display(),
            missing.join(", "),
            spec_path.display()
        );
    }
    let registry = match list.first() {
        Some((_, _, r)) => r.registry().to_string(),
        None => anyhow::bail!("the spec {} has no images", spec_path.display()),
    };
    Ok((registry, list))
}
