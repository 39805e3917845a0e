//! RPM vocabulary shared by every other strata crate.
//!
//! This crate owns the *meaning* of RPM versions and dependencies, independent of where
//! they were read from: EVR parsing and ordering exactly as rpm's `rpmvercmp`, rpm's
//! range-overlap rule used to match a requirement against a provide (`rpmdsCompare`),
//! dependency expressions including rich (boolean) dependencies and their CNF, and the
//! arch policy. It does no I/O.

pub mod arch;
pub mod dep;
pub mod evr;
pub mod rich;

pub use dep::{range_overlap, Dep, DepParseError, DepRef, Op};
pub use evr::{rpmvercmp, Evr, EvrRef};
pub use rich::{is_rich, parse_rich, Atom, Clause, RichDep, RichParseError};
