//! Turning failures into text a user can act on: the unsatisfiable core in plain
//! sentences (with what is available when nothing provides a requirement), and name
//! suggestions for unknown requests.

use petgraph::visit::EdgeRef;
use resolvo::conflict::{Conflict, ConflictCause, ConflictEdge, ConflictNode};
use resolvo::{Interner, Requirement, Solver};

use crate::provider::{Matcher, Provider};

/// The explanation of an unsatisfiable request: one sentence per fact of the conflict
/// (sorted, deduplicated), then resolvo's derivation tree.
pub(crate) fn unsatisfiable(solver: &Solver<Provider<'_, '_>>, conflict: &Conflict) -> String {
    let p = solver.provider();
    let graph = conflict.graph(solver);
    let g = &graph.graph;
    let who = |node: ConflictNode| match node {
        ConflictNode::Solvable(s) => Some(p.cat.display_solvable(s)),
        ConflictNode::Root => Some("the request".to_owned()),
        ConflictNode::UnresolvedDependency | ConflictNode::Excluded(_) => None,
    };
    let mut facts: Vec<String> = Vec::new();
    for edge in g.edge_references() {
        let (src, dst) = (g[edge.source()], g[edge.target()]);
        let Some(src_text) = who(src) else { continue };
        let fact = match *edge.weight() {
            ConflictEdge::Requires(r) if dst == ConflictNode::UnresolvedDependency => {
                let verb = if src == ConflictNode::Root {
                    "needs"
                } else {
                    "requires"
                };
                format!(
                    "{src_text} {verb} {}, but nothing provides it{}",
                    p.describe_requirement(r),
                    available(p, r)
                )
            }
            ConflictEdge::Requires(_) => continue,
            ConflictEdge::Conflict(ConflictCause::Constrains(vs)) => {
                let Some(dst_text) = who(dst) else { continue };
                let set = p.set(vs);
                match set.matcher {
                    Matcher::Obsoleted(_) => format!("{src_text} obsoletes {dst_text}"),
                    Matcher::Provides(c) if set.negate => {
                        format!(
                            "{src_text} conflicts with {} (provided by {dst_text})",
                            p.cap(c)
                        )
                    }
                    _ => {
                        let mut set = set;
                        set.negate = !set.negate;
                        let what = p.describe_set(p.intern_set(set));
                        format!("{src_text} conflicts with {what} (matched by {dst_text})")
                    }
                }
            }
            ConflictEdge::Conflict(ConflictCause::ForbidMultipleInstances) => {
                let Some(dst_text) = who(dst) else { continue };
                let (a, b) = if src_text <= dst_text {
                    (&src_text, &dst_text)
                } else {
                    (&dst_text, &src_text)
                };
                format!("{a} and {b} cannot both be installed (one package per name)")
            }
            ConflictEdge::Conflict(ConflictCause::Excluded) => match dst {
                ConflictNode::Excluded(reason) => {
                    format!(
                        "{src_text} cannot be installed: {}",
                        p.display_string(reason)
                    )
                }
                _ => continue,
            },
            ConflictEdge::Conflict(ConflictCause::Locked(_)) => continue,
        };
        facts.push(fact);
    }
    facts.sort();
    facts.dedup();
    let tree = conflict.display_user_friendly(solver).to_string();
    let mut out = String::from("no set of packages satisfies the request:\n");
    for fact in &facts {
        out.push_str("  - ");
        out.push_str(fact);
        out.push('\n');
    }
    out.push_str("resolver explanation:\n");
    for line in tree.trim_end().lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// ` (available: libnode108-18.20.4-1~deb12u3)` for a capability some package provides
/// at another version; empty when nothing provides the name at all.
fn available(p: &Provider<'_, '_>, r: Requirement) -> String {
    let sets = match r {
        Requirement::Single(vs) => vec![vs],
        Requirement::Union(u) => p.union_sets(u),
    };
    let mut names: Vec<String> = Vec::new();
    for vs in sets {
        let cap_name = match p.set(vs).matcher {
            Matcher::Provides(c) | Matcher::Without(c, _) => p.cap(c).name,
            Matcher::All(cs) => match cs.first() {
                Some(c) => p.cap(*c).name,
                None => continue,
            },
            _ => p.cat.name_text(p.set(vs).name),
        };
        for n in p.cat.available_hint(&cap_name) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    if names.is_empty() {
        String::new()
    } else {
        format!(" (available: {})", names.join(", "))
    }
}

/// Up to three names close to `wanted`: completions of it first, then names containing it,
/// contained in it or similar to it (normalised Damerau-Levenshtein >= 0.6), each group by
/// similarity, ties by name.
pub(crate) fn suggestions(wanted: &str, names: &[&str]) -> Vec<String> {
    let key = wanted.to_ascii_lowercase();
    // The package-name part of `name-1.2-3`, `name.arch` or `name >= 1` forms.
    let stem = key
        .split([' ', '<', '>', '='])
        .next()
        .unwrap_or(&key)
        .to_owned();
    let mut scored: Vec<(u8, f64, &str)> = names
        .iter()
        .filter_map(|&n| {
            let lower = n.to_ascii_lowercase();
            let completes = lower.starts_with(&stem);
            let related = lower.contains(&stem) || (lower.len() >= 3 && stem.contains(&lower));
            let sim = strsim::normalized_damerau_levenshtein(&stem, &lower);
            (completes || related || sim >= 0.6).then_some((u8::from(!completes), sim, n))
        })
        .collect();
    scored.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.2.cmp(b.2))
    });
    scored
        .into_iter()
        .take(3)
        .map(|(_, _, n)| n.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::suggestions;

    #[test]
    fn suggestions_prefer_prefix_then_similarity() {
        let names = [
            "bash",
            "bash-completion",
            "dash",
            "nginx",
            "nginx-light",
            "python3",
            "zsh",
        ];
        assert_eq!(suggestions("bsh", &names), vec!["bash", "zsh"]);
        assert_eq!(suggestions("ngin", &names), vec!["nginx", "nginx-light"]);
        assert_eq!(suggestions("python", &names), vec!["python3"]);
        assert!(suggestions("qqqqqqqq", &names).is_empty());
        assert_eq!(
            suggestions("nginx-lite", &names),
            vec!["nginx-light", "nginx"]
        );
    }
}
