//! Registry authentication: credentials (caller-given or from auth files), the
//! `WWW-Authenticate` challenges registries answer with, and bearer tokens.

pub mod challenge;
mod credentials;
pub(crate) mod token;

pub use challenge::Challenge;
pub use credentials::{Credential, Credentials};
pub mod login;
