//! Rich (boolean) dependencies as the solver consumes them: strata-rpm's CNF clauses with
//! capabilities in the solver's own form.
//!
//! A clause holds when one positive atom is satisfied by an installed package, or one
//! negative atom is not. Atoms are single-package tests: a capability, `with` (one package
//! satisfies all) or `without` (one package satisfies the first and not the second).

use strata_rpm::RichDep;

use crate::catalog::Cap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Atom {
    Dep(Cap),
    /// Never empty.
    With(Vec<Cap>),
    /// Satisfies the first and none of the others (`(a without (b or c))` occurs in the
    /// corpus).
    Without(Cap, Vec<Cap>),
}

#[derive(Clone, Debug)]
pub(crate) struct CnfClause {
    /// The whole rich expression, to name the clause in explanations.
    pub text: String,
    pub positive: Vec<Atom>,
    pub negative: Vec<Atom>,
    /// The positive atoms are plain `or` alternatives, so their providers compete in the
    /// solver's usual order. False for `if`/`unless` forms, where an atom may be a
    /// condition that must not be installed just to satisfy the clause and the listed
    /// order (then-branch first) is kept.
    pub alternatives_compete: bool,
}

fn atom(a: &strata_rpm::rich::Atom) -> Option<Atom> {
    use strata_rpm::rich::Atom as R;
    Some(match a {
        R::Dep(d) => Atom::Dep(Cap::from_dep(d)),
        R::With(ds) if ds.is_empty() => return None,
        R::With(ds) => Atom::With(ds.iter().map(Cap::from_dep).collect()),
        R::Without(a, bs) => {
            Atom::Without(Cap::from_dep(a), bs.iter().map(Cap::from_dep).collect())
        }
    })
}

/// The CNF of a rich requirement (`Requires`, `Recommends`, `Supplements`, or a conflict's
/// expression before negation).
pub(crate) fn cnf(text: &str, rich: &RichDep) -> Vec<CnfClause> {
    let conditional = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .any(|w| matches!(w, "if" | "unless" | "else"));
    rich.to_cnf_requires()
        .iter()
        .map(|c| CnfClause {
            text: text.to_owned(),
            positive: c.positive.iter().filter_map(atom).collect(),
            negative: c.negative.iter().filter_map(atom).collect(),
            alternatives_compete: !conditional,
        })
        .collect()
}
