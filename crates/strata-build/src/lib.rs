//! `strata-build` builds unmodified Dockerfiles into the image store, without a daemon:
//! stages in dependency order (multi-stage, `--target`), FROM resolved in the store first —
//! composed images by name — then through a registry [`Puller`], every instruction of the
//! language executed as BuildKit does (`strata-dockerfile` says what each means), RUN through
//! `strata-sandbox` (an OCI runtime) in an overlay root assembled by `strata-rootfs`, COPY
//! and ADD written inside that root, each filesystem-changing step committed as one layer
//! (the overlay diff, OCI whiteouts for deletions), metadata-only steps as history.
//!
//! A step cache keyed by the chain of everything before a step (base manifest digest,
//! instructions after expansion, RUN environment, content digests of COPY sources) makes an
//! unchanged rebuild reuse every layer without mounting anything. The image records its base
//! exactly (`org.opencontainers.image.base.name` / `.base.digest`), and a build record with
//! inputs and outputs is kept in the store beside it.
//!
//! It does not parse Dockerfiles (`strata-dockerfile`), run programs (`strata-sandbox`),
//! extract or diff trees (`strata-rootfs`), or talk to registries (the caller's `Puller`).

mod base;
mod context;
mod copy;
mod exec;
mod glob;
mod image;
mod mounts;
mod named;
mod record;
mod stepcache;
mod steps;

pub use base::{names_registry, PullPolicy, Puller};
pub use exec::{build, BuildOptions, Built, Event, StepReport};
pub use image::BaseInfo;
pub use mounts::{parse_secret, parse_size, SecretSource};
pub use named::{parse_build_context, parse_build_contexts, ContextSource};
pub use record::BuildRecord;
pub use stepcache::prune_metadata;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Parse { path: String, source: Box<strata_dockerfile::ParseError> },
    #[error("{0}")]
    Dockerfile(String),
    #[error("build context: {0}")]
    Context(String),
    #[error("COPY failed: {path:?} not found in {tree} ({})", .dir.display())]
    SourceNotFound { path: String, tree: String, dir: PathBuf },
    /// A `--build-context` that cannot be used (the message names the flag).
    #[error("{0}")]
    BuildContext(String),
    #[error("base image {name}: {message}")]
    Base { name: String, message: String },
    #[error("{step}: `{command}` failed ({status})\n{tail}")]
    RunFailed { step: String, command: String, status: String, tail: String },
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Oci(#[from] strata_oci::Error),
    #[error(transparent)]
    Rootfs(#[from] strata_rootfs::Error),
    #[error(transparent)]
    Sandbox(#[from] strata_sandbox::Error),
    /// [`BuildOptions::cancel`] was set: the build stopped before its next step (a running
    /// RUN is killed, `Sandbox(Canceled)`).
    #[error("the build was canceled")]
    Canceled,
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
