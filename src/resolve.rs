//! `strata resolve`.

use crate::RepoArgs;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use strata_lock::{diff, resolve_spec, Lockfile, ResolveOptions};
use strata_repo::MetadataCache;
use strata_spec::{RepoOptions, Spec};

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
    pub fn resolve_options(&self, images: Vec<String>) -> ResolveOptions {
        ResolveOptions {
            cache: MetadataCache::new(
                self.cache_dir.clone().unwrap_or_else(MetadataCache::default_root),
            ),
            repos: RepoOptions {
                reposdir: self.reposdir.clone(),
                enable: self.enablerepo.clone(),
                disable: self.disablerepo.clone(),
            },
            releasever: self.releasever.clone(),
            refresh: self.refresh,
            images,
        }
    }
}

/// `strata.lock` beside the spec unless told otherwise.
pub fn lock_path(spec: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map(Path::to_path_buf).unwrap_or_else(|| {
        spec.parent().unwrap_or(Path::new(".")).join("strata.lock")
    })
}

/// [`lock_path`], refused when the default lock beside the spec is a symlink: the spec's
/// folder may be someone else's repository, and a committed `strata.lock -> /etc/passwd`
/// would have a root `strata resolve` replace that file. A path given with `--lock` is the
/// user's own choice and follows strata-output's rule (links followed, streams written
/// through).
pub fn checked_lock_path(spec: &Path, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = lock_path(spec, explicit);
    if explicit.is_none() {
        if let Ok(target) = std::fs::read_link(&path) {
            anyhow::bail!(
                "refusing to use {}: it is a symlink (to {}), and a lock beside the spec is never read or written through a link, which could lead anywhere on this machine\nhint: remove the link, or name the lock file with --lock",
                path.display(),
                target.display()
            );
        }
    }
    Ok(path)
}

pub fn run(args: ResolveArgs) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    let lock_file = checked_lock_path(&args.spec, args.lock.as_deref())?;
    let progress = Spinner::start(!args.json, "loading repository metadata and resolving");
    let fresh = resolve_spec(&spec, &args.repos.resolve_options(args.image.clone()));
    progress.finish();
    let fresh = fresh?;

    // Only a regular file is read back: `--lock /dev/stdout` or a FIFO is an output only.
    let existing = if lock_file.is_file() || args.locked {
        Some(Lockfile::read(&lock_file)?)
    } else {
        None
    };

    if args.locked {
        let mut old = existing.expect("read above when --locked");
        let settings = strata_lock::layer_settings(&spec.layers);
        let mut expected = strata_lock::updated(Some(&old), fresh.clone(), |n| spec.images.contains_key(n), true, &settings);
        if !args.image.is_empty() {
            old.images.retain(|n, _| args.image.contains(n));
            expected.images.retain(|n, _| args.image.contains(n));
        }
        let differences = diff(&old, &expected);
        if !differences.is_empty() {
            let mut msg =
                format!("{} does not match the spec and repositories:", lock_file.display());
            for d in &differences {
                msg.push_str(&format!("\n  {d}"));
            }
            msg.push_str("\nrun `strata resolve` without --locked to update it");
            anyhow::bail!(msg);
        }
    } else {
        // Images resolved now replace their old entries; with --image the others stay,
        // unless the spec no longer has them. Layers are planned again for all images.
        let settings = strata_lock::layer_settings(&spec.layers);
        let merged = strata_lock::updated(existing.as_ref(), fresh.clone(), |n| spec.images.contains_key(n), !args.image.is_empty(), &settings);
        merged.write(&lock_file)?;
    }

    if args.json {
        let mut out = std::io::stdout().lock();
        out.write_all(fresh.to_json().as_bytes()).context("writing to stdout")?;
    } else {
        print_summary(&fresh, &lock_file, args.locked);
    }
    Ok(ExitCode::SUCCESS)
}

/// A spinner on stderr while work of unknown length runs; nothing at all unless stderr is a
/// terminal, so scripts and `--json` consumers see clean output.
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub fn start(wanted: bool, message: &str) -> Spinner {
        if !wanted || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Spinner(Some(bar))
    }

    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
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
    fn lock_beside_spec() {
        assert_eq!(lock_path(Path::new("/a/b/images.json"), None), Path::new("/a/b/strata.lock"));
        assert_eq!(lock_path(Path::new("images.json"), None), Path::new("strata.lock"));
        assert_eq!(lock_path(Path::new("x.json"), Some(Path::new("/l"))), Path::new("/l"));
    }

    #[test]
    fn bytes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(80 * 1024 * 1024), "80.0 MiB");
    }
}
