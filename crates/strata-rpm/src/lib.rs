//! RPM vocabulary shared by every other strata crate.
//!
//! This crate owns the *meaning* of RPM versions and dependencies, independent of where
//! they were read from: EVR parsing and ordering exactly as rpm's `rpmvercmp`, rpm's
//! range-overlap rule used to match a requirement against a provide (`rpmdsCompare`),
//! dependency expressions including rich (boolean) dependencies and their CNF, package
//! requests by NEVRA as dnf reads them, and the arch policy. It does no I/O.
//!
//! The hot paths ([`rpmvercmp`], [`range_overlap`], [`DepRef::matches_provide`]) borrow
//! and never allocate: a resolve over a 63k-package repository calls them millions of
//! times.

pub mod arch;
pub mod dep;
pub mod evr;
pub mod nevra;
pub mod rich;

pub use dep::{range_overlap, Dep, DepParseError, DepRef, Op};
pub use evr::{rpmvercmp, Evr, EvrRef};
pub use nevra::{nevra_forms, NevraForm, NevraSplit};
pub use rich::{is_rich, parse_rich, Atom, Clause, CnfTooLarge, RichDep, RichParseError};
