//! Repository metadata for strata: everything between a repo's URL and a queryable index.
//!
//! This crate owns repomd.xml, primary and filelists (gz, xz, zst or bz2), fetching them
//! (file, http(s), mirrorlist, metalink) with every checksum verified, the metadata cache
//! (keyed by repo and repomd checksum, written atomically) and the compact on-disk index
//! that a warm run maps instead of parsing XML. Filelists are loaded only when a file
//! dependency is not answered by primary's file subset.

mod blob;
mod cache;
mod cold;
mod decompress;
mod error;
mod fetch;
mod filelists;
mod index;
mod limits;
mod mirrors;
mod primary;
mod repomd;
mod strings;
mod xml;

pub use cache::{LoadOptions, LoadedRepo, MetadataCache, RepoSource};
pub use error::RepoError;
pub use fetch::{join_url, Fetcher};
pub use index::{Package, PkgId, RepoIndex};
