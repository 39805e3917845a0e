//! `strata-pipeline` holds the end-to-end operations that front ends call — resolve →
//! fetch → compose → report, and the garbage collection of a store and its caches
//! ([`gc`]) — so that the `strata` command line and the build service's worker run the
//! very same code. A front end supplies a request, a [`Progress`] that
//! shows (or records, or ignores) what happens, and a [`Cancel`] it may trip from another
//! thread; it gets back typed, serde-serializable results or a typed [`Error`] whose text
//! is what `strata` prints.
//!
//! What stays with a front end: argument parsing, printing, progress bars, exit codes.
//!
//! ```no_run
//! use strata_pipeline::{compose, Cancel, ComposeRequest, NoProgress};
//! let req = ComposeRequest::new("spec.json", "/var/lib/strata/store");
//! let report = compose(&req, &NoProgress, &Cancel::new())?;
//! for image in &report.images {
//!     println!("{} {}", image.reference, image.manifest_digest);
//! }
//! # Ok::<(), strata_pipeline::Error>(())
//! ```

mod cancel;
mod compose;
mod error;
mod fetch;
mod gc;
mod lua;
mod progress;
mod report;
mod resolve;
pub mod sandbox;
mod settings;

pub use cancel::Cancel;
pub use compose::{check, compose, ComposeReport, ComposeRequest, ImageFailure, ImageResult, LayerResult};
pub use error::{chain_text, Error, Result};
pub use fetch::{fetch, rpm_cache_dir, FetchedRpms};
pub use gc::{gc, gc_with, Gate, GcOptions, GcReport, Held, DEFAULT_RPM_MAX_AGE};
pub use lua::{helper_main as lua_helper_main, HELPER_SUBCOMMAND as LUA_HELPER_SUBCOMMAND};
pub use progress::{Event, NoProgress, Progress};
pub use report::{CheckReport, ImageBytes, ImageCheck, PullModel, Report};
pub use resolve::{resolve, ResolveRequest, Resolved};
pub use settings::{checked_lock_path, default_store, lock_path, source_date_epoch_from_env, RepoSettings};
