//! `strata pull 'rpm:CAPABILITY'`: an image out of a yum repository of image RPMs
//! (`strata-imagerpm`'s `pull_from_repos`). This file holds only its flags and printing;
//! `pull` hands a reference with the `rpm:` transport here.

use crate::compose::StoreArg;
use crate::RepoArgs;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use strata_imagerpm::{pull_from_repos, RepoQuery};
use strata_oci::reference::ImageRef;
use strata_oci::store::Store;

/// The transport prefix that names a capability in RPM repositories.
pub const PREFIX: &str = "rpm:";

/// Flags of `strata pull` that only an `rpm:` source takes.
#[derive(Args, Debug, Clone)]
pub struct RpmPullFlags {
    /// rpm: a yum repository of image RPMs to search (repeatable; a URL or a path).
    #[arg(long = "repo", value_name = "URL")]
    pub repo: Vec<String>,
    /// rpm: search the repositories of this spec (as `strata compose` uses them) [default:
    /// without --repo, every enabled repository of --reposdir].
    #[arg(long = "spec", value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// rpm: check the signatures of RPMs from --repo repositories with this key (repeatable;
    /// a path or URL). Spec repositories follow their own gpgcheck/gpgkey.
    #[arg(long = "gpgkey", value_name = "KEY")]
    pub gpgkey: Vec<String>,
    /// rpm: also load the base images the image's RPM requires (container-image-id), from
    /// their own RPMs.
    #[arg(long = "with-base")]
    pub with_base: bool,
    /// rpm: the RPM arch to choose for [default: this machine's].
    #[arg(long = "arch", value_name = "ARCH")]
    pub arch: Option<String>,
    /// rpm: print what was loaded as JSON.
    #[arg(long = "json")]
    pub json: bool,
    #[command(flatten)]
    pub repos: RepoArgs,
}

impl RpmPullFlags {
    /// The rpm-only flags given, for refusing them on another transport.
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (set, name) in [(!self.repo.is_empty(), "--repo"), (self.spec.is_some(), "--spec"), (!self.gpgkey.is_empty(), "--gpgkey"), (self.with_base, "--with-base"), (self.arch.is_some(), "--arch"), (self.json, "--json")] {
            if set {
                out.push(name);
            }
        }
        out
    }
}

/// `strata pull rpm:CAPABILITY`: `source` is the whole reference, prefix included.
pub fn pull(source: &str, tag: Option<&str>, flags: &RpmPullFlags, store: &StoreArg) -> anyhow::Result<ExitCode> {
    let capability = source.strip_prefix(PREFIX).unwrap_or(source).trim();
    if capability.is_empty() {
        anyhow::bail!("`{source}` names no capability\nhint: strata pull 'rpm:container-image(NAME)' --repo URL");
    }
    let tag = tag.map(ImageRef::parse).transpose().context("-t")?;
    let store_path = store.path();
    let store = Store::open_or_create(&store_path).with_context(|| format!("opening image store {}", store_path.display()))?;
    let query = RepoQuery {
        capability: capability.to_string(),
        spec: flags.spec.clone(),
        urls: flags.repo.clone(),
        url_gpgkeys: flags.gpgkey.clone(),
        arch: flags.arch.clone().unwrap_or_else(|| strata_rpm::arch::host_arch().to_string()),
        with_base: flags.with_base,
        settings: flags.repos.settings(),
    };
    let report = pull_from_repos(&store, &query, tag.as_ref())?;
    if flags.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for p in report.bases.iter().chain([&report.image]) {
            println!("{}  {}  {}", p.image.image, p.image.image_id, p.image.manifest);
            eprintln!("  from {} ({})", p.image.package, p.repo);
        }
    }
    Ok(ExitCode::SUCCESS)
}
