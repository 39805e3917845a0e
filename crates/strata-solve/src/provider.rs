//! The resolvo glue: version sets, unions and conditions over the catalog, and the
//! translation of a package's requires, conflicts and obsoletes into resolvo terms.
//!
//! Model: one solvable per candidate package, under the resolvo name = its package name
//! (so at most one package per name is installed, as rpm without multilib). A requirement
//! on a capability becomes a union of version sets, one per package name that has a
//! candidate providing it in range; each version set keeps exactly those candidates.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::rc::Rc;

use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, LogicalOperator, NameId, Requirement, SolvableId, SolverCache,
    StringId, VersionSetId, VersionSetUnionId,
};
use strata_rpm::{parse_rich, DepRef, Evr};

use crate::catalog::{evr_ref, evr_string, Cap, Catalog};
use crate::rich::{Atom, CnfClause};

pub(crate) type CapId = u32;

/// Which candidates of one name a version set keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Matcher {
    /// Provides the capability in range (implicit `NAME = EVR`, explicit provides, files).
    Provides(CapId),
    /// A rich `with`: provides every one of the capabilities.
    All(Vec<CapId>),
    /// A rich `without`: provides the first capability and none of the others.
    Without(CapId, Vec<CapId>),
    /// Named like the capability and in its range: what an `Obsoletes` hits.
    Obsoleted(CapId),
    /// A dnf NEVRA-form request: version (and release, when given) and maybe arch.
    Nevra { evr: Evr, arch: Option<String> },
    /// Every candidate (a plain request for a name).
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct VersionSet {
    pub name: NameId,
    pub matcher: Matcher,
    /// Keep the candidates that do NOT match: a constrains from Conflicts or Obsoletes
    /// names the allowed side, so resolvo forbids the matching ones.
    pub negate: bool,
}

#[derive(Default)]
struct Tables {
    caps: Vec<Cap>,
    cap_ids: HashMap<Cap, CapId>,
    sets: Vec<VersionSet>,
    set_ids: HashMap<VersionSet, VersionSetId>,
    unions: Vec<Vec<VersionSetId>>,
    conditions: Vec<Condition>,
    strings: Vec<String>,
    /// Capability → its requirement, so a capability many packages need is looked up once.
    cap_requirements: HashMap<CapId, Requirement>,
    /// Per capability, the candidates providing it in range, sorted by id.
    cap_matched: HashMap<CapId, Rc<[SolvableId]>>,
}

pub(crate) struct Provider<'p, 'r> {
    pub(crate) cat: Catalog<'p, 'r>,
    tables: RefCell<Tables>,
    /// Whether packages' Requires are followed (off for `solve_without_requires`).
    pub(crate) requires: bool,
}

impl<'p, 'r> Provider<'p, 'r> {
    pub(crate) fn new(cat: Catalog<'p, 'r>) -> Self {
        Provider {
            cat,
            tables: RefCell::new(Tables::default()),
            requires: true,
        }
    }

    pub(crate) fn intern_cap(&self, cap: Cap) -> CapId {
        let mut t = self.tables.borrow_mut();
        if let Some(&id) = t.cap_ids.get(&cap) {
            return id;
        }
        let id = t.caps.len() as CapId;
        t.caps.push(cap.clone());
        t.cap_ids.insert(cap, id);
        id
    }

    pub(crate) fn cap(&self, id: CapId) -> Cap {
        self.tables.borrow().caps[id as usize].clone()
    }

    pub(crate) fn intern_set(&self, set: VersionSet) -> VersionSetId {
        let mut t = self.tables.borrow_mut();
        if let Some(&id) = t.set_ids.get(&set) {
            return id;
        }
        let id = VersionSetId(t.sets.len() as u32);
        t.sets.push(set.clone());
        t.set_ids.insert(set, id);
        id
    }

    pub(crate) fn set(&self, id: VersionSetId) -> VersionSet {
        self.tables.borrow().sets[id.0 as usize].clone()
    }

    pub(crate) fn union_of(&self, sets: Vec<VersionSetId>) -> Requirement {
        if sets.len() == 1 {
            return Requirement::Single(sets[0]);
        }
        let mut t = self.tables.borrow_mut();
        let id = VersionSetUnionId(t.unions.len() as u32);
        t.unions.push(sets);
        Requirement::Union(id)
    }

    pub(crate) fn union_sets(&self, id: VersionSetUnionId) -> Vec<VersionSetId> {
        self.tables.borrow().unions[id.0 as usize].clone()
    }

    fn intern_condition(&self, c: Condition) -> ConditionId {
        let mut t = self.tables.borrow_mut();
        t.conditions.push(c);
        ConditionId::new((t.conditions.len() - 1) as u32)
    }

    fn intern_string(&self, s: String) -> StringId {
        let mut t = self.tables.borrow_mut();
        t.strings.push(s);
        StringId((t.strings.len() - 1) as u32)
    }

    /// Does the solvable match the matcher (ignoring `negate`)?
    fn matches(&self, s: SolvableId, matcher: &Matcher) -> bool {
        match matcher {
            Matcher::Any => true,
            Matcher::Provides(c) => self.provides(s, *c),
            Matcher::All(cs) => cs.iter().all(|c| self.provides(s, *c)),
            Matcher::Without(a, bs) => {
                self.provides(s, *a) && !bs.iter().any(|b| self.provides(s, *b))
            }
            Matcher::Obsoleted(c) => self.cat.obsoleted_by(s, &self.cap(*c)),
            Matcher::Nevra { evr, arch } => {
                let p = self.cat.package(s);
                let version_ok = if evr.version.is_empty() {
                    true
                } else {
                    let wanted = evr_ref(evr);
                    // A missing epoch in the request matches any epoch, as dnf's NEVRA forms do.
                    let have = p.evr();
                    let wanted = strata_rpm::EvrRef {
                        epoch: wanted.epoch.or(have.epoch),
                        ..wanted
                    };
                    crate::catalog::overlap(
                        Some(strata_rpm::Op::Eq),
                        have,
                        Some(strata_rpm::Op::Eq),
                        wanted,
                    )
                };
                version_ok && arch.as_deref().is_none_or(|a| a == p.arch())
            }
        }
    }

    /// Whether a version set keeps the solvable (what `filter_candidates` keeps).
    pub(crate) fn keeps(&self, vs: VersionSetId, s: SolvableId) -> bool {
        let set = self.set(vs);
        self.matches(s, &set.matcher) != set.negate
    }

    pub(crate) fn provides(&self, s: SolvableId, cap: CapId) -> bool {
        let matched = self.cap_matching(cap);
        matched.binary_search(&s).is_ok()
    }

    /// The candidates providing a capability in range, cached per capability.
    pub(crate) fn cap_matching(&self, cap: CapId) -> Rc<[SolvableId]> {
        if let Some(m) = self.tables.borrow().cap_matched.get(&cap) {
            return m.clone();
        }
        let m: Rc<[SolvableId]> = self.cat.matching(&self.cap(cap)).into();
        self.tables.borrow_mut().cap_matched.insert(cap, m.clone());
        m
    }

    /// The requirement "some package provides `cap` in range": one version set per
    /// provider name, in `order_key` order. With
    /// no provider it is a single version set under the capability's own name, which has
    /// no matching candidate, so resolvo reports it as missing.
    pub(crate) fn cap_requirement(&self, cap: Cap) -> Requirement {
        let id = self.intern_cap(cap);
        if let Some(&r) = self.tables.borrow().cap_requirements.get(&id) {
            return r;
        }
        let sets = self.sets_for(Matcher::Provides(id), id);
        let r = self.union_of(sets);
        self.tables.borrow_mut().cap_requirements.insert(id, r);
        r
    }

    /// Version sets, one per name with a candidate providing `base` and matching `matcher`.
    pub(crate) fn sets_for(&self, matcher: Matcher, base: CapId) -> Vec<VersionSetId> {
        let mut names: Vec<(String, NameId)> = Vec::new();
        for s in self.cap_matching(base).iter() {
            if !self.matches(*s, &matcher) {
                continue;
            }
            let n = self.cat.solvable(*s).name;
            if !names.iter().any(|(_, id)| *id == n) {
                names.push((self.cat.name_text(n), n));
            }
        }
        let base_name = self.cap(base).name;
        names.sort_by(|a, b| (a.0 != base_name, &a.0).cmp(&(b.0 != base_name, &b.0)));
        if names.is_empty() {
            let name = self.cat.intern_name(&self.cap(base).name);
            return vec![self.intern_set(VersionSet {
                name,
                matcher,
                negate: false,
            })];
        }
        names
            .into_iter()
            .map(|(_, name)| {
                self.intern_set(VersionSet {
                    name,
                    matcher: matcher.clone(),
                    negate: false,
                })
            })
            .collect()
    }

    /// Version sets for one rich-dependency atom.
    pub(crate) fn atom_sets(&self, atom: &Atom) -> Vec<VersionSetId> {
        match atom {
            Atom::Dep(c) => {
                let id = self.intern_cap(c.clone());
                self.sets_for(Matcher::Provides(id), id)
            }
            Atom::With(caps) => {
                let ids: Vec<CapId> = caps.iter().map(|c| self.intern_cap(c.clone())).collect();
                self.sets_for(Matcher::All(ids.clone()), ids[0])
            }
            Atom::Without(a, bs) => {
                let a = self.intern_cap(a.clone());
                let bs = bs.iter().map(|b| self.intern_cap(b.clone())).collect();
                self.sets_for(Matcher::Without(a, bs), a)
            }
        }
    }

    /// Order of competing provider names: a package named like the capability first
    /// (a requirement on `libsystemd0` means the package libsystemd0, not libelogind0
    /// which also provides it; dnf agrees), then byte order of names (libsolv's).
    fn order_key(&self, vs: VersionSetId) -> (bool, String) {
        let set = self.set(vs);
        let name = self.cat.name_text(set.name);
        let base = match &set.matcher {
            Matcher::Provides(c) | Matcher::Without(c, _) => Some(*c),
            Matcher::All(cs) => cs.first().copied(),
            _ => None,
        };
        let exact = base.is_some_and(|c| self.cap(c).name == name);
        (!exact, name)
    }

    /// Does any of the version sets keep at least one candidate?
    fn any_candidate(&self, sets: &[VersionSetId]) -> bool {
        sets.iter().any(|&vs| {
            let set = self.set(vs);
            self.cat
                .candidates(set.name)
                .iter()
                .any(|&s| self.matches(s, &set.matcher))
        })
    }

    /// A CNF clause of a rich requirement: the positive atoms form the union; each negative
    /// atom becomes "if a package satisfying it is installed", AND-ed together. `None` when
    /// the clause can never bind (a negative atom nothing satisfies).
    pub(crate) fn clause_requirement(&self, clause: &CnfClause) -> Option<ConditionalRequirement> {
        let mut condition: Option<ConditionId> = None;
        for atom in &clause.negative {
            let sets = self.atom_sets(atom);
            if !self.any_candidate(&sets) {
                return None;
            }
            let mut atom_cond: Option<ConditionId> = None;
            for vs in sets {
                let c = self.intern_condition(Condition::Requirement(vs));
                atom_cond = Some(match atom_cond {
                    None => c,
                    Some(prev) => {
                        self.intern_condition(Condition::Binary(LogicalOperator::Or, prev, c))
                    }
                });
            }
            let atom_cond = atom_cond?;
            condition = Some(match condition {
                None => atom_cond,
                Some(prev) => {
                    self.intern_condition(Condition::Binary(LogicalOperator::And, prev, atom_cond))
                }
            });
        }
        // libsolv does not keep the order of `or` alternatives: all providers compete, in
        // the same order as for a plain capability (dnf picks usr-is-merged for
        // `(usrmerge or usr-is-merged)`). Conditional forms keep the listed order.
        let mut keyed: Vec<((usize, bool, String), VersionSetId)> = Vec::new();
        for (i, atom) in clause.positive.iter().enumerate() {
            let rank = if clause.alternatives_compete { 0 } else { i };
            for vs in self.atom_sets(atom) {
                if !keyed.iter().any(|(_, v)| *v == vs) {
                    let (not_exact, name) = self.order_key(vs);
                    keyed.push(((rank, not_exact, name), vs));
                }
            }
        }
        keyed.sort();
        let mut sets: Vec<VersionSetId> = keyed.into_iter().map(|(_, vs)| vs).collect();
        if sets.is_empty() {
            // Only negative atoms: "these may not all be installed". A set nothing matches
            // expresses it.
            let name = self.cat.intern_name(&clause.text);
            sets.push(self.intern_set(VersionSet {
                name,
                matcher: Matcher::Any,
                negate: true,
            }));
        }
        let requirement = self.union_of(sets);
        Some(ConditionalRequirement {
            condition,
            requirement,
        })
    }

    /// Constrains forbidding every OTHER package that matches `matcher`: the set keeps the
    /// non-matching candidates of each provider name. The package's own name is skipped:
    /// a package never conflicts with itself, and its name is exclusive anyway.
    fn constrain(&self, matcher: Matcher, base: CapId, own: NameId, out: &mut Vec<VersionSetId>) {
        for vs in self.sets_for(matcher, base) {
            let mut set = self.set(vs);
            if set.name == own || !self.any_candidate(&[vs]) {
                continue;
            }
            set.negate = true;
            let id = self.intern_set(set);
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }

    fn rich_clauses(&self, text: &str) -> Result<Vec<CnfClause>, String> {
        let rich = parse_rich(text).map_err(|e| format!("cannot parse {text}: {e}"))?;
        Ok(crate::rich::cnf(text, &rich))
    }

    fn dependencies_of(&self, s: SolvableId) -> Result<KnownDependencies, String> {
        let pkg = self.cat.package(s);
        let own = self.cat.solvable(s).name;
        let mut deps = KnownDependencies::default();
        for dep in pkg.requires().filter(|_| self.requires) {
            // rpmlib() capabilities are features of rpm itself, never packages.
            if dep.name.starts_with("rpmlib(") {
                continue;
            }
            if dep.name.starts_with('(') {
                for clause in self.rich_clauses(dep.name)? {
                    if let Some(req) = self.clause_requirement(&clause) {
                        push_unique(&mut deps.requirements, req);
                    }
                }
            } else {
                let req = self.cap_requirement(Cap::from_ref(&dep)).into();
                push_unique(&mut deps.requirements, req);
            }
        }
        for dep in pkg.conflicts() {
            self.add_conflict(&dep, own, &mut deps.constrains)?;
        }
        for dep in pkg.obsoletes() {
            let cap = Cap::from_ref(&dep);
            if dep.name.starts_with('(') || cap.name == self.cat.name_text(own) {
                continue;
            }
            let id = self.intern_cap(cap.clone());
            let name = self.cat.intern_name(&cap.name);
            let hit = self
                .cat
                .candidates(name)
                .iter()
                .any(|&c| self.cat.obsoleted_by(c, &cap));
            if hit {
                let vs = self.intern_set(VersionSet {
                    name,
                    matcher: Matcher::Obsoleted(id),
                    negate: true,
                });
                if !deps.constrains.contains(&vs) {
                    deps.constrains.push(vs);
                }
            }
        }
        Ok(deps)
    }

    /// A conflict forbids the packages that satisfy it. Rich conflicts are supported when
    /// their CNF is a single all-positive clause (an `or` of atoms, `with`, `without`):
    /// each atom is then forbidden on its own. Other shapes (`and`, `if`) would need
    /// conditional constrains, which resolvo lacks; they are logged and ignored.
    fn add_conflict(
        &self,
        dep: &DepRef<'_>,
        own: NameId,
        out: &mut Vec<VersionSetId>,
    ) -> Result<(), String> {
        if !dep.name.starts_with('(') {
            let id = self.intern_cap(Cap::from_ref(dep));
            self.constrain(Matcher::Provides(id), id, own, out);
            return Ok(());
        }
        // A conflict only removes options, so one that does not parse is dropped rather
        // than making the package uninstallable.
        let clauses = match self.rich_clauses(dep.name) {
            Ok(c) => c,
            Err(reason) => {
                tracing::warn!(%reason, "unparseable rich conflict ignored");
                return Ok(());
            }
        };
        match clauses.as_slice() {
            [clause] if clause.negative.is_empty() => {
                for atom in &clause.positive {
                    match atom {
                        Atom::Dep(c) => {
                            let id = self.intern_cap(c.clone());
                            self.constrain(Matcher::Provides(id), id, own, out);
                        }
                        Atom::With(caps) => {
                            let ids: Vec<CapId> =
                                caps.iter().map(|c| self.intern_cap(c.clone())).collect();
                            self.constrain(Matcher::All(ids.clone()), ids[0], own, out);
                        }
                        Atom::Without(a, bs) => {
                            let a = self.intern_cap(a.clone());
                            let bs = bs.iter().map(|b| self.intern_cap(b.clone())).collect();
                            self.constrain(Matcher::Without(a, bs), a, own, out);
                        }
                    }
                }
            }
            _ => tracing::warn!(
                conflict = dep.name,
                "rich conflict shape not supported; ignored"
            ),
        }
        Ok(())
    }

    /// Human form of a version set, with its name: `libnode108 = 18.19.0-1`,
    /// `libssl3 (provides libssl.so.3()(64bit))`, `not perl-modules < 5.36`.
    pub(crate) fn describe_set(&self, vs: VersionSetId) -> String {
        let set = self.set(vs);
        let name = self.cat.name_text(set.name);
        let body = match &set.matcher {
            Matcher::Any => name.clone(),
            Matcher::Provides(c) => self.describe_cap_on(&name, *c),
            Matcher::All(cs) => {
                let parts: Vec<String> = cs.iter().map(|c| self.cap(*c).to_string()).collect();
                format!("{name} (with {})", parts.join(", "))
            }
            Matcher::Without(a, bs) => {
                let parts: Vec<String> = bs.iter().map(|b| self.cap(*b).to_string()).collect();
                format!("{name} ({} without {})", self.cap(*a), parts.join(" or "))
            }
            Matcher::Obsoleted(c) => self.cap(*c).to_string(),
            Matcher::Nevra { evr, arch } => {
                let mut s = name.clone();
                if !evr.version.is_empty() {
                    s = format!("{s}-{}", evr_string(evr_ref(evr)));
                }
                if let Some(a) = arch {
                    s = format!("{s}.{a}");
                }
                s
            }
        };
        if set.negate {
            format!("anything but {body}")
        } else {
            body
        }
    }

    fn describe_cap_on(&self, name: &str, c: CapId) -> String {
        let cap = self.cap(c);
        if cap.name == name {
            cap.to_string()
        } else {
            format!("{name} (provides {cap})")
        }
    }

    /// The requirement in words: `libnode108 = 18.19.0-1` or `(a or b)` style lists.
    pub(crate) fn describe_requirement(&self, r: Requirement) -> String {
        match r {
            Requirement::Single(vs) => self.describe_requirement_set(vs),
            Requirement::Union(u) => {
                let parts: Vec<String> = self
                    .union_sets(u)
                    .into_iter()
                    .map(|vs| self.describe_requirement_set(vs))
                    .collect();
                parts.join(" or ")
            }
        }
    }

    /// For requirements, the capability is what the user recognises, not the provider.
    fn describe_requirement_set(&self, vs: VersionSetId) -> String {
        let set = self.set(vs);
        match set.matcher {
            Matcher::Provides(c) if !set.negate => self.cap(c).to_string(),
            _ => self.describe_set(vs),
        }
    }
}

fn push_unique(reqs: &mut Vec<ConditionalRequirement>, req: ConditionalRequirement) {
    if !reqs.contains(&req) {
        reqs.push(req);
    }
}

impl Interner for Provider<'_, '_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl Display + '_ {
        self.cat.display_solvable(solvable)
    }

    fn display_merged_solvables(&self, solvables: &[SolvableId]) -> impl Display + '_ {
        let mut all: Vec<String> = solvables
            .iter()
            .map(|&s| self.cat.display_solvable(s))
            .collect();
        all.sort();
        all.dedup();
        all.join(" | ")
    }

    fn display_name(&self, name: NameId) -> impl Display + '_ {
        self.cat.name_text(name)
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl Display + '_ {
        // resolvo prints "<name> <version set>"; the name is already in `describe_set`
        // only for provides of another name, so print just the qualifier here.
        let set = self.set(version_set);
        let name = self.cat.name_text(set.name);
        let full = self.describe_set(version_set);
        full.strip_prefix(&name)
            .map(|s| s.trim_start().to_owned())
            .unwrap_or(full)
    }

    fn display_string(&self, string_id: StringId) -> impl Display + '_ {
        self.tables.borrow().strings[string_id.0 as usize].clone()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.set(version_set).name
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.cat.solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.union_sets(version_set_union).into_iter()
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.tables.borrow().conditions[condition.as_u32() as usize].clone()
    }
}

impl DependencyProvider for Provider<'_, '_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|&s| (self.matches(s, &set.matcher) != set.negate) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let candidates = self.cat.candidates(name).to_vec();
        Some(Candidates {
            candidates,
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|&a, &b| self.cat.prefer(a, b));
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        match self.dependencies_of(solvable) {
            Ok(deps) => Dependencies::Known(deps),
            Err(reason) => Dependencies::Unknown(self.intern_string(reason)),
        }
    }

    fn should_cancel_with_value(&self) -> Option<Box<dyn Any>> {
        // A repository error (file lists unreadable) aborts the solve; the caller takes the
        // error out of the catalog.
        if self.cat.has_error() {
            Some(Box::new(()))
        } else {
            None
        }
    }
}
