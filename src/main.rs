//! `strata`: the command line. It parses arguments, calls the libraries and prints; the
//! work itself lives in the crates under `crates/`.

mod build;
mod compose;
mod fetch;
mod imagerpm;
mod images;
mod registry;
mod report;
mod resolve;
mod sandbox;

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
    /// List the images in the store.
    Images(images::ImagesArgs),
    /// Show an image's config, layers and installed packages.
    Inspect(images::InspectArgs),
    /// Write images to a docker-archive (`docker load`) or oci-archive file.
    Save(images::SaveArgs),
    /// Remove image tags (their blobs stay until gc).
    Rmi(images::RmiArgs),
    /// Remove what no tagged image needs from the store and the build cache.
    Gc(images::GcArgs),
    /// Wrap images into RPMs that provide container-image(NAME) and container-image-id(ID).
    Rpm(imagerpm::RpmArgs),
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
    let result = match cli.command {
        Command::Resolve(args) => resolve::run(args),
        Command::Compose(args) => compose::run(args),
        Command::Build(args) => build::run(args),
        Command::Pull(args) => registry::pull(args),
        Command::Push(args) => registry::push(args),
        Command::Images(args) => images::images(args),
        Command::Inspect(args) => images::inspect(args),
        Command::Save(args) => images::save(args),
        Command::Rpm(args) => imagerpm::run(args),
        Command::Gc(args) => images::gc(args),
        Command::Rmi(args) => images::rmi(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
