//! `strata`: the command line. It parses arguments, calls the libraries and prints; the
//! work itself lives in the crates under `crates/`.

mod admin;
mod build;
mod client;
mod compose;
mod imagerpm;
mod images;
mod login;
mod lua;
mod progress;
mod publish;
mod registry;
mod report;
mod rebuild;
mod resolve;
mod rpmpull;
mod service;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "strata", version, about = "Container images composed from RPM repositories")]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve every image of a spec into an exact package set and write strata.lock.
    Resolve(resolve::ResolveArgs),
    /// Build every image of a spec (resolving first unless --locked) into the image store.
    Compose(compose::ComposeArgs),
    /// Build a Dockerfile into the image store (RUN through an OCI runtime, no daemon).
    Build(build::BuildArgs),
    /// Copy an image from a registry into the store.
    Pull(registry::PullArgs),
    /// Copy an image from the store to a registry.
    Push(registry::PushArgs),
    /// Check credentials against a registry and record them in the containers auth file.
    Login(login::LoginArgs),
    /// Remove a registry's credentials (or all, with --all) from the containers auth file.
    Logout(login::LogoutArgs),
    /// List the images in the store.
    Images(images::ImagesArgs),
    /// Show an image's config, layers and installed packages.
    Inspect(images::InspectArgs),
    /// Write images to a docker-archive (`docker load`) or oci-archive file.
    Save(images::SaveArgs),
    /// Remove image tags (their blobs stay until gc).
    Rmi(images::RmiArgs),
    /// Remove what no tagged image needs from the store and the build cache, and cached RPMs not used lately.
    Gc(images::GcArgs),
    /// Wrap images into RPMs that provide container-image(NAME) and container-image-id(ID).
    Rpm(imagerpm::RpmArgs),
    /// Publish images as an ftp/http mirror tree: xz archives, CHECKSUM, a yum repository of their RPMs, index.json/html.
    Publish(publish::PublishArgs),
    /// Run the build service (HTTP API, queue, and a worker unless --no-worker).
    Serve(service::ServeArgs),
    /// Run builds for a build service (talks to it over HTTP only).
    Worker(service::WorkerArgs),
    /// Submit a build of a git source (strata.json or a Dockerfile) to the service.
    Submit(client::SubmitArgs),
    /// List the service's builds, newest first.
    Builds(client::BuildsArgs),
    /// Print a build's log.
    Logs(client::LogsArgs),
    /// Cancel a queued or running build.
    Cancel(client::CancelArgs),
    /// Show a build's record: source, inputs, outputs, attempts, times.
    BuildInfo(client::BuildInfoArgs),
    /// Manage the service's tokens.
    Token(client::TokenArgs),
    /// Which images ship a package (--rpm 'openssl < 3.0.22'), or an image's builds.
    Query(client::QueryArgs),
    /// What a repository change would rebuild now, in order and why (nothing is built).
    RebuildPlan(rebuild::PlanArgs),
    /// The repositories the service watches: list them, or check them now and rebuild.
    Repos(rebuild::ReposArgs),
    /// Rebuild events: what changed, what was rebuilt, how long it took.
    Events(rebuild::EventsArgs),
    /// The images registered for automatic rebuilds, with their floating tags.
    Tracked(rebuild::TrackedArgs),
    /// Move an image's floating tag (testing → latest) in the registry.
    Promote(rebuild::PromoteArgs),
    /// The service's audit log: every state-changing call, who, from where, the outcome.
    Audit(admin::AuditArgs),
    /// The service's policy: check a file here, or make the server read its file again.
    Policy(admin::PolicyArgs),
}

/// Options that pick and load repositories, shared by every command that reads a spec.
#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// Metadata cache folder [default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Value of $releasever in repo URLs.
    #[arg(long, value_name = "VERSION")]
    pub releasever: Option<String>,
    /// Folder of .repo files for repos the spec names by id only.
    #[arg(long, value_name = "DIR", default_value = "/etc/yum.repos.d")]
    pub reposdir: PathBuf,
    /// Enable repos matching this id pattern (applied after --disablerepo).
    #[arg(long, value_name = "ID")]
    pub enablerepo: Vec<String>,
    /// Disable repos matching this id pattern (`*` for all).
    #[arg(long, value_name = "ID")]
    pub disablerepo: Vec<String>,
    /// Check every repo's repomd.xml now, even if the cached copy has not expired.
    #[arg(long)]
    pub refresh: bool,
}

fn main() -> ExitCode {
    if lua::is_helper() {
        return lua::main();
    }
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
    if matches!(
        cli.command,
        Command::Images(_) | Command::Inspect(_) | Command::Builds(_) | Command::Logs(_) | Command::BuildInfo(_) | Command::Query(_) | Command::RebuildPlan(_) | Command::Repos(_) | Command::Events(_) | Command::Tracked(_) | Command::Audit(_)
    ) {
        // Commands that only print: `strata builds | head` ends quietly, as a Unix tool
        // does, instead of panicking on a closed pipe. (Not for the service, the worker or
        // builds: they write to sockets and children's pipes and must see EPIPE.)
        // SAFETY: no other thread exists yet; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Resolve(args) => resolve::run(args),
        Command::Compose(args) => compose::run(args),
        Command::Build(args) => build::run(args),
        Command::Pull(args) => registry::pull(args),
        Command::Push(args) => registry::push(args),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Images(args) => images::images(args),
        Command::Inspect(args) => images::inspect(args),
        Command::Save(args) => images::save(args),
        Command::Rpm(args) => imagerpm::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Gc(args) => images::gc(args),
        Command::Rmi(args) => images::rmi(args),
        Command::Serve(args) => service::serve(args),
        Command::Worker(args) => service::worker(args),
        Command::Submit(args) => client::submit(args),
        Command::Builds(args) => client::builds(args),
        Command::Logs(args) => client::logs(args),
        Command::Cancel(args) => client::cancel(args),
        Command::BuildInfo(args) => client::build_info(args),
        Command::Token(args) => client::token(args),
        Command::Query(args) => client::query(args),
        Command::RebuildPlan(args) => rebuild::plan(args),
        Command::Repos(args) => rebuild::repos(args),
        Command::Events(args) => rebuild::events(args),
        Command::Tracked(args) => rebuild::tracked(args),
        Command::Promote(args) => rebuild::promote(args),
        Command::Audit(args) => admin::audit(args),
        Command::Policy(args) => admin::policy(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once. Many error types put their source's text in
/// their own message *and* return it as `source()` (thiserror's `"{what}: {source}"` with a
/// `#[source]` field, io::Errors wrapped with their path); printing the whole chain as
/// anyhow's `{:#}` does would say "No such file or directory (os error 2)" twice. A cause
/// whose text the message already holds adds nothing and is left out.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !c.is_empty() && !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_said_once() {
        // An error that embeds its source's text and also returns it as source().
        #[derive(Debug)]
        struct Embeds {
            path: String,
            source: std::io::Error,
        }
        impl std::fmt::Display for Embeds {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "reading {}: {}", self.path, self.source)
            }
        }
        impl std::error::Error for Embeds {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(Embeds { path: "/x".into(), source: io }).context("opening the store");
        let text = super::error_text(&e);
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        assert!(text.starts_with("opening the store: reading /x: No such file"), "{text}");
    }
}
