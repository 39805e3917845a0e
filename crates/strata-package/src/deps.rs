//! Requires and provides, for ordering a transaction.

use crate::{tags, Package};
use strata_rpmdb::header::tag;

/// One dependency: name (or rich expression), flags (`rpmsenseFlags`), version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    pub flags: u32,
    pub version: String,
}

/// `Requires(pre)`, `(post)`, `(interp)`, `(pretrans)`, `(posttrans)`: needed while
/// scriptlets run, so they weigh more when ordering.
pub const SENSE_SCRIPT_PREREQ: u32 = (1 << 6) | (1 << 8) | (1 << 9) | (1 << 7) | (1 << 5);

impl Dep {
    pub fn is_prereq(&self) -> bool {
        self.flags & SENSE_SCRIPT_PREREQ != 0
    }
}

impl Package {
    pub fn requires(&self) -> Vec<Dep> {
        self.deps(tag::REQUIRENAME, tag::REQUIREFLAGS, tags::REQUIREVERSION)
    }

    pub fn provides(&self) -> Vec<Dep> {
        self.deps(tag::PROVIDENAME, tags::PROVIDEFLAGS, tags::PROVIDEVERSION)
    }

    fn deps(&self, names: u32, flags: u32, versions: u32) -> Vec<Dep> {
        let h = self.header();
        let flags = h.u32s(flags);
        let versions = h.strings(versions);
        h.strings(names)
            .into_iter()
            .enumerate()
            .map(|(i, name)| Dep {
                name,
                flags: flags.get(i).copied().unwrap_or(0),
                version: versions.get(i).cloned().unwrap_or_default(),
            })
            .collect()
    }
}
