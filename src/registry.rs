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
use strata_oci::archive::image_id;
use strata_registry::{Client, ClientConfig, Credential, Credentials, ManifestFormat, Outcome, PullOptions, PushOptions, Reference};
use strata_transport::Transport;

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
    /// Where from, as skopeo names it: [docker://]HOST/REPO[:TAG][@DIGEST], oci:DIR[:REF],
    /// oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG|:@N], docker-daemon:NAME[:TAG]
    /// (or sha256:ID), containers-storage:[[DRIVER@]ROOT[+RUNROOT]]NAME[:TAG], or
    /// rpm:CAPABILITY (an image RPM from a yum repository).
    reference: String,
    /// Name in the store [default: the reference inside the source (not for a registry
    /// digest or a daemon image id), else the archive's own name].
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tag: Option<String>,
    /// os/arch[/variant] to take from a multi-platform image.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// skopeo's spelling of --tls-verify for the source registry.
    #[arg(long = "src-tls-verify", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    src_tls_verify: Option<bool>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    rpm: crate::rpmpull::RpmPullFlags,
}

pub fn pull(mut args: PullArgs) -> anyhow::Result<ExitCode> {
    if args.reference.starts_with(crate::rpmpull::PREFIX) {
        return crate::rpmpull::pull(&args.reference, args.tag.as_deref(), &args.rpm, &args.store);
    }
    // --json is every source's (RpmPullFlags carries it for the rpm: source too).
    if let Some(flag) = args.rpm.given().into_iter().find(|f| *f != "--json") {
        anyhow::bail!("{flag} applies to `strata pull rpm:CAPABILITY` only\nhint: strata pull 'rpm:container-image(NAME)' --repo URL");
    }
    args.registry.tls_verify = args.registry.tls_verify.or(args.src_tls_verify);
    let source = Transport::parse(&args.reference)?;
    let store_path = args.store.path();
    let store = Store::open_or_create(&store_path).with_context(|| format!("opening image store {}", store_path.display()))?;
    let tag = args.tag.as_deref().map(ImageRef::parse).transpose()?;
    let registries = args.registry.client()?;
    let opts = strata_transport::ImportOptions {
        registries: Some(&registries),
        pull: PullOptions { platform: strata_registry::Platform::parse(&args.platform)?, ..PullOptions::default() },
        tag,
        docker_host: None,
    };
    let imported = strata_transport::import(&source, &store, &opts).with_context(|| format!("pulling {source}"))?;
    let names: Vec<String> = imported.tagged.iter().map(ToString::to_string).collect();
    if args.rpm.json {
        let doc = serde_json::json!({
            "source": source.to_string(),
            "tags": names,
            "digest": imported.manifest_digest.to_string(),
            "image_id": imported.image_id.to_string(),
            "resolved": imported.pulled.as_ref().map(|p| p.digest().to_string()),
            "original_manifest": imported.original_manifest,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let shown = if names.is_empty() { "(by digest)".to_string() } else { names.join(",") };
        println!("{shown}  {}  {}", imported.manifest_digest, imported.image_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// The CLI's registry clients serve the transports' registry pushes and pulls.
impl strata_transport::Registries for Registries {
    fn client(&self, registry: &str) -> Arc<Client> {
        self.get(registry)
    }
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image in the store, NAME[:TAG] or a manifest digest; with --all, the spec.
    image: String,
    /// Where to, as skopeo names it: [docker://]HOST/REPO[:TAG], oci:DIR[:REF],
    /// oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG], docker-daemon:NAME[:TAG]
    /// ($DOCKER_HOST's daemon), containers-storage:[[DRIVER@]ROOT[+RUNROOT]]NAME[:TAG]
    /// (through podman); with --all, registry[/namespace] under which each image goes as
    /// NAME:TAG.
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
    /// skopeo's spelling of --tls-verify for the destination registry.
    #[arg(long = "dest-tls-verify", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    dest_tls_verify: Option<bool>,
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

pub fn push(mut args: PushArgs) -> anyhow::Result<ExitCode> {
    args.registry.tls_verify = args.registry.tls_verify.or(args.dest_tls_verify);
    let store = args.store.open()?;
    if !args.all {
        let dest = Transport::parse(&args.destination)?;
        if !matches!(dest, Transport::Registry(_)) {
            return push_transport(&args, &store, &dest);
        }
    }
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
        let Transport::Registry(dest) = Transport::parse(&args.destination)? else { unreachable!("other transports returned above") };
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
                    "image_id": store.resolve(name).map(|img| image_id(&img).to_string()).ok(),
                    "media_type": p.media_type,
                    "converted": p.converted,
                    "uploaded": count(p, Outcome::Transferred),
                    "mounted": count(p, Outcome::Mounted),
                    "present": count(p, Outcome::Present),
                    "blobs": p.blobs.iter().map(|b| serde_json::json!({
                        "digest": b.digest.to_string(),
                        "size": b.size,
                        "outcome": match b.outcome { Outcome::Transferred => "uploaded", Outcome::Mounted => "mounted", Outcome::Present => "present" },
                        "sent": b.sent,
                        "resumed_from": b.resumed_from,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let total = |o| pushes.iter().map(|(_, p)| count(p, o)).sum::<usize>();
        let mut doc = serde_json::json!({
            "uploaded": total(Outcome::Transferred),
            "mounted": total(Outcome::Mounted),
            "present": total(Outcome::Present),
        });
        // One image: its fields at the top too, as every other transport prints them.
        if let (false, [one]) = (args.all, images.as_slice()) {
            for key in ["image", "digest", "image_id", "media_type", "converted", "blobs"] {
                doc[key] = one[key].clone();
            }
            doc["destination"] = format!("docker://{}", one["reference"].as_str().unwrap_or_default()).into();
        }
        doc["images"] = images.into();
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for (name, pushed) in &pushes {
            let id = store.resolve(name).map(|img| image_id(&img).to_string()).unwrap_or_default();
            println!("{}  {}  {id}", pushed.reference, pushed.digest);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `push IMAGE TRANSPORT:...` to anything but a registry.
fn push_transport(args: &PushArgs, store: &Store, dest: &Transport) -> anyhow::Result<ExitCode> {
    let opts = strata_transport::ExportOptions::default();
    let exported = strata_transport::export(store, &args.image, dest, &opts).with_context(|| format!("pushing {} to {dest}", args.image))?;
    print_exported(&args.image, &exported, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// One exported image: `DESTINATION  DIGEST  IMAGE-ID`, or JSON with the same fields.
pub fn print_exported(image: &str, e: &strata_transport::Exported, json: bool) -> anyhow::Result<()> {
    if json {
        let doc = serde_json::json!({
            "image": image,
            "destination": e.destination,
            "digest": e.manifest_digest.to_string(),
            "image_id": e.image_id.to_string(),
            "engine_id": e.engine_id,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("{}  {}  {}", e.destination, e.manifest_digest, e.image_id);
    }
    Ok(())
}

/// One image of `push --all`: (spec image name, store NAME:TAG, remote reference).
type PushAllItem = (String, String, Reference);

/// `push --all SPEC PREFIX`: (spec image name, store NAME:TAG, PREFIX/NAME:TAG) for each
/// selected image, after checking that the store has every one of them. Returns the
/// registry they all go to.
fn push_all_list(args: &PushArgs, store: &Store) -> anyhow::Result<(String, Vec<PushAllItem>)> {
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
    let prefix = args.destination.trim_start_matches("docker://").trim_end_matches('/');
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
