//! Weak dependencies: Recommends of selected packages and Supplements of available ones,
//! added best effort on top of a solution.
//!
//! resolvo's soft requirements are single solvables tried after the hard problem, each
//! skipped when it cannot be installed. So each round solves, collects the weak
//! candidates the new selection calls for, and solves again with them appended, until a
//! round adds nothing. A weak dependency can never make the solve fail.

use std::collections::HashSet;

use resolvo::{ConditionalRequirement, Problem, SolvableId, Solver, UnsolvableOrCancelled};

use crate::catalog::Cap;
use crate::provider::Provider;
use crate::rich::{Atom, CnfClause};

/// Rounds are cheap (the solver cache survives), but a weak-dependency chain that keeps
/// finding new packages must still end.
const MAX_ROUNDS: usize = 16;

pub(crate) fn solve(
    solver: &mut Solver<Provider<'_, '_>>,
    requirements: Vec<ConditionalRequirement>,
    weak: bool,
) -> Result<Vec<SolvableId>, UnsolvableOrCancelled> {
    let mut soft: Vec<SolvableId> = Vec::new();
    let mut tried: HashSet<SolvableId> = HashSet::new();
    let mut rounds = 0;
    loop {
        let problem = Problem::new()
            .requirements(requirements.clone())
            .soft_requirements(soft.clone());
        let selection = solver.solve(problem)?;
        rounds += 1;
        if !weak || rounds >= MAX_ROUNDS {
            return Ok(selection);
        }
        let more: Vec<SolvableId> = wanted(solver.provider(), &selection)
            .into_iter()
            .filter(|s| tried.insert(*s))
            .collect();
        if more.is_empty() {
            return Ok(selection);
        }
        soft.extend(more);
    }
}

/// Packages the selection's weak dependencies ask for that it does not have yet: the best
/// provider of each unmet Recommends, and each available package whose Supplements the
/// selection satisfies. In selection order, then pool order: deterministic.
fn wanted(p: &Provider<'_, '_>, selection: &[SolvableId]) -> Vec<SolvableId> {
    let selected: HashSet<SolvableId> = selection.iter().copied().collect();
    let names: HashSet<_> = selection.iter().map(|&s| p.cat.solvable(s).name).collect();
    let mut out: Vec<SolvableId> = Vec::new();
    let push = |s: SolvableId, out: &mut Vec<SolvableId>| {
        if !names.contains(&p.cat.solvable(s).name) && !out.contains(&s) {
            out.push(s);
        }
    };
    for &s in selection {
        for dep in p.cat.package(s).recommends() {
            for clause in clauses_of(dep.name, Cap::from_ref(&dep)) {
                if clause_holds(p, &clause, &selected) {
                    continue;
                }
                if let Some(best) = best_for(p, &clause) {
                    push(best, &mut out);
                }
            }
        }
    }
    for s in p.cat.supplementers() {
        if names.contains(&p.cat.solvable(s).name) {
            continue;
        }
        let hit = p.cat.package(s).supplements().any(|dep| {
            let clauses = clauses_of(dep.name, Cap::from_ref(&dep));
            !clauses.is_empty() && clauses.iter().all(|c| clause_holds(p, c, &selected))
        });
        if hit {
            push(s, &mut out);
        }
    }
    out
}

/// A weak dependency as CNF clauses; a rich one that does not parse is ignored (weak deps
/// never fail a solve).
fn clauses_of(text: &str, cap: Cap) -> Vec<CnfClause> {
    if text.starts_with('(') {
        match strata_rpm::parse_rich(text) {
            Ok(rich) => crate::rich::cnf(text, &rich),
            Err(_) => Vec::new(),
        }
    } else {
        vec![CnfClause {
            text: text.to_owned(),
            positive: vec![Atom::Dep(cap)],
            negative: Vec::new(),
            alternatives_compete: true,
        }]
    }
}

fn clause_holds(p: &Provider<'_, '_>, clause: &CnfClause, selected: &HashSet<SolvableId>) -> bool {
    clause.positive.iter().any(|a| atom_holds(p, a, selected))
        || clause.negative.iter().any(|a| !atom_holds(p, a, selected))
}

fn atom_holds(p: &Provider<'_, '_>, atom: &Atom, selected: &HashSet<SolvableId>) -> bool {
    p.atom_sets(atom).into_iter().any(|vs| {
        p.cat
            .candidates(p.set(vs).name)
            .iter()
            .any(|s| selected.contains(s) && p.keeps(vs, *s))
    })
}

/// The solvable the solver would try first for a clause: the best candidate of the first
/// provider name, in the order hard requirements use.
fn best_for(p: &Provider<'_, '_>, clause: &CnfClause) -> Option<SolvableId> {
    let req = p.clause_requirement(&CnfClause {
        negative: Vec::new(),
        ..clause.clone()
    })?;
    let sets = match req.requirement {
        resolvo::Requirement::Single(vs) => vec![vs],
        resolvo::Requirement::Union(u) => p.union_sets(u),
    };
    sets.into_iter().find_map(|vs| {
        p.cat
            .candidates(p.set(vs).name)
            .iter()
            .copied()
            .find(|&s| p.keeps(vs, s))
    })
}
