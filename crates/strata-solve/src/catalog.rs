//! The resolver's view of the pool: which packages are visible, which of them are the
//! candidates for a name, who provides a capability. Everything is computed on first use,
//! so a solve only touches the names it reaches, whatever the size of the repositories.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use resolvo::{NameId, SolvableId};
use strata_repo::{LoadedRepo, Package, PkgId, RepoError};
use strata_rpm::{rpmvercmp, DepRef, Evr, EvrRef, Op};

use crate::glob::Glob;
use crate::PoolRepo;

/// One package the solver may pick: a (repository, package) pair that passed the arch,
/// exclude and priority filters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SolvableRec {
    pub repo: usize,
    pub id: PkgId,
    pub name: NameId,
    /// Position in the target's arch preference list (0 = best).
    pub arch_rank: usize,
}

/// A capability as required, conflicted or obsoleted: `name [op evr]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Cap {
    pub name: String,
    pub op: Option<Op>,
    pub evr: Evr,
}

impl Cap {
    pub(crate) fn from_ref(dep: &DepRef<'_>) -> Cap {
        Cap {
            name: dep.name.to_owned(),
            op: dep.op,
            evr: if dep.op.is_some() {
                to_owned_evr(dep.evr)
            } else {
                Evr::default()
            },
        }
    }

    pub(crate) fn from_dep(dep: &strata_rpm::Dep) -> Cap {
        Cap {
            name: dep.name.clone(),
            op: dep.op,
            evr: match (&dep.op, &dep.evr) {
                (Some(_), Some(evr)) => evr.clone(),
                _ => Evr::default(),
            },
        }
    }

    pub(crate) fn evr_ref(&self) -> EvrRef<'_> {
        evr_ref(&self.evr)
    }

    /// Whether a package of this EVR, seen as the implicit `NAME = EVR` provide, is in range.
    pub(crate) fn admits(&self, evr: EvrRef<'_>) -> bool {
        overlap(Some(Op::Eq), evr, self.op, self.evr_ref())
    }
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(op) = self.op {
            write!(f, " {} {}", op_str(op), evr_string(self.evr_ref()))?;
        }
        Ok(())
    }
}

pub(crate) fn op_str(op: Op) -> &'static str {
    match op {
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Eq => "=",
        Op::Ge => ">=",
        Op::Gt => ">",
    }
}

pub(crate) fn evr_ref(evr: &Evr) -> EvrRef<'_> {
    EvrRef {
        epoch: evr.epoch,
        version: &evr.version,
        release: evr.release.as_deref(),
    }
}

pub(crate) fn to_owned_evr(evr: EvrRef<'_>) -> Evr {
    Evr {
        epoch: evr.epoch,
        version: evr.version.to_owned(),
        release: evr.release.map(str::to_owned),
    }
}

/// `[E:]V[-R]`, the way dnf prints an EVR (epoch only when not zero).
pub(crate) fn evr_string(evr: EvrRef<'_>) -> String {
    let mut s = String::new();
    if let Some(e) = evr.epoch.filter(|&e| e != 0) {
        s.push_str(&format!("{e}:"));
    }
    s.push_str(evr.version);
    if let Some(r) = evr.release {
        s.push('-');
        s.push_str(r);
    }
    s
}

/// rpm's range overlap (rpmdsCompare); the single place the solver asks it.
pub(crate) fn overlap(a_op: Option<Op>, a: EvrRef<'_>, b_op: Option<Op>, b: EvrRef<'_>) -> bool {
    strata_rpm::range_overlap(a_op, a, b_op, b)
}

/// Package EVR ordering: epoch (missing = 0), then version, then release, by rpmvercmp.
pub(crate) fn evr_cmp(a: EvrRef<'_>, b: EvrRef<'_>) -> Ordering {
    a.epoch
        .unwrap_or(0)
        .cmp(&b.epoch.unwrap_or(0))
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(x), Some(y)) => rpmvercmp(x, y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
}

struct NameRec {
    text: String,
    /// Sorted best-first once computed (see `Catalog::prefer`).
    candidates: Option<Rc<[SolvableId]>>,
}

#[derive(Default)]
struct State {
    names: Vec<NameRec>,
    name_ids: HashMap<String, NameId>,
    solvables: Vec<SolvableRec>,
    by_pkg: HashMap<(usize, PkgId), SolvableId>,
    /// Capability name → every visible (solvable, provide) pair, before range checks.
    providers: HashMap<String, Rc<[(SolvableId, ProvideRange)]>>,
    /// Obsoleted name → packages obsoleting it; built on first use by a full scan.
    /// Packages with any Supplements; built on first use by a full scan.
    supplementers: Option<Rc<[(usize, PkgId)]>>,
    /// The first repository error met while loading file lists; the solve is cancelled
    /// and reports it.
    error: Option<RepoError>,
}

/// How a solvable provides a capability name: its implicit `NAME = EVR`, an explicit
/// provide (maybe unversioned), or a file path it owns.
#[derive(Clone, Debug)]
pub(crate) enum ProvideRange {
    Versioned(Op, Evr),
    Any,
}

pub(crate) struct Catalog<'p, 'r> {
    pool: &'p [PoolRepo<'r>],
    arch: String,
    /// Per repository: the request's exclude globs plus the repository's own.
    excludes: Vec<Vec<Glob>>,
    state: RefCell<State>,
}

impl<'p, 'r> Catalog<'p, 'r> {
    pub(crate) fn new(pool: &'p [PoolRepo<'r>], arch: &str, exclude: &[String]) -> Self {
        let excludes = pool
            .iter()
            .map(|p| {
                exclude
                    .iter()
                    .chain(p.excludes.iter())
                    .map(|g| Glob::new(g))
                    .collect()
            })
            .collect();
        Catalog {
            pool,
            arch: arch.to_owned(),
            excludes,
            state: RefCell::new(State::default()),
        }
    }

    pub(crate) fn take_error(&self) -> Option<RepoError> {
        self.state.borrow_mut().error.take()
    }

    pub(crate) fn has_error(&self) -> bool {
        self.state.borrow().error.is_some()
    }

    pub(crate) fn intern_name(&self, text: &str) -> NameId {
        let mut st = self.state.borrow_mut();
        if let Some(&id) = st.name_ids.get(text) {
            return id;
        }
        let id = NameId::from_raw(st.names.len() as u32);
        st.names.push(NameRec {
            text: text.to_owned(),
            candidates: None,
        });
        st.name_ids.insert(text.to_owned(), id);
        id
    }

    pub(crate) fn name_text(&self, name: NameId) -> String {
        self.state.borrow().names[name.into_raw() as usize]
            .text
            .clone()
    }

    pub(crate) fn solvable(&self, s: SolvableId) -> SolvableRec {
        self.state.borrow().solvables[s.into_raw() as usize]
    }

    pub(crate) fn package(&self, s: SolvableId) -> Package<'r> {
        let rec = self.solvable(s);
        self.pool[rec.repo].repo.index.package(rec.id)
    }

    /// `name-[e:]v-r`, how explanations name a package.
    pub(crate) fn display_solvable(&self, s: SolvableId) -> String {
        let p = self.package(s);
        format!("{}-{}", p.name(), evr_string(p.evr()))
    }

    fn excluded(&self, repo: usize, name: &str) -> bool {
        self.excludes[repo].iter().any(|g| g.matches(name))
    }

    /// The arch rank of a package the target may install, `None` when it is invisible.
    fn visible(&self, repo: usize, pkg: &Package<'_>) -> Option<usize> {
        let arch = pkg.arch();
        if arch == "src" || arch == "nosrc" || self.excluded(repo, pkg.name()) {
            return None;
        }
        strata_rpm::arch::arch_rank(&self.arch, arch)
    }

    /// The candidates of a package name, best first: visible packages of that name from
    /// the best-priority repositories that have any (libsolv/dnf priority semantics).
    pub(crate) fn candidates(&self, name: NameId) -> Rc<[SolvableId]> {
        let text = {
            let st = self.state.borrow();
            let rec = &st.names[name.into_raw() as usize];
            if let Some(c) = &rec.candidates {
                return c.clone();
            }
            rec.text.clone()
        };
        let mut found: Vec<(usize, PkgId, usize)> = Vec::new();
        for (ri, pr) in self.pool.iter().enumerate() {
            for id in pr.repo.index.ids_by_name(&text) {
                let pkg = pr.repo.index.package(id);
                if let Some(rank) = self.visible(ri, &pkg) {
                    found.push((ri, id, rank));
                }
            }
        }
        if let Some(best) = found.iter().map(|f| self.pool[f.0].priority).min() {
            found.retain(|f| self.pool[f.0].priority == best);
        }
        let mut ids: Vec<SolvableId> = {
            let mut st = self.state.borrow_mut();
            found
                .into_iter()
                .map(|(repo, id, arch_rank)| {
                    let s = SolvableId::from_raw(st.solvables.len() as u32);
                    st.solvables.push(SolvableRec {
                        repo,
                        id,
                        name,
                        arch_rank,
                    });
                    st.by_pkg.insert((repo, id), s);
                    s
                })
                .collect()
        };
        ids.sort_by(|&a, &b| self.prefer(a, b));
        let ids: Rc<[SolvableId]> = ids.into();
        self.state.borrow_mut().names[name.into_raw() as usize].candidates = Some(ids.clone());
        ids
    }

    /// Candidate order: newest EVR, then better arch, then cheaper repository, then pool
    /// order. Priority never appears here: it already decided which repositories count.
    pub(crate) fn prefer(&self, a: SolvableId, b: SolvableId) -> Ordering {
        let (ra, rb) = (self.solvable(a), self.solvable(b));
        let (pa, pb) = (self.package(a), self.package(b));
        evr_cmp(pb.evr(), pa.evr())
            .then(ra.arch_rank.cmp(&rb.arch_rank))
            .then(self.pool[ra.repo].cost.cmp(&self.pool[rb.repo].cost))
            .then(ra.repo.cmp(&rb.repo))
            .then(ra.id.cmp(&rb.id))
    }

    /// The solvable for a repository package, if it is a candidate of its name.
    pub(crate) fn solvable_of(&self, repo: usize, id: PkgId) -> Option<SolvableId> {
        if let Some(&s) = self.state.borrow().by_pkg.get(&(repo, id)) {
            return Some(s);
        }
        let name = self.intern_name(self.pool[repo].repo.index.package(id).name());
        self.candidates(name);
        self.state.borrow().by_pkg.get(&(repo, id)).copied()
    }

    /// Every visible solvable that provides something named `cap` (a file path, a package
    /// name, or an explicit provide), with the range it provides.
    pub(crate) fn providers(&self, cap: &str) -> Rc<[(SolvableId, ProvideRange)]> {
        if let Some(p) = self.state.borrow().providers.get(cap) {
            return p.clone();
        }
        let mut out: Vec<(SolvableId, ProvideRange)> = Vec::new();
        for (ri, pr) in self.pool.iter().enumerate() {
            let index = &pr.repo.index;
            for (id, dep) in index.whatprovides(cap) {
                if let Some(s) = self.solvable_of(ri, id) {
                    let range = match dep.op {
                        Some(op) => ProvideRange::Versioned(op, to_owned_evr(dep.evr)),
                        None => ProvideRange::Any,
                    };
                    out.push((s, range));
                }
            }
            if cap.starts_with('/') {
                for id in self.file_owners(ri, cap) {
                    if let Some(s) = self.solvable_of(ri, id) {
                        out.push((s, ProvideRange::Any));
                    }
                }
            } else {
                for id in index.ids_by_name(cap) {
                    if let Some(s) = self.solvable_of(ri, id) {
                        let evr = to_owned_evr(index.package(id).evr());
                        out.push((s, ProvideRange::Versioned(Op::Eq, evr)));
                    }
                }
            }
        }
        let out: Rc<[(SolvableId, ProvideRange)]> = out.into();
        self.state
            .borrow_mut()
            .providers
            .insert(cap.to_owned(), out.clone());
        out
    }

    /// Packages of one repository owning `path`: primary's file subset, and the full file
    /// lists only for paths primary does not cover (they are loaded lazily, once).
    fn file_owners(&self, repo: usize, path: &str) -> Vec<PkgId> {
        let loaded = self.pool[repo].repo;
        let mut ids: Vec<PkgId> = loaded.index.file_owners(path).collect();
        if !LoadedRepo::primary_covers(path) {
            match loaded.file_owners_full(path) {
                Ok(more) => ids.extend(more),
                Err(e) => {
                    let mut st = self.state.borrow_mut();
                    if st.error.is_none() {
                        st.error = Some(e);
                    }
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The visible solvables providing `cap` in range, sorted by id and deduplicated.
    pub(crate) fn matching(&self, cap: &Cap) -> Vec<SolvableId> {
        let mut out: Vec<SolvableId> = self
            .providers(&cap.name)
            .iter()
            .filter(|(_, range)| match range {
                ProvideRange::Any => true,
                ProvideRange::Versioned(op, evr) => {
                    overlap(Some(*op), evr_ref(evr), cap.op, cap.evr_ref())
                }
            })
            .map(|(s, _)| *s)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether a solvable is obsoleted by `cap`: obsoletes match package names only.
    pub(crate) fn obsoleted_by(&self, s: SolvableId, cap: &Cap) -> bool {
        let p = self.package(s);
        p.name() == cap.name && cap.admits(p.evr())
    }

    /// Newest visible NEVRs of packages providing `name` at all, for "available: ..." hints.
    pub(crate) fn available_hint(&self, name: &str) -> Vec<String> {
        let mut best: Vec<SolvableId> = Vec::new();
        for (s, _) in self.providers(name).iter() {
            let n = self.solvable(*s).name;
            if let Some(&first) = self.candidates(n).first() {
                if !best.contains(&first) {
                    best.push(first);
                }
            }
        }
        let mut names: Vec<String> = best.into_iter().map(|s| self.display_solvable(s)).collect();
        names.sort();
        names.truncate(3);
        names
    }

    /// Every package name of every repository, deduplicated and sorted (for suggestions).
    pub(crate) fn all_names(&self) -> Vec<&'r str> {
        let mut names: Vec<&'r str> = self
            .pool
            .iter()
            .flat_map(|p| p.repo.index.names())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Visible packages with an `Obsoletes` on `name`, from the index's reverse map (so a
    /// solve never reads every package's obsoletes).
    pub(crate) fn obsoleters(&self, name: &str) -> Vec<SolvableId> {
        let mut out: Vec<SolvableId> = Vec::new();
        for (ri, pr) in self.pool.iter().enumerate() {
            for (id, _) in pr.repo.index.whatobsoletes(name) {
                if let Some(s) = self.solvable_of(ri, id) {
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    /// Visible packages that have Supplements (for weak dependencies), in pool order.
    pub(crate) fn supplementers(&self) -> Vec<SolvableId> {
        let known = self.state.borrow().supplementers.clone();
        let all = match known {
            Some(all) => all,
            None => {
                let mut found: Vec<(usize, PkgId)> = Vec::new();
                for (ri, pr) in self.pool.iter().enumerate() {
                    let index = &pr.repo.index;
                    for id in 0..index.len() as PkgId {
                        if index.package(id).supplements().next().is_some() {
                            found.push((ri, id));
                        }
                    }
                }
                let found: Rc<[(usize, PkgId)]> = found.into();
                self.state.borrow_mut().supplementers = Some(found.clone());
                found
            }
        };
        all.iter()
            .filter_map(|&(r, id)| self.solvable_of(r, id))
            .collect()
    }
}
