//! `strata resolve`: arguments in, `strata_pipeline::resolve`, the lock or a summary out.

use crate::RepoArgs;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use strata_lock::Lockfile;
use strata_pipeline::{Cancel, RepoSettings, ResolveRequest};

#[derive(Args, Debug)]
pub struct ResolveArgs {
    /// The spec (JSON).
    spec: PathBuf,
    /// Resolve only this image (repeatable); other images in the lock are kept.
    #[arg(long, value_name = "NAME")]
    image: Vec<String>,
    /// Lock file to write [default: strata.lock beside the spec].
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
    /// Print the lock as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Do not write: fail, naming every difference, unless the lock already matches.
    #[arg(long)]
    locked: bool,
    #[command(flatten)]
    repos: RepoArgs,
}

impl RepoArgs {
    pub fn settings(&self) -> RepoSettings {
        RepoSettings {
            cache_dir: self.cache_dir.clone(),
            releasever: self.releasever.clone(),
            reposdir: self.reposdir.clone(),
            enable: self.enablerepo.clone(),
            disable: self.disablerepo.clone(),
            refresh: self.refresh,
        }
    }
}

pub fn run(args: ResolveArgs) -> anyhow::Result<ExitCode> {
    let req = ResolveRequest { spec: args.spec, images: args.image, lock: args.lock, locked: args.locked, repos: args.repos.settings() };
    let progress = crate::progress::Bars::new(!args.json, "loading repository metadata and resolving");
    let resolved = strata_pipeline::resolve(&req, &progress, &Cancel::new())?;
    if args.json {
        let mut out = std::io::stdout().lock();
        out.write_all(resolved.lock.to_json().as_bytes()).context("writing to stdout")?;
    } else {
        print_summary(&resolved.lock, &resolved.lock_file, resolved.locked);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(lock: &Lockfile, path: &Path, locked: bool) {
    for (name, image) in &lock.images {
        let download: u64 = image.packages.iter().map(|p| p.size).sum();
        let installed: u64 = image.packages.iter().map(|p| p.installed_size).sum();
        println!(
            "{name}: {} packages, {} to download, {} installed",
            image.packages.len(),
            human_bytes(download),
            human_bytes(installed)
        );
    }
    if locked {
        println!("{} is up to date", path.display());
    } else {
        println!("wrote {}", path.display());
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(80 * 1024 * 1024), "80.0 MiB");
    }
}
