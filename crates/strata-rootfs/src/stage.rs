//! A build stage's root filesystem for one step: the image's layers below, a writable
//! directory the step runs in, and afterwards the step's changes as a [`Diff`].
//!
//! ```text
//! PARENT/stage-<id>/lock     flock'ed while the stage lives
//!                   upper/   overlay: the step's writes
//!                   work/    overlay: overlayfs' scratch directory
//!                   merged/  overlay: the root the step sees
//!                   root/    plain fallback: the merged layers copied, the root the step sees
//!                   empty/   the lone lower of a stage with no layers (FROM scratch)
//! ```
//!
//! A stage is for one step: the next step gets a new stage whose lowers end with the layer
//! this one produced, so it sees exactly what the image will contain (clamped times,
//! excluded mount points), never leftovers of the previous run.

use crate::cache::LayerCache;
use crate::diff::{self, walk::Snapshot, Diff, DiffOptions};
use crate::error::{Context, Error, Result};
use crate::lower::LowerView;
use crate::mount::{self, Layout, MountApi};
use crate::plain;
use rustix::fs::{self as rfs, FlockOperation};
use rustix::io::Errno;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use strata_oci::oci_spec::image::Digest;

/// How the stage's root is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An overlay mount: cached layers as lowerdirs, the step's writes in an upper dir.
    Overlay,
    /// A plain directory holding a copy of the merged layers, diffed by walking it.
    Plain,
}

#[derive(Debug, Clone)]
pub struct StageOptions {
    /// `None`: overlay when it can be mounted here, plain otherwise (see
    /// [`Stage::fallback_reason`]).
    pub backend: Option<Backend>,
    pub mount_api: MountApi,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions { backend: None, mount_api: MountApi::Auto }
    }
}

enum Kind {
    Overlay { upper: PathBuf, merged: PathBuf, mounted: bool },
    Plain { snapshot: Snapshot },
}

/// One step's root filesystem; unmounted and deleted when dropped (or by [`Stage::remove`],
/// which reports failures).
pub struct Stage {
    dir: PathBuf,
    _lock: File,
    /// Uppermost first.
    lowers: Vec<PathBuf>,
    root: PathBuf,
    kind: Kind,
    fallback_reason: Option<String>,
}

const PREFIX: &str = "stage-";
const NEW_PREFIX: &str = ".new-stage-";

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:08x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir(p).ctx(|| format!("creating {}", p.display()))
}

impl Stage {
    /// A stage under `parent` over `lowers`, unpacked layer directories (from
    /// [`LayerCache`]) listed bottom first, as an image config lists its diff_ids.
    pub fn create(parent: &Path, lowers: &[PathBuf], opts: &StageOptions) -> Result<Stage> {
        if lowers.len() > mount::MAX_LOWERS {
            return Err(Error::unsupported(b"", format!("{} layers; overlayfs stacks at most {}", lowers.len(), mount::MAX_LOWERS)));
        }
        fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        // Built under a name `remove_stale` ignores, and renamed once its lock is held.
        let id = unique();
        let building = parent.join(format!("{NEW_PREFIX}{id}"));
        mkdir(&building)?;
        let lock = File::create(building.join("lock")).ctx(|| format!("creating {}/lock", building.display()))?;
        rfs::flock(&lock, FlockOperation::LockExclusive).map_err(|e| Error::io("locking the stage", e.into()))?;
        let dir = parent.join(format!("{PREFIX}{id}"));
        fs::rename(&building, &dir).ctx(|| format!("renaming {}", building.display()))?;

        let mut top_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
        if top_first.is_empty() {
            let empty = dir.join("empty");
            mkdir(&empty)?;
            // FROM scratch: `/` is 0755, not the caller's umask.
            fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o755)).ctx(|| format!("chmod {}", empty.display()))?;
            top_first.push(empty);
        }
        let mut stage = Stage {
            dir,
            _lock: lock,
            lowers: top_first,
            root: PathBuf::new(),
            kind: Kind::Plain { snapshot: Snapshot::default() },
            fallback_reason: None,
        };
        match opts.backend {
            Some(Backend::Overlay) => stage.mount_overlay(opts.mount_api)?,
            Some(Backend::Plain) => stage.make_plain()?,
            None => {
                if let Err(e) = stage.mount_overlay(opts.mount_api) {
                    stage.clear_overlay_dirs()?;
                    stage.fallback_reason = Some(e.to_string());
                    stage.make_plain()?;
                }
            }
        }
        Ok(stage)
    }

    /// A stage over the cached layers `diff_ids` (bottom first); each must be in `cache`.
    pub fn from_cache(parent: &Path, cache: &LayerCache, diff_ids: &[Digest], opts: &StageOptions) -> Result<Stage> {
        let lowers = diff_ids
            .iter()
            .map(|d| cache.get(d)?.ok_or_else(|| Error::NotCached(d.to_string())))
            .collect::<Result<Vec<_>>>()?;
        Stage::create(parent, &lowers, opts)
    }

    fn mount_overlay(&mut self, api: MountApi) -> Result<()> {
        let (upper, work, merged) = (self.dir.join("upper"), self.dir.join("work"), self.dir.join("merged"));
        for d in [&upper, &work, &merged] {
            mkdir(d)?;
        }
        // The merged root takes its owner, mode and times from the upper root.
        copy_root_meta(&self.lowers[0], &upper)?;
        mount::mount(&Layout { lowers: &self.lowers, upper: &upper, work: &work, target: &merged }, api)?;
        self.root = merged.clone();
        self.kind = Kind::Overlay { upper, merged, mounted: true };
        Ok(())
    }

    fn clear_overlay_dirs(&self) -> Result<()> {
        for d in ["upper", "work", "merged"] {
            let p = self.dir.join(d);
            if p.exists() {
                fs::remove_dir_all(&p).ctx(|| format!("removing {}", p.display()))?;
            }
        }
        Ok(())
    }

    fn make_plain(&mut self) -> Result<()> {
        let root = self.dir.join("root");
        mkdir(&root)?;
        let mut view = LowerView::new(self.lowers.clone());
        plain::materialise(&mut view, &root)?;
        let snapshot = Snapshot::take(&root)?;
        self.root = root;
        self.kind = Kind::Plain { snapshot };
        Ok(())
    }

    /// The directory the step runs in (the OCI runtime's `root.path`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn backend(&self) -> Backend {
        match self.kind {
            Kind::Overlay { .. } => Backend::Overlay,
            Kind::Plain { .. } => Backend::Plain,
        }
    }

    /// Why the overlay could not be used, when the stage fell back to a plain directory.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// What the step changed, as a layer ready to finish (read from this stage's
    /// directories: finish it before the stage goes). Works mounted or unmounted.
    pub fn diff(&self, opts: &DiffOptions) -> Result<Diff> {
        let mut view = LowerView::new(self.lowers.clone());
        match &self.kind {
            Kind::Overlay { upper, .. } => {
                let ch = diff::upper::collect(upper, &mut view)?;
                diff::build(ch, upper, &mut view, opts)
            }
            Kind::Plain { snapshot } => {
                let ch = diff::walk::collect(&self.root, snapshot, &mut view)?;
                diff::build(ch, &self.root, &mut view, opts)
            }
        }
    }

    /// Unmounts the overlay (nothing to do for a plain stage). The upper directory stays, so
    /// [`Stage::diff`] still works.
    pub fn unmount(&mut self) -> Result<()> {
        if let Kind::Overlay { merged, mounted, .. } = &mut self.kind {
            if *mounted {
                mount::unmount(merged)?;
                *mounted = false;
            }
        }
        Ok(())
    }

    /// Unmounts and deletes the stage, reporting what failed (dropping does the same
    /// silently).
    pub fn remove(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        self.unmount()?;
        if self.dir.as_os_str().is_empty() {
            return Ok(());
        }
        let merged = self.dir.join("merged");
        if merged.exists() && mount::is_mount_point(&merged) {
            return Err(Error::Mount { target: merged, reason: "still mounted; the stage is left in place".into() });
        }
        fs::remove_dir_all(&self.dir).ctx(|| format!("removing {}", self.dir.display()))?;
        self.dir = PathBuf::new();
        Ok(())
    }

    /// Removes the stages under `parent` left by processes that died (their lock is free),
    /// unmounting their overlays first. Returns how many were removed.
    pub fn remove_stale(parent: &Path) -> Result<usize> {
        let entries = match fs::read_dir(parent) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(format!("reading {}", parent.display()), e)),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.ctx(|| format!("reading {}", parent.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if name.starts_with(NEW_PREFIX) {
                // Killed between mkdir and rename: nothing was mounted yet. Spare young ones,
                // which may be a live process between those two calls.
                let old = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
                if old.is_some_and(|age| age.as_secs() > 60) {
                    fs::remove_dir_all(&dir).ctx(|| format!("removing {}", dir.display()))?;
                    removed += 1;
                }
                continue;
            }
            if !name.starts_with(PREFIX) {
                continue;
            }
            let Ok(lock) = File::options().write(true).open(dir.join("lock")) else { continue };
            match rfs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => continue,
                Err(e) => return Err(Error::io(format!("locking {}", dir.display()), e.into())),
            }
            let merged = dir.join("merged");
            if merged.exists() {
                mount::unmount(&merged)?;
                if mount::is_mount_point(&merged) {
                    continue;
                }
            }
            fs::remove_dir_all(&dir).ctx(|| format!("removing {}", dir.display()))?;
            removed += 1;
        }
        Ok(removed)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

fn copy_root_meta(from: &Path, to: &Path) -> Result<()> {
    let md = fs::symlink_metadata(from).ctx(|| format!("reading {}", from.display()))?;
    let fail = |what: &str, e: Errno| Error::io(format!("{what} {}", to.display()), e.into());
    rfs::chown(to, Some(rfs::Uid::from_raw(md.uid())), Some(rfs::Gid::from_raw(md.gid()))).map_err(|e| fail("chown", e))?;
    rfs::chmod(to, rfs::Mode::from_raw_mode(md.mode() & 0o7777)).map_err(|e| fail("chmod", e))?;
    let ts = crate::fsx::timestamps(md.mtime(), md.mtime_nsec());
    rfs::utimensat(rfs::CWD, to, &ts, rfs::AtFlags::empty()).map_err(|e| fail("setting times of", e))
}
