//! The build service's client commands: `submit`, `builds`, `logs`, `cancel`,
//! `build-info` and `token create`, each one call (or a poll loop) of `strata-client`.

use anyhow::bail;
use clap::{Args, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use strata_client::{Build, BuildFilter, Client, Settings, Source, SubmitRequest, TokenRequest};

/// Which service, with which token.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// The service's URL [default: $STRATA_SERVER, else server in ~/.config/strata/client.toml].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Bearer token [default: $STRATA_TOKEN, else token in ~/.config/strata/client.toml].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

impl ServerArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::from_settings(&Settings::resolve(self.server.clone(), self.token.clone())?))
    }
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The git repository (anything `git clone` accepts).
    git_url: String,
    /// Branch, tag or commit [default: the remote HEAD].
    #[arg(long = "ref", value_name = "REF")]
    r#ref: Option<String>,
    /// Folder inside the repository holding strata.json or a Dockerfile.
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
    /// Spec images to build, or a Dockerfile image's name (repeatable).
    #[arg(long = "image", value_name = "NAME")]
    images: Vec<String>,
    /// Push only a unique scratch tag; never move latest.
    #[arg(long)]
    scratch: bool,
    /// Run-time limit (queue time does not count), e.g. 30m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Follow the log until the build ends; print each image's reference; exit status =
    /// outcome.
    #[arg(long)]
    wait: bool,
    /// Do not register the built images for automatic rebuilds.
    #[arg(long)]
    no_track: bool,
    /// What a Dockerfile's RUN may reach: none, or host (when the service's policy allows).
    #[arg(long, value_name = "none|host")]
    network: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let req = SubmitRequest {
        source: Source { url: args.git_url.clone(), r#ref: args.r#ref.clone(), commit: None, path: args.path.clone() },
        images: args.images.clone(),
        scratch: args.scratch,
        timeout_seconds: args.timeout.map(|d| d.as_secs().max(1) as i64),
        no_track: args.no_track,
        network: args.network.clone(),
    };
    let b = client.submit(&req)?;
    eprintln!("build {} queued: {} at {}", b.id, b.source.url, b.source.commit.as_deref().unwrap_or("?"));
    if !args.wait {
        println!("{}", b.id);
        return Ok(ExitCode::SUCCESS);
    }
    let b = follow(&client, b.id, &mut std::io::stderr())?;
    outcome(&b)
}

/// Copies the log to `out` until the build ends; returns the ended build.
fn follow(client: &Client, id: i64, out: &mut dyn Write) -> anyhow::Result<Build> {
    let mut offset = 0;
    loop {
        let chunk = client.log(id, offset)?;
        out.write_all(chunk.data.as_bytes())?;
        out.flush()?;
        offset = chunk.next;
        if chunk.complete {
            // The server says complete only when the build has ended and this read
            // reached the end of its log.
            return Ok(client.build(id)?);
        }
        if chunk.data.is_empty() {
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

fn outcome(b: &Build) -> anyhow::Result<ExitCode> {
    match b.state.as_str() {
        "built" => {
            for img in b.result.iter().flat_map(|r| &r.images) {
                println!("{}", img.reference);
            }
            Ok(ExitCode::SUCCESS)
        }
        state => {
            eprintln!("build {} {state}: {}", b.id, b.reason.as_deref().unwrap_or("no reason recorded"));
            Ok(ExitCode::FAILURE)
        }
    }
}

#[derive(Args, Debug)]
pub struct BuildsArgs {
    /// Only builds of this image.
    #[arg(long)]
    image: Option<String>,
    /// Only builds in this state (queued, running, built, failed, canceled).
    #[arg(long)]
    state: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// An array of builds, newest first, as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn builds(args: BuildsArgs) -> anyhow::Result<ExitCode> {
    let list = args.server.client()?.builds(&BuildFilter { image: args.image.clone(), state: args.state.clone(), limit: Some(args.limit) })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>6}  {:<9}  {:<24}  {:<24}  SOURCE", "ID", "STATE", "IMAGE", "CREATED");
    for b in &list {
        let commit = b.source.commit.as_deref().map_or("", |c| &c[..c.len().min(12)]);
        println!("{:>6}  {:<9}  {:<24}  {:<24}  {} {commit}", b.id, b.state, b.image, b.created, b.source.url);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    id: i64,
    /// Keep printing until the build ends.
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let mut out = std::io::stdout().lock();
    if args.follow {
        follow(&client, args.id, &mut out)?;
    } else {
        let mut offset = 0;
        loop {
            let c = client.log(args.id, offset)?;
            out.write_all(c.data.as_bytes())?;
            if c.next == offset || c.data.is_empty() {
                break;
            }
            offset = c.next;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    id: i64,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let b = args.server.client()?.cancel(args.id)?;
    match b.state.as_str() {
        "running" => println!("build {}: cancel requested; its worker stops it", b.id),
        s => println!("build {}: {s}", b.id),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct BuildInfoArgs {
    id: i64,
    /// The whole record as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn build_info(args: BuildInfoArgs) -> anyhow::Result<ExitCode> {
    let b = args.server.client()?.build(args.id)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("build {}: {}{}", b.id, b.state, b.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default());
    println!("source:   {} {} -> {}{}", b.source.url, b.source.r#ref.as_deref().unwrap_or("HEAD"), b.source.commit.as_deref().unwrap_or("?"), b.source.path.as_ref().map(|p| format!(" path {p}")).unwrap_or_default());
    println!("trigger:  {} by {}{}{}", b.trigger, b.submitter, if b.scratch { " (scratch)" } else { "" }, if b.track || b.scratch { "" } else { " (not tracked)" });
    if let Some(r) = &b.rebuild {
        let parent = r.parent_build.map(|p| format!(", after build {p}")).unwrap_or_default();
        println!("rebuild:  event {}{parent}, pushed to {}{}", r.event, r.push_tag, r.base_override.as_deref().map(|o| format!(", FROM {o}")).unwrap_or_default());
        for c in &r.changes {
            println!("          {} {} → {}", c.name, c.old.as_deref().unwrap_or("(new)"), c.new.as_deref().unwrap_or("(removed)"));
        }
    }
    println!("times:    created {}  started {}  finished {}", b.created, b.started.as_deref().unwrap_or("-"), b.finished.as_deref().unwrap_or("-"));
    println!("          queued {:.1} s, ran {:.1} s (timeout {} s), attempts {}/{}", b.queued_seconds, b.run_seconds, b.timeout_seconds, b.attempts, b.max_attempts);
    for a in &b.attempt_log {
        println!("attempt {}: {} on {} from {} {}", a.number, a.outcome, a.worker, a.started, a.reason.as_deref().unwrap_or(""));
    }
    if let Some(r) = &b.result {
        println!("input:    {} {}{}  strata {}", r.kind, r.input_digest, r.lock_digest.as_ref().map(|l| format!("  lock {l}")).unwrap_or_default(), r.strata_version);
        for i in &r.images {
            println!("image {}: {}", i.name, i.reference);
            println!("  manifest {}  config {}  tags {}", i.manifest_digest, i.config_digest, i.tags.join(","));
            if let Some(base) = &i.base {
                println!("  base {} {}", base.name, base.digest);
            }
            println!("  {} packages", i.packages.len());
        }
    }
    if let Some(tail) = &b.log_tail {
        println!("last log lines:\n{tail}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// A new token; printed once (the service keeps only its hash).
    Create {
        /// admin, submitter, worker or reader.
        #[arg(long)]
        role: String,
        /// Who or what holds it.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Every token (never a secret), revoked ones too.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke a token by id (`strata token list`): refused from then on (every server
    /// within 10 s).
    Revoke {
        id: i64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TokenCommand::Create { role, name, server } => {
            if !["admin", "submitter", "worker", "reader"].contains(&role.as_str()) {
                bail!("--role {role}: one of admin, submitter, worker, reader");
            }
            let t = server.client()?.create_token(&TokenRequest { role, name })?;
            println!("{}", t.token);
        }
        TokenCommand::List { json, server } => {
            let tokens = server.client()?.tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                println!("{:>5}  {:<10}  {:<24}  {:<24}  NAME", "ID", "ROLE", "CREATED", "REVOKED");
                for t in &tokens {
                    println!("{:>5}  {:<10}  {:<24}  {:<24}  {}", t.id, t.role, t.created, t.revoked.as_deref().unwrap_or("-"), t.name);
                }
            }
        }
        TokenCommand::Revoke { id, server } => {
            let t = server.client()?.revoke_token(id)?;
            eprintln!("token {} ({}, {}) revoked", t.id, t.name, t.role);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["rpm", "image"])))]
pub struct QueryArgs {
    /// Images whose current build holds a package matching NAME [OP EVR] ('openssl < 3.0.22').
    #[arg(long, value_name = "DEP")]
    rpm: Option<String>,
    /// With --rpm: every build, not only each image's current one.
    #[arg(long)]
    all: bool,
    /// An image's builds, newest first.
    #[arg(long, value_name = "NAME")]
    image: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    if let Some(image) = args.image {
        return builds(BuildsArgs { image: Some(image), state: None, limit: 1000, json: args.json, server: args.server });
    }
    let hits = args.server.client()?.query_rpm(args.rpm.as_deref().unwrap_or_default(), args.all)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&hits)?);
    } else {
        for h in &hits {
            let tags = if h.tags.is_empty() { String::new() } else { format!(" [{}]", h.tags.join(",")) };
            println!("{}  build {}{}{tags}  {}", h.image, h.build_id, if h.scratch { " (scratch)" } else { "" }, h.packages.join(" "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
