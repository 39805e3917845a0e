//! Classic triggers (`%triggerprein`, `%triggerin`): which scripts fire around one package's
//! installation, in which order and with which arguments, as rpm 4.18's `lib/psm.c` decides
//! (`runTriggers`, then `runImmedTriggers`, each through `handleOneTrigger`).
//!
//! The rpmdb rpm consults is, here, the packages installed so far in install order: strata
//! builds images from nothing, so there is nothing else in it. For `%triggerprein` the
//! package is not in it yet; for `%triggerin` it is (rpm adds it before `%post`).
//! `%triggerun`/`%triggerpostun` are read with the rest but never fire: nothing is erased.

use strata_package::{ClassicKind, ClassicTrigger, Package};
use strata_rpm::{range_overlap, EvrRef, Op};

/// rpm's `RPMSENSE_LESS`, `GREATER`, `EQUAL`.
const LESS: u32 = 2;
const GREATER: u32 = 4;
const EQUAL: u32 = 8;

/// One script to run: trigger script `index` of package `owner`, with `$1 $2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub owner: usize,
    pub index: usize,
    /// `$1`: instances of the owner installed; `$2`: instances of the package that set
    /// it off (rpm's arguments, counted after this point of the operation).
    pub args: [usize; 2],
}

/// The transaction's packages as triggers see them: names, triggers, provides.
pub struct Classic {
    names: Vec<String>,
    triggers: Vec<Vec<ClassicTrigger>>,
    /// (name, sense bits, version) of each package's provides.
    provides: Vec<Vec<(String, u32, String)>>,
}

fn op(sense: u32) -> Option<Op> {
    Some(match sense & (LESS | GREATER | EQUAL) {
        x if x == LESS => Op::Lt,
        x if x == LESS | EQUAL => Op::Le,
        x if x == EQUAL => Op::Eq,
        x if x == GREATER | EQUAL => Op::Ge,
        x if x == GREATER => Op::Gt,
        _ => return None,
    })
}

impl Classic {
    pub fn new(packages: &[Package]) -> Classic {
        let triggers: Vec<Vec<ClassicTrigger>> = packages.iter().map(Package::classic_triggers).collect();
        // Provides are only ever compared for packages some trigger names.
        let named: std::collections::HashSet<&str> = triggers.iter().flatten().map(|t| t.name.as_str()).collect();
        let names: Vec<String> = packages.iter().map(Package::name).collect();
        let provides = packages
            .iter()
            .zip(&names)
            .map(|(p, n)| if named.contains(n.as_str()) { p.provides().into_iter().map(|d| (d.name, d.flags, d.version)).collect() } else { Vec::new() })
            .collect();
        Classic { names, triggers, provides }
    }

    /// Nothing to do for any package (the usual case: few packages have classic triggers).
    pub fn is_empty(&self) -> bool {
        self.triggers.iter().all(Vec::is_empty)
    }

    /// The scripts `kind` fires around installing package `pkg`, in rpm's order; `db` is
    /// the rpmdb at that point (installed packages, install order).
    pub fn runs(&self, pkg: usize, kind: ClassicKind, db: &[usize]) -> Vec<Run> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        let count = |name: &str| db.iter().filter(|&&q| self.names[q] == name).count();
        // runTriggers: installed packages with a trigger on this one's name, rpmdb order.
        let mine = count(&self.names[pkg]);
        for &q in db.iter().filter(|&&q| self.triggers[q].iter().any(|t| t.name == self.names[pkg])) {
            self.one(kind, pkg, q, mine, None, &count, &mut out);
        }
        // runImmedTriggers: this package's triggers, each script at most once, on the
        // installed packages of each name it triggers on.
        let scripts = self.triggers[pkg].iter().map(|t| t.index + 1).max().unwrap_or(0);
        let mut done = vec![false; scripts];
        for t in &self.triggers[pkg] {
            if done[t.index] {
                continue;
            }
            let sources: Vec<usize> = db.iter().copied().filter(|&s| self.names[s] == t.name).collect();
            for &s in &sources {
                self.one(kind, s, pkg, sources.len(), Some(&mut done), &count, &mut out);
            }
        }
        out
    }

    /// handleOneTrigger: the first of `owner`'s `kind` triggers that `source` satisfies
    /// runs (unless already run), and no other: one script per source/owner pair.
    #[allow(clippy::too_many_arguments)]
    fn one(&self, kind: ClassicKind, source: usize, owner: usize, arg2: usize, done: Option<&mut Vec<bool>>, count: &dyn Fn(&str) -> usize, out: &mut Vec<Run>) {
        let Some(t) = self.triggers[owner].iter().find(|t| t.kind == kind && t.name == self.names[source] && self.satisfies(source, t)) else { return };
        match done {
            Some(d) if d[t.index] => {}
            Some(d) => {
                d[t.index] = true;
                out.push(Run { owner, index: t.index, args: [count(&self.names[owner]), arg2] });
            }
            None => out.push(Run { owner, index: t.index, args: [count(&self.names[owner]), arg2] }),
        }
    }

    /// rpmdsAnyMatchesDep: some provide of `source` with the trigger's name overlaps its
    /// range (an unversioned trigger matches any).
    fn satisfies(&self, source: usize, t: &ClassicTrigger) -> bool {
        let Some(want) = op(t.sense) else { return true };
        self.provides[source].iter().filter(|(n, _, _)| *n == t.name).any(|(_, fl, v)| range_overlap(op(*fl), EvrRef::parse(v), Some(want), EvrRef::parse(&t.version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(kind: ClassicKind, name: &str, sense: u32, version: &str, index: usize) -> ClassicTrigger {
        ClassicTrigger { kind, name: name.into(), sense, version: version.into(), index }
    }

    /// a triggers on b (prein and in, one script each), b has none; c = "b" of another version.
    fn set() -> Classic {
        Classic {
            names: vec!["a".into(), "b".into(), "c".into()],
            triggers: vec![vec![trig(ClassicKind::PreIn, "b", 0, "", 0), trig(ClassicKind::In, "b", GREATER | EQUAL, "2", 1)], vec![], vec![]],
            provides: vec![vec![], vec![("b".into(), EQUAL, "2-1".into())], vec![]],
        }
    }

    #[test]
    fn an_installed_owner_fires_on_the_new_package() {
        let c = set();
        // a installed, b arriving: prein before b is in the db ($2 = 0), in after (1).
        assert_eq!(c.runs(1, ClassicKind::PreIn, &[0]), [Run { owner: 0, index: 0, args: [1, 0] }]);
        assert_eq!(c.runs(1, ClassicKind::In, &[0, 1]), [Run { owner: 0, index: 1, args: [1, 1] }]);
    }

    #[test]
    fn a_new_owner_fires_on_installed_packages() {
        let c = set();
        // b installed, a arriving: a's own triggers; $1 counts a (0 before, 1 after).
        assert_eq!(c.runs(0, ClassicKind::PreIn, &[1]), [Run { owner: 0, index: 0, args: [0, 1] }]);
        assert_eq!(c.runs(0, ClassicKind::In, &[1, 0]), [Run { owner: 0, index: 1, args: [1, 1] }]);
        assert!(c.runs(0, ClassicKind::In, &[0]).is_empty(), "nothing named b installed");
    }

    #[test]
    fn versions_must_match() {
        let mut c = set();
        c.provides[1] = vec![("b".into(), EQUAL, "1.5-1".into())];
        assert!(c.runs(1, ClassicKind::In, &[0, 1]).is_empty(), "b 1.5 is not >= 2");
        assert_eq!(c.runs(1, ClassicKind::PreIn, &[0]).len(), 1, "the unversioned prein still fires");
    }
}
