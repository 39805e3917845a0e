//! The wire types of automatic rebuilds: the plan (what a repository change makes the
//! service rebuild, in what order and why), the rebuild events that executed plans, the
//! repositories the service watches, and promotion of a rebuilt image's tag.

use serde::{Deserialize, Serialize};

use crate::Source;

/// What would be rebuilt now, parents before children. `strata rebuild-plan` shows it
/// without building; a refresh executes this same object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebuildPlan {
    /// Watched repositories whose repomd.xml differs from the one last acted on.
    pub repos: Vec<RepoChange>,
    /// The rebuilds in the order they run: by depth (compose images 0, an image built
    /// FROM a depth-N rebuild N+1), then by name.
    pub rebuilds: Vec<PlannedRebuild>,
    /// Registered images the changed repositories feed whose content does not change.
    pub unchanged: Vec<String>,
    /// Rebuilds the policy in force refuses (checked with the rights of the image's
    /// submitter), and the rebuilds that would have followed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedRebuild>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusedRebuild {
    pub image: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoChange {
    /// The repository's base URL.
    pub url: String,
    /// `sha256:` of the repomd.xml last acted on (none: never seen).
    pub old: Option<String>,
    /// `sha256:` of the repomd.xml now.
    pub new: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedRebuild {
    pub image: String,
    /// `spec` (composed) or `dockerfile`.
    pub kind: String,
    pub depth: u32,
    /// The registered image this one is built FROM, rebuilt earlier in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Why, in words ("3 packages change in base", "its base web is rebuilt").
    pub reason: String,
    /// Packages whose version changes (for an image built FROM a rebuilt one: its base's).
    pub changes: Vec<PackageChange>,
    /// The repositories the new packages come from (spec images).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<String>,
    /// The source to build: the commit of the image's last build, or the ref's new commit
    /// when it moved since.
    pub source: Source,
    /// The commit moved since the last build (the old commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// Digest of what the build is made of: a rebuild with the same input is never done
    /// twice.
    pub input_hash: String,
}

/// One package's version change: `old` absent when it is new to the image, `new` absent
/// when it leaves it. Versions are `[EPOCH:]VERSION-RELEASE.ARCH`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageChange {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

/// What a rebuild build carries besides its source: filled by the server when it plans,
/// read by the worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebuildOrder {
    /// The rebuild event this build belongs to.
    pub event: i64,
    /// The build of the parent image this one waits for (and is built on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_build: Option<i64>,
    pub changes: Vec<PackageChange>,
    /// The floating tag the result is pushed to (instead of `latest`).
    pub push_tag: String,
    /// Spec images: the complete lock the plan resolved (strata.lock JSON); the worker
    /// composes exactly it (`--locked`) and checks the image's rpmdb against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// Dockerfile images: the FROM reference (as the Dockerfile writes it) that names the
    /// parent, and — filled when the build is leased — the parent's rebuilt image by
    /// digest, which the build uses instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_override: Option<String>,
    pub input_hash: String,
}

/// A repository change acted on: the plan executed, and how long it took from noticing
/// the change to the last affected image pushed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebuildEvent {
    pub id: i64,
    /// `interval`, `refresh` (strata repos refresh) or `webhook`.
    pub trigger: String,
    pub actor: String,
    pub noticed: String,
    /// When the last of its builds ended.
    pub finished: Option<String>,
    /// Noticed → last build ended, in seconds.
    pub latency_seconds: Option<f64>,
    /// `running`, `done` (every rebuild built), `failed` (some did not).
    pub state: String,
    pub plan: RebuildPlan,
    /// The build of each planned rebuild, in plan order.
    pub builds: Vec<i64>,
}

/// What `POST /api/repos/refresh` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refreshed {
    /// Repositories checked.
    pub checked: usize,
    /// The event that executes the plan; none when nothing is to be rebuilt.
    pub event: Option<RebuildEvent>,
    /// The plan (empty when nothing changed).
    pub plan: RebuildPlan,
}

/// A repository the service watches for changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchedRepo {
    pub url: String,
    /// `sha256:` of the repomd.xml last acted on.
    pub repomd: Option<String>,
    pub checked: Option<String>,
    pub changed: Option<String>,
    /// Checked at least this often (the repo's metadata_expire, capped by the server's
    /// interval).
    pub interval_seconds: i64,
    /// Registered images composed from it.
    pub images: Vec<String>,
}

/// An image the service rebuilds when its content changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackedImage {
    pub name: String,
    pub kind: String,
    pub source: Source,
    /// The build whose content is the image's current one.
    pub build_id: i64,
    /// Dockerfile images: the registered image they are built FROM.
    pub parent: Option<String>,
    /// Floating tags and the build each points at.
    pub tags: Vec<TagPointer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TagPointer {
    pub tag: String,
    pub build_id: i64,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromoteRequest {
    /// The tag to take the image from (default `testing`).
    #[serde(default = "testing")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(?!build-|scratch-)[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"))]
    pub from: String,
    /// The tag to move (default `latest`).
    #[serde(default = "latest")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(?!build-|scratch-)[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"))]
    pub to: String,
}

fn testing() -> String {
    "testing".into()
}

fn latest() -> String {
    "latest".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Promoted {
    pub image: String,
    pub from: String,
    pub to: String,
    pub build_id: i64,
    /// `REGISTRY/NAME:TO@DIGEST`, read back from the registry.
    pub reference: String,
}
