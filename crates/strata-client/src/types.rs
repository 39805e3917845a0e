//! The API's request and response bodies.

use serde::{Deserialize, Serialize};

/// Where a build's source is: a git repository, a ref and a folder inside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    /// Anything `git clone` accepts: file://, https://, ssh://.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048, pattern = "^(?!-|ext::|fd::)[^\\x00-\\x20\\x7f-\\x9f]*$"))]
    pub url: String,
    /// Branch, tag or commit as submitted; the remote HEAD when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(?!-)(?!.*\\.\\.)[A-Za-z0-9/._+-]{1,255}$"))]
    pub r#ref: Option<String>,
    /// The commit the ref named at submit time: what is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Folder inside the repository holding strata.json or a Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024, pattern = "^(?!\\.\\.?(/|$))[^/\\x00-\\x1f\\x7f-\\x9f]+(/(?!\\.\\.?(/|$))[^/\\x00-\\x1f\\x7f-\\x9f]+)*$"))]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmitRequest {
    pub source: Source,
    /// Images to build: spec images to pick, or the name of a Dockerfile's image.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<ImageName>, max_items = 64))]
    pub images: Vec<String>,
    /// Push only a unique scratch tag; never move `latest`.
    #[serde(default)]
    pub scratch: bool,
    /// Run-time limit in seconds (queue time does not count); capped by the server.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::int::opt_i64")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub timeout_seconds: Option<i64>,
    /// Do not register the built images for automatic rebuilds.
    #[serde(default)]
    pub no_track: bool,
    /// What a Dockerfile's RUN may reach: `none` (default) or `host` (if the policy allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(none|host)$"))]
    pub network: Option<String>,
}

/// One build: the queue entry and, once it ran, its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Build {
    pub id: i64,
    /// The images' names, comma-separated (empty for a spec build that picks none yet).
    pub image: String,
    pub images: Vec<String>,
    /// queued, running, built, failed or canceled.
    pub state: String,
    /// `manual` for submissions.
    pub trigger: String,
    pub submitter: String,
    pub source: Source,
    pub scratch: bool,
    /// The worker of the current or last attempt.
    pub worker: Option<String>,
    /// Times in RFC 3339 (UTC).
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Time spent waiting in the queue, over all attempts.
    pub queued_seconds: f64,
    /// Run time of the last attempt (so far, while running).
    pub run_seconds: f64,
    pub timeout_seconds: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub cancel_requested: bool,
    /// Why it failed or was canceled.
    pub reason: Option<String>,
    /// What the worker produced (present once built).
    pub result: Option<BuildResult>,
    /// Present on `GET /api/builds/{id}` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_log: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The last lines of the log, for a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// Whether the built images are registered for automatic rebuilds.
    #[serde(default = "yes")]
    pub track: bool,
    /// For a rebuild (trigger `rebuild`): its event, parent, package changes and push tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<crate::RebuildOrder>,
    /// What RUN may reach (`host`; none when absent), as the policy granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `ADD <url>` allowed, as the policy granted.
    #[serde(default = "yes")]
    pub remote_content: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub number: i64,
    pub worker: String,
    pub started: String,
    pub ended: Option<String>,
    /// built, failed, canceled, expired (lease lost), or running.
    pub outcome: String,
    pub reason: Option<String>,
}

/// A state change of a build, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub detail: Option<String>,
}

/// What a build produced, as the worker reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildResult {
    /// `spec` or `dockerfile`.
    pub kind: String,
    /// sha256 of strata.json or of the Dockerfile.
    pub input_digest: String,
    /// sha256 of strata.lock after the compose (spec builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_digest: Option<String>,
    pub strata_version: String,
    pub images: Vec<ImageOutput>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageOutput {
    #[cfg_attr(feature = "openapi", schema(value_type = ImageName))]
    pub name: String,
    /// The unique pushed reference, `REGISTRY/NAME:TAG@DIGEST`.
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub tags: Vec<String>,
    /// The base image of a Dockerfile build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseImage>,
    /// Packages read from the image's own rpmdb (NEVRA).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Composed images: digest of the image's lock entry (its inputs and every package's
    /// checksum) — equal digests, equal content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Composed images: the repositories its packages come from, as resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<ImageRepo>,
}

/// A repository a composed image was resolved from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageRepo {
    /// The base URL used.
    pub url: String,
    /// `sha256:` of its repomd.xml when resolved.
    pub repomd: String,
    /// The spec's metadata_expire for it, in seconds (none: the default).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::int::opt_i64")]
    pub metadata_expire_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaseImage {
    pub name: String,
    pub digest: String,
}

#[derive(Debug, Clone, Default)]
pub struct BuildFilter {
    pub image: Option<String>,
    pub state: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogChunk {
    /// Where `data` starts in the log (bytes).
    pub offset: u64,
    pub data: String,
    /// Where the next read starts.
    pub next: u64,
    /// The build has ended and this read reached the end of its log: nothing more will
    /// come.
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// admin, submitter, worker or reader.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(admin|submitter|worker|reader)$"))]
    pub role: String,
    /// A note saying who or what holds it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"))]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenCreated {
    pub id: i64,
    pub role: String,
    pub name: String,
    /// The secret; shown once, stored only as a hash.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseRequest {
    /// The worker's name, recorded with each attempt.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"))]
    pub worker: String,
    /// When nothing is queued, wait up to this long (at most 30 s) for a build before
    /// answering 204: a worker learns of a submission at once instead of at its next poll.
    #[serde(default, deserialize_with = "crate::int::u64")]
    #[cfg_attr(feature = "openapi", schema(maximum = 30))]
    pub wait_seconds: u64,
}

/// A build handed to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lease {
    pub build: Build,
    /// Proves the worker holds the build; every later call for it names this.
    pub lease: String,
    /// Heartbeat at least this often (the lease lasts three times as long).
    pub heartbeat_seconds: i64,
    /// Where to push: `HOST[:PORT][/PREFIX]`.
    pub registry: Option<String>,
    /// The registry is reached over plain HTTP or unverified TLS.
    pub insecure_registry: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseRef {
    pub lease: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    /// Stop the build: it was canceled or ran past its timeout.
    pub stop: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogAppend {
    pub lease: String,
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogAppended {
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Complete {
    pub lease: String,
    pub result: BuildResult,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fail {
    pub lease: String,
    pub reason: String,
    /// The worker stopped the build because it was asked to (cancel).
    #[serde(default)]
    pub canceled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
}

/// An image build that holds packages a query asked about.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryHit {
    pub image: String,
    pub build_id: i64,
    pub reference: String,
    pub created: String,
    pub scratch: bool,
    /// The floating tags (`latest`, `testing`) that point at this build.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The matching packages (NEVRA).
    pub packages: Vec<String>,
}

/// An image name: registry repository path components (lowercase letters, digits, `._-`,
/// each starting with a letter or digit), `/`-separated, at most 128 characters.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = "^(?=.{1,128}$)[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")]
pub struct ImageName(pub String);
