//! `strata serve --mirror DIR`: every successful non-scratch build is published to an
//! ftp/http mirror tree (`strata-mirror`): its pushed images are pulled back from the
//! registry by digest into a store of the server's own (`DATA_DIR/mirror-store`), then
//! published as `strata publish` would. The registry is the source because the worker that
//! built the images may run on another host; pulling by the digest the worker recorded
//! publishes exactly what was pushed.
//!
//! Publishing runs after the build is recorded as built, in the background: a failure (the
//! registry unreachable, the mirror folder blocked) is a build event and a line in the
//! server's log, never a failed build. Several completions publish one after another (the
//! mirror's lock).

use crate::AppState;
use std::path::PathBuf;
use strata_client::{Build, ImageOutput};

/// Where and how builds are published.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    pub dir: PathBuf,
    pub base_url: Option<String>,
    /// An armored OpenPGP secret key that clear-signs the CHECKSUM files.
    pub sign_key: Option<PathBuf>,
}

impl MirrorConfig {
    /// Checks the settings once at start, so a bad key or URL stops `strata serve` at once
    /// instead of failing every publish later.
    pub fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.base_url {
            strata_mirror::index::check_base_url(url).map_err(|e| e.to_string())?;
        }
        if let Some(key) = &self.sign_key {
            strata_mirror::checksum::Signer::load(key).map_err(|e| e.to_string())?;
        }
        if let Ok(md) = std::fs::metadata(&self.dir) {
            if !md.is_dir() {
                return Err(format!("--mirror {} is not a folder", self.dir.display()));
            }
        }
        Ok(())
    }
}

/// After `build` was recorded as built: publish its images in the background, when the
/// server has a mirror and the build is not a scratch build.
pub fn after_build(st: &AppState, build: &Build) {
    let Some(cfg) = st.config.mirror.clone() else { return };
    let Some(result) = build.result.clone() else { return };
    if build.state != "built" || build.scratch || result.images.is_empty() {
        return;
    }
    let (st, id) = (st.clone(), build.id);
    let store_dir = st.config.data_dir.join("mirror-store");
    let insecure = st.config.insecure_registry;
    tokio::spawn(async move {
        let outcome = tokio::task::spawn_blocking(move || publish(&cfg, &store_dir, insecure, &result.images)).await;
        let events = outcome.unwrap_or_else(|e| vec![Err(format!("the publish task ended: {e}"))]);
        for event in events {
            let (event, detail) = match event {
                Ok(detail) => ("mirror published", detail),
                Err(detail) => {
                    eprintln!("strata serve: build {id}: publishing to the mirror failed: {detail}");
                    ("mirror failed", detail)
                }
            };
            if let Err(e) = st.db.note(id, event, "mirror", &detail).await {
                eprintln!("strata serve: build {id}: recording the mirror event: {e}");
            }
        }
    });
}

/// The tag the image is known by in the mirror: its floating tag (`latest`, or the rebuild
/// tag), not the unique `build-N`.
fn floating_tag(img: &ImageOutput) -> String {
    img.tags.iter().find(|t| !t.starts_with("build-")).cloned().unwrap_or_else(|| "latest".into())
}

/// Pulls the images (and the bases of Dockerfile builds, whose ids the RPMs require) and
/// publishes each on its own, so that one that cannot be published (a file in the way of
/// its folder) does not keep the others out: one event detail (or failure) per image.
fn publish(cfg: &MirrorConfig, store_dir: &std::path::Path, insecure: bool, images: &[ImageOutput]) -> Vec<Result<String, String>> {
    match pull(store_dir, insecure, images) {
        Err(e) => vec![Err(e)],
        Ok((store, refs)) => {
            let signer = || cfg.sign_key.as_deref().map(strata_mirror::checksum::Signer::load).transpose().map_err(|e| e.to_string());
            let outcomes = refs
                .iter()
                .map(|r| {
                    let opts = strata_mirror::Options { base_url: cfg.base_url.clone(), signer: signer()?, xz_preset: None };
                    let report = strata_mirror::publish(&store, std::slice::from_ref(r), &cfg.dir, &opts, &mut |_| {}).map_err(|e| format!("{r}: {e}"))?;
                    let i = report.images.first().ok_or_else(|| format!("{r}: nothing published"))?;
                    Ok(format!("{} → {} and {} ({}, {} files written)", i.reference, i.archive, i.rpm, i.status, report.written.len()))
                })
                .collect();
            // The store only stages what is published: what a moved floating tag or an
            // untagged base left behind goes once it is an hour old (a publish running now
            // keeps what it just pulled), so the store holds about the current images.
            if let Err(e) = store.gc(std::time::Duration::from_secs(3600)) {
                eprintln!("strata serve: pruning the mirror's store {}: {e}", store_dir.display());
            }
            outcomes
        }
    }
}

/// The images (tagged NAME:TAG) and their bases (by digest) in the mirror's store.
fn pull(store_dir: &std::path::Path, insecure: bool, images: &[ImageOutput]) -> Result<(strata_oci::store::Store, Vec<String>), String> {
    use strata_registry::{Client, ClientConfig, Credentials, PullOptions, Reference};
    let store = strata_oci::store::Store::open_or_create(store_dir).map_err(|e| format!("the mirror's store {}: {e}", store_dir.display()))?;
    let mut config = ClientConfig { credentials: Credentials::from_default_files().map_err(|e| e.to_string())?, ..ClientConfig::default() };
    let mut refs = Vec::new();
    let mut pulls: Vec<(Reference, Option<String>)> = Vec::new();
    for img in images {
        let reference = Reference::parse(&img.reference).map_err(|e| format!("{}: {e}", img.reference))?;
        if let Some(base) = &img.base {
            // By digest, untagged: the store keeps it for the RPM's Requires.
            let name = Reference::parse(&base.name).map_err(|e| format!("base {}: {e}", base.name))?;
            let by_digest = Reference::parse(&format!("{}/{}@{}", name.registry(), name.repository(), base.digest)).map_err(|e| format!("base {}: {e}", base.name))?;
            pulls.push((by_digest, None));
        }
        let tagged = format!("{}:{}", img.name, floating_tag(img));
        pulls.push((reference, Some(tagged.clone())));
        refs.push(tagged);
    }
    if insecure {
        for (r, _) in &pulls {
            config = config.insecure(r.registry());
        }
    }
    let client = Client::new(config);
    for (reference, tag) in &pulls {
        let tags = match tag {
            Some(t) => vec![strata_oci::reference::ImageRef::parse(t).map_err(|e| format!("{t}: {e}"))?],
            None => Vec::new(),
        };
        client.pull(reference, &store, &PullOptions { tags, ..PullOptions::default() }).map_err(|e| format!("pulling {reference}: {e}"))?;
    }
    Ok((store, refs))
}
