//! `strata build`: an unmodified Dockerfile, built into the image store (`strata-build`).

use crate::compose::{short, StoreArg};
use anyhow::{bail, Context};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_build::{build, BuildOptions, Event};
use strata_oci::compress::Compression;
use strata_oci::reference::ImageRef;
use strata_sandbox::Network;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The build context (a directory).
    context: PathBuf,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    dockerfile: Option<PathBuf>,
    /// Name the image NAME[:TAG] in the store (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// A build argument, K=V (or K: its value in this environment).
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: id=ID[,src=FILE|,env=VAR] (repeatable).
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// Use the image REF wherever the Dockerfile names NAME: FROM NAME, COPY --from=NAME,
    /// RUN --mount=from=NAME (repeatable; buildx's flag). NAME is matched as buildx does
    /// (NAME and NAME:latest are one name); the base is recorded as the FROM names it, with
    /// REF's digest. NAME=DIR gives a local directory to COPY --from / RUN --mount=from=.
    #[arg(long = "build-context", value_name = "NAME=docker-image://REF")]
    build_contexts: Vec<String>,
    /// Build up to this stage.
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// What RUN may reach: none (its own loopback only) or the host's network.
    #[arg(long, value_enum, default_value = "none")]
    network: NetworkArg,
    /// Run every step, even those the step cache has.
    #[arg(long)]
    no_cache: bool,
    /// Refuse `ADD <url>`: everything comes from the context, the base image or RPMs.
    #[arg(long)]
    no_remote_content: bool,
    /// Resolve every FROM that names a registry (HOST/NAME:TAG) at the registry and build
    /// on the digest it has now, even if the store holds an older pull of that tag.
    #[arg(long)]
    pull: bool,
    /// One layer for everything the build adds over its base.
    #[arg(long)]
    squash: bool,
    /// Memory each RUN may use, e.g. 4g [default: half of this machine's memory].
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse_memory)]
    memory: Option<u64>,
    /// Processes (and threads) each RUN may have at once.
    #[arg(long, value_name = "N", default_value_t = strata_sandbox::DEFAULT_PIDS_LIMIT)]
    pids_limit: u64,
    /// How long each RUN may take, e.g. 30m.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// OCI runtime for RUN: auto (crun or runc, whichever works here), a runtime's name or
    /// path, or builtin (strata's own namespace code).
    #[arg(long, value_name = "RUNTIME", default_value = "auto")]
    runtime: String,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    compression: CompressionArg,
    /// Print no progress; the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    registry: crate::registry::RegistryArgs,
    /// Cache folder [default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum NetworkArg {
    None,
    Host,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompressionArg {
    Gzip,
    Zstd,
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    if !rustix::process::geteuid().is_root() {
        bail!("strata build needs root: RUN steps run in an OCI runtime over an overlay mount (try: sudo strata build ...)");
    }
    let tags: Vec<ImageRef> = args.tags.iter().map(|t| ImageRef::parse(t).with_context(|| format!("-t {t}"))).collect::<Result<_, _>>()?;
    let store_path = args.store.path();
    let store = strata_oci::store::Store::open_or_create(&store_path).with_context(|| format!("opening image store {}", store_path.display()))?;
    let cache_root = args.cache_dir.clone().unwrap_or_else(strata_repo::MetadataCache::default_root);
    let puller = crate::registry::Puller(args.registry.client()?);
    let secrets = args.secrets.iter().map(|s| strata_build::parse_secret(s)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    let contexts = strata_build::parse_build_contexts(&args.build_contexts).map_err(anyhow::Error::msg)?;
    let quiet = args.json;
    let events = |e: Event<'_>| {
        if quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = match e {
            Event::Step { number, total, text } => writeln!(err, "STEP {number}/{total}: {}", text.lines().next().unwrap_or_default()),
            Event::Cached => writeln!(err, " ---> cached"),
            Event::Done { layer: Some(size), seconds } => writeln!(err, " ---> layer {} ({seconds:.2} s)", crate::resolve::human_bytes(size)),
            Event::Done { layer: None, .. } => Ok(()),
            Event::Output(text) => text.lines().try_for_each(|l| writeln!(err, "     {l}")),
            Event::Warning(w) => writeln!(err, "warning: {w}"),
        };
    };
    let opts = BuildOptions {
        context: args.context.clone(),
        dockerfile: args.dockerfile.clone(),
        tags,
        build_args: args.build_args.clone(),
        target: args.target.clone(),
        remote_content: !args.no_remote_content,
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host => Network::Host,
        },
        no_cache: args.no_cache,
        squash: args.squash,
        store: &store,
        work_dir: cache_root.join("build"),
        sandbox: strata_pipeline::sandbox::backend_named(&args.runtime),
        source_date_epoch: crate::compose::source_date_epoch()?,
        compression: match args.compression {
            CompressionArg::Gzip => Compression::default(),
            CompressionArg::Zstd => Compression::zstd(),
        },
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        puller: Some(&puller),
        pull: if args.pull { strata_build::PullPolicy::Always } else { strata_build::PullPolicy::Missing },
        limits: strata_sandbox::Limits { pids: args.pids_limit, memory: args.memory },
        run_timeout: args.timeout,
        cancel: None,
        secrets,
        contexts,
        events: &events,
    };
    let built = build(&opts)?;
    if args.json {
        let steps: Vec<_> = built.steps.iter().map(|s| serde_json::json!({"stage": s.stage, "step": s.text, "cached": s.cached, "layer": s.layer})).collect();
        let doc = serde_json::json!({"manifest": built.manifest_digest, "image_id": built.image_id, "tags": built.tags, "layers": built.layers,
            "base": built.base.as_ref().map(|b| {
                let mut base = serde_json::json!({"name": b.name, "digest": b.digest});
                if let Some(c) = &b.build_context {
                    base["build_context"] = c.as_str().into();
                }
                base
            }), "steps": steps, "warnings": built.warnings});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let cached = built.steps.iter().filter(|s| s.cached).count();
        let names = if built.tags.is_empty() { "(untagged)".to_string() } else { built.tags.join(" ") };
        println!("{names}  {}  {} layers  {cached} of {} steps cached", short(&built.image_id), built.layers, built.steps.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_memory(s: &str) -> Result<u64, String> {
    strata_build::parse_size(s).ok_or_else(|| format!("{s:?} is not a size (bytes, or a number with k, m or g: 512m, 4g)"))
}
