//! Rich requirements as clauses (conjunctive normal form), the shape a SAT-style solver
//! takes.
//!
//! Rules, with `¬` pushed inwards so that only atoms are ever negated:
//! `A and B` → clauses(A) ∪ clauses(B); `A or B` → distribute; `A if B` ≡ A ∨ ¬B;
//! `A if B else C` ≡ (A ∨ ¬B) ∧ (C ∨ B); `A unless B` ≡ A ∨ B;
//! `A unless B else C` ≡ (A ∨ B) ∧ (C ∨ ¬B). A clause holding an atom both ways is always
//! true and is dropped; an atom repeated within a clause is kept once.

use super::{Atom, RichDep};
use std::collections::HashSet;

/// A disjunction: satisfied when some `positive` atom is installed, or some `negative`
/// atom is *not* installed. An empty clause can never be satisfied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Clause {
    pub positive: Vec<Atom>,
    pub negative: Vec<Atom>,
}

/// Distributing `or` over `and` can grow exponentially; past a limit the caller gets
/// this instead of an unbounded allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rich dependency expands to more than {limit} clauses")]
pub struct CnfTooLarge {
    pub limit: usize,
}

/// Generous for real metadata (the largest rich requires seen expand to a few clauses)
/// while bounding what hostile metadata can make us allocate.
pub const DEFAULT_CNF_LIMIT: usize = 4096;

impl RichDep {
    /// The expression, read as a requirement, as a conjunction of [`Clause`]s. Positive
    /// atoms keep the order written, so a solver may prefer earlier alternatives.
    ///
    /// An expression whose CNF exceeds [`DEFAULT_CNF_LIMIT`] clauses yields one empty
    /// (unsatisfiable) clause: refusing is safer than installing something unchecked. Use
    /// [`RichDep::try_to_cnf_requires`] to report that case instead.
    pub fn to_cnf_requires(&self) -> Vec<Clause> {
        self.try_to_cnf_requires(DEFAULT_CNF_LIMIT)
            .unwrap_or_else(|_| vec![Clause::default()])
    }

    /// [`RichDep::to_cnf_requires`] with an explicit bound on the number of clauses, kept
    /// at every intermediate step.
    pub fn try_to_cnf_requires(&self, limit: usize) -> Result<Vec<Clause>, CnfTooLarge> {
        cnf(self, false, limit)
    }
}

/// Clauses of `r` (or of `¬r` when `negated`).
fn cnf(r: &RichDep, negated: bool, limit: usize) -> Result<Vec<Clause>, CnfTooLarge> {
    match r {
        RichDep::Atom(a) => Ok(vec![if negated {
            Clause {
                positive: vec![],
                negative: vec![a.clone()],
            }
        } else {
            Clause {
                positive: vec![a.clone()],
                negative: vec![],
            }
        }]),
        // ¬(x ∧ y) = ¬x ∨ ¬y: a disjunction, so distribute.
        RichDep::And(xs) if negated => distribute(parts(xs, true, limit)?, limit),
        RichDep::And(xs) => concat(parts(xs, false, limit)?, limit),
        // ¬(x ∨ y) = ¬x ∧ ¬y.
        RichDep::Or(xs) if negated => concat(parts(xs, true, limit)?, limit),
        RichDep::Or(xs) => distribute(parts(xs, false, limit)?, limit),
        RichDep::If(then, cond, otherwise) => {
            // (then ∨ ¬cond) ∧ (otherwise ∨ cond)
            let mut all = distribute(
                vec![cnf(then, false, limit)?, cnf(cond, true, limit)?],
                limit,
            )?;
            if let Some(o) = otherwise {
                all.extend(distribute(
                    vec![cnf(o, false, limit)?, cnf(cond, false, limit)?],
                    limit,
                )?);
            }
            conjunction(all, negated, limit)
        }
        RichDep::Unless(then, cond, otherwise) => {
            // (then ∨ cond) ∧ (otherwise ∨ ¬cond)
            let mut all = distribute(
                vec![cnf(then, false, limit)?, cnf(cond, false, limit)?],
                limit,
            )?;
            if let Some(o) = otherwise {
                all.extend(distribute(
                    vec![cnf(o, false, limit)?, cnf(cond, true, limit)?],
                    limit,
                )?);
            }
            conjunction(all, negated, limit)
        }
    }
}

fn parts(xs: &[RichDep], negated: bool, limit: usize) -> Result<Vec<Vec<Clause>>, CnfTooLarge> {
    xs.iter().map(|x| cnf(x, negated, limit)).collect()
}

fn concat(parts: Vec<Vec<Clause>>, limit: usize) -> Result<Vec<Clause>, CnfTooLarge> {
    let all: Vec<Clause> = parts.into_iter().flatten().collect();
    if all.len() > limit {
        return Err(CnfTooLarge { limit });
    }
    Ok(all)
}

/// The conjunction of `clauses`, or its negation.
fn conjunction(
    clauses: Vec<Clause>,
    negated: bool,
    limit: usize,
) -> Result<Vec<Clause>, CnfTooLarge> {
    if !negated {
        return concat(vec![clauses], limit);
    }
    // ¬(c1 ∧ c2 ...) = ¬c1 ∨ ¬c2 ...; each ¬ci is a conjunction of single-atom clauses.
    let negated_clauses: Vec<Vec<Clause>> = clauses
        .iter()
        .map(|c| {
            c.positive
                .iter()
                .map(|a| Clause {
                    positive: vec![],
                    negative: vec![a.clone()],
                })
                .chain(c.negative.iter().map(|a| Clause {
                    positive: vec![a.clone()],
                    negative: vec![],
                }))
                .collect()
        })
        .collect();
    distribute(negated_clauses, limit)
}

/// CNF of the disjunction of several CNFs: one clause per choice of a clause from each.
/// A disjunction of nothing is false (one empty clause); any CNF with no clauses is true
/// and makes the whole disjunction true (no clauses).
fn distribute(sets: Vec<Vec<Clause>>, limit: usize) -> Result<Vec<Clause>, CnfTooLarge> {
    let mut acc = vec![Clause::default()];
    for set in sets {
        if acc.len().saturating_mul(set.len()) > limit {
            return Err(CnfTooLarge { limit });
        }
        let mut next = Vec::with_capacity(acc.len() * set.len());
        let mut seen = HashSet::with_capacity(acc.len() * set.len());
        for a in &acc {
            for c in &set {
                if let Some(merged) = merge(a, c) {
                    if seen.insert(merged.clone()) {
                        next.push(merged);
                    }
                }
            }
        }
        acc = next;
    }
    Ok(acc)
}

/// `a ∨ b` as one clause, or `None` when it is always true (an atom both ways).
fn merge(a: &Clause, b: &Clause) -> Option<Clause> {
    let mut out = a.clone();
    for atom in &b.positive {
        if !out.positive.contains(atom) {
            out.positive.push(atom.clone());
        }
    }
    for atom in &b.negative {
        if !out.negative.contains(atom) {
            out.negative.push(atom.clone());
        }
    }
    if out.positive.iter().any(|p| out.negative.contains(p)) {
        return None;
    }
    Some(out)
}
