//! Automatic rebuilds: deciding which registered images a repository change affects.
//!
//! The build service registers every image it builds (its source, its last content, the
//! repositories it is composed from, the registered image it is built FROM). When a
//! watched repository's repomd.xml changes, each composed image fed by it is resolved
//! again with its recorded spec ([`resolve`]); an image whose content digest is unchanged
//! is not rebuilt, one whose lock changed is, and every Dockerfile image built FROM a
//! rebuilt image follows it, one depth later ([`plan`]). The result is one
//! [`strata_client::RebuildPlan`] object: `strata rebuild-plan` prints it, a refresh
//! executes it, so a dry run and a real run never disagree.
//!
//! Nothing here touches the database, git or HTTP serving: the service gathers the
//! inputs, this crate computes, and the planning rules are unit-tested on their own.

mod plan;
mod repomd;
mod resolve;

pub use plan::{input_hash_of_spec, nevra_parts, plan, Fresh, Kind, Registered};
pub use repomd::repomd_digest;
pub use resolve::{fresh_images, resolve_spec_dir};
