//! `strata serve` (the build service, with an in-process worker unless --no-worker) and
//! `strata worker` (a worker on any host): argument parsing over `strata-service` and
//! `strata-worker`.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to answer on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8750")]
    listen: String,
    /// sqlite://FILE or postgres://... [default: SQLite in the data dir].
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Where builds push: HOST[:PORT][/PREFIX].
    #[arg(long, value_name = "HOST[:PORT][/PREFIX]")]
    registry: Option<String>,
    /// A registry reached over plain HTTP or unverified TLS (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registry: Vec<String>,
    /// Run no worker in this process (workers elsewhere run `strata worker`).
    #[arg(long)]
    no_worker: bool,
    /// A token (at least 16 characters) that becomes an admin token [default:
    /// $STRATA_ADMIN_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// The service's folder: database, in-process worker's store, git and build caches
    /// [default: $XDG_DATA_HOME/strata/service].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Builds the in-process worker runs at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    slots: usize,
    /// Attempts a build gets when its worker vanishes (lease expiry).
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_attempts: i64,
    /// Seconds between a worker's heartbeats; a lease lasts three.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    heartbeat: i64,
    /// The most run time a build may ask for.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = humantime::parse_duration)]
    max_timeout: Duration,
    /// How often the repositories of registered images are checked for changes (each at
    /// most as seldom as its metadata_expire); 0: only on `strata repos refresh` or the
    /// webhook.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    repo_interval: Duration,
    /// The floating tag automatic rebuilds push to (`strata promote` moves latest).
    #[arg(long, value_name = "TAG", default_value = "testing")]
    rebuild_tag: String,
    /// Let anyone read (the web UI and the API's GETs) without a token.
    #[arg(long)]
    anonymous_read: bool,
    /// Policy file (TOML): roles, and per image who may submit and promote, from which
    /// sources, pushing where, with what (`strata policy check FILE` validates one).
    /// Read again on SIGHUP or `strata policy reload`.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Publish every successful non-scratch build to this ftp/http mirror tree, as
    /// `strata publish --mirror DIR` does (the images pulled back from --registry).
    #[arg(long, value_name = "DIR")]
    mirror: Option<PathBuf>,
    /// The mirror's --base-url.
    #[arg(long, value_name = "URL", requires = "mirror")]
    mirror_base_url: Option<String>,
    /// The mirror's --sign-key (CHECKSUM files clear-signed).
    #[arg(long, value_name = "FILE", requires = "mirror")]
    mirror_sign_key: Option<PathBuf>,
    #[command(flatten)]
    gc: WorkerGcArgs,
}

/// When a worker (`strata worker`, serve's in-process one) collects the garbage its builds
/// leave in the store and caches.
#[derive(Args, Debug)]
pub struct WorkerGcArgs {
    /// How often the worker removes what no tagged image needs from its store and caches,
    /// as `strata gc` does (first at start, then only while no build runs); 0: never
    /// [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    gc_interval: Option<Duration>,
    /// What is younger than this stays (`strata gc --grace`): it covers builds run on the
    /// worker's store by hand; the worker's own builds are never collected while they run
    /// [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    gc_grace: Option<Duration>,
}

impl WorkerGcArgs {
    fn schedule(&self) -> strata_worker::GcSchedule {
        let default = strata_worker::GcSchedule::default();
        strata_worker::GcSchedule { interval: self.gc_interval.unwrap_or(default.interval), grace: self.gc_grace.unwrap_or(default.grace) }
    }

    /// Options for a worker given where no worker runs (`serve --no-worker`): refused, as
    /// they would silently do nothing.
    fn refuse_without_worker(&self) -> anyhow::Result<()> {
        if self.gc_interval.is_some() || self.gc_grace.is_some() {
            anyhow::bail!("--gc-interval and --gc-grace are for the worker, and --no-worker runs none here\nhint: give them to `strata worker` on the hosts that build");
        }
        Ok(())
    }
}

fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share"));
    base.join("strata/service")
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.no_worker {
        args.gc.refuse_without_worker()?;
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let mut config = strata_service::Config::new(data_dir.clone());
    config.listen = args.listen.clone();
    config.database = args.database.clone();
    config.registry = args.registry.clone();
    config.insecure_registry = args.registry.as_ref().is_some_and(|r| args.insecure_registry.iter().any(|h| r.split('/').next() == Some(h.as_str())));
    config.max_attempts = args.max_attempts.max(1);
    config.heartbeat_s = args.heartbeat.max(1);
    config.max_timeout_s = args.max_timeout.as_secs().max(1) as i64;
    config.default_timeout_s = config.default_timeout_s.min(config.max_timeout_s);
    config.repo_interval_s = args.repo_interval.as_secs() as i64;
    if args.rebuild_tag.is_empty() || args.rebuild_tag == "latest" || !args.rebuild_tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        anyhow::bail!("--rebuild-tag {:?}: a tag other than latest (letters, digits, ._-)", args.rebuild_tag);
    }
    config.rebuild_tag = args.rebuild_tag.clone();
    config.anonymous_read = args.anonymous_read;
    config.policy_file = args.policy.clone();
    if let Some(dir) = &args.mirror {
        if args.registry.is_none() {
            anyhow::bail!("--mirror publishes the images builds push: give --registry too");
        }
        let mirror = strata_service::mirror::MirrorConfig { dir: dir.clone(), base_url: args.mirror_base_url.clone(), sign_key: args.mirror_sign_key.clone() };
        mirror.check().map_err(anyhow::Error::msg)?;
        config.mirror = Some(mirror);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let server = strata_service::Server::bind(config).await?;
        if let Some(t) = args.admin_token.clone().or_else(|| std::env::var("STRATA_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())) {
            server.seed_token(&t, "admin", "admin (--admin-token)").await?;
        }
        let addr = server.addr;
        // SIGHUP: read the policy file again (the old one stays on an error).
        let state = server.state.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                let (outcome, detail) = match state.reload_policy() {
                    Ok(r) => ("ok", format!("{} ({} image rules)", r.file.as_deref().unwrap_or("built-in default policy"), r.image_rules)),
                    Err(e) => ("rejected", format!("{e}; the old policy stays in force")),
                };
                eprintln!("strata serve: policy reload on SIGHUP: {outcome}: {detail}");
                let entry = strata_service::audit::NewEntry { actor: "SIGHUP", role: "-", address: "-", action: "policy reload", target: None, status: 0, outcome, detail: Some(&detail) };
                if let Err(e) = state.db.audit(&entry).await {
                    eprintln!("strata serve: audit log: {e}");
                }
            }
        });
        eprintln!("strata serve: listening on http://{addr}");
        let stop = Arc::new(AtomicBool::new(false));
        let worker = if args.no_worker {
            None
        } else {
            let token = server.replace_token("worker", "in-process worker").await?;
            let config = strata_worker::WorkerConfig {
                client: strata_client::Client::new(&format!("http://{addr}"), Some(token)),
                name: format!("{} (in-process)", strata_worker::host_name()),
                slots: args.slots,
                store: data_dir.join("store"),
                work_dir: data_dir.join("work"),
                strata_exe: std::env::current_exe().context("finding the strata program")?,
                insecure_registries: args.insecure_registry.clone(),
                poll: Duration::from_millis(500),
                gc: args.gc.schedule(),
            };
            let stop = stop.clone();
            Some(std::thread::spawn(move || strata_worker::run(config, stop)))
        };
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        server.run(shutdown).await?;
        stop.store(true, Ordering::Relaxed);
        // A build the in-process worker holds stays leased; its lease expires and the
        // build is queued again for the next start (or another worker).
        drop(worker);
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    server: crate::client::ServerArgs,
    /// Builds run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    slots: usize,
    #[command(flatten)]
    store: crate::compose::StoreArg,
    /// Git caches, checkouts and build caches [default: $XDG_CACHE_HOME/strata/worker].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Name recorded with each attempt [default: the host name].
    #[arg(long)]
    name: Option<String>,
    /// A registry reached over plain HTTP or unverified TLS (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registry: Vec<String>,
    #[command(flatten)]
    gc: WorkerGcArgs,
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let work_dir = args.work_dir.clone().unwrap_or_else(|| strata_repo::MetadataCache::default_root().join("worker"));
    let config = strata_worker::WorkerConfig {
        client,
        name: args.name.clone().unwrap_or_else(strata_worker::host_name),
        slots: args.slots,
        store: args.store.path(),
        work_dir,
        strata_exe: std::env::current_exe().context("finding the strata program")?,
        insecure_registries: args.insecure_registry.clone(),
        poll: Duration::from_secs(1),
        gc: args.gc.schedule(),
    };
    let gc = if config.gc.interval.is_zero() { "no garbage collection".to_string() } else { format!("garbage collection every {}", humantime::format_duration(config.gc.interval)) };
    eprintln!("strata worker {}: {} slot(s), server {}, {gc}", config.name, config.slots, config.client.server());
    strata_worker::run(config, Arc::new(AtomicBool::new(false)));
    Ok(ExitCode::SUCCESS)
}
