//! Install order: what a package needs is installed before it, as rpm orders a transaction.
//!
//! Edges come from Requires resolved against the Provides and file paths of the packages in
//! the set (rich dependencies contribute every package name or capability they mention).
//! Cycles are broken as rpm breaks them: strongly connected components are ordered as
//! units, and inside a component scriptlet prerequisites (`Requires(pre)`, `(post)`,
//! `(interp)`) are honoured first. Ties are broken by name, so the order is deterministic.

use std::collections::{BTreeSet, HashMap};
use strata_package::Package;

/// Indices of `packages` in install order.
pub fn install_order(packages: &[Package]) -> Vec<usize> {
    let n = packages.len();
    let names: Vec<String> = packages.iter().map(|p| p.name()).collect();
    let mut providers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in packages.iter().enumerate() {
        providers.entry(names[i].clone()).or_default().push(i);
        for d in p.provides() {
            providers.entry(d.name).or_default().push(i);
        }
        if let Ok(files) = p.files() {
            for f in files {
                providers.entry(f.path).or_default().push(i);
            }
        }
    }
    // needs[i] = (j, prereq): i requires something j provides.
    let mut needs: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    for (i, p) in packages.iter().enumerate() {
        for d in p.requires() {
            if d.name.starts_with("rpmlib(") {
                continue;
            }
            let mut targets: Vec<&str> = vec![];
            if d.name.starts_with('(') {
                targets.extend(
                    d.name
                        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                        .filter(|w| !w.is_empty() && !matches!(*w, "and" | "or" | "if" | "else" | "with" | "without" | "unless" | "<" | ">" | "=" | "<=" | ">=")),
                );
            } else {
                targets.push(&d.name);
            }
            for t in targets {
                for &j in providers.get(t).map(Vec::as_slice).unwrap_or(&[]) {
                    if j != i {
                        needs[i].push((j, d.is_prereq()));
                    }
                }
            }
        }
    }
    let comps = tarjan(n, &needs);
    // Order components: a component goes after every component it needs. Kahn's algorithm
    // over the condensation, choosing the smallest-named ready component each time.
    let mut comp_of = vec![0; n];
    for (c, members) in comps.iter().enumerate() {
        for &m in members {
            comp_of[m] = c;
        }
    }
    let key = |c: usize| comps[c].iter().map(|&m| names[m].as_str()).min().unwrap_or("").to_string();
    let mut deps_left = vec![BTreeSet::new(); comps.len()];
    let mut dependents = vec![Vec::new(); comps.len()];
    for i in 0..n {
        for &(j, _) in &needs[i] {
            let (ci, cj) = (comp_of[i], comp_of[j]);
            if ci != cj && deps_left[ci].insert(cj) {
                dependents[cj].push(ci);
            }
        }
    }
    let mut ready: BTreeSet<(String, usize)> = (0..comps.len()).filter(|&c| deps_left[c].is_empty()).map(|c| (key(c), c)).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(first) = ready.iter().next().cloned() {
        ready.remove(&first);
        let c = first.1;
        out.extend(order_component(&comps[c], &needs, &names));
        for &d in &dependents[c] {
            deps_left[d].remove(&c);
            if deps_left[d].is_empty() {
                ready.insert((key(d), d));
            }
        }
    }
    out
}

/// Inside a cycle: prerequisite edges only, again by Kahn with name ties; whatever still
/// cycles goes by name.
fn order_component(members: &[usize], needs: &[Vec<(usize, bool)>], names: &[String]) -> Vec<usize> {
    if members.len() == 1 {
        return members.to_vec();
    }
    let set: BTreeSet<usize> = members.iter().copied().collect();
    let mut left: HashMap<usize, BTreeSet<usize>> = members
        .iter()
        .map(|&m| (m, needs[m].iter().filter(|&&(j, pre)| pre && set.contains(&j)).map(|&(j, _)| j).collect()))
        .collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let pick = left
            .iter()
            .filter(|(_, d)| d.is_empty())
            .map(|(&m, _)| m)
            .min_by(|&a, &b| names[a].cmp(&names[b]))
            .or_else(|| left.keys().copied().min_by(|&a, &b| names[a].cmp(&names[b])))
            .expect("non-empty");
        left.remove(&pick);
        for d in left.values_mut() {
            d.remove(&pick);
        }
        out.push(pick);
    }
    out
}

/// Strongly connected components (iterative Tarjan), each sorted.
fn tarjan(n: usize, edges: &[Vec<(usize, bool)>]) -> Vec<Vec<usize>> {
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comps = Vec::new();
    let mut next = 0;
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if *ei == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&(w, _)) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comp.sort();
                comps.push(comp);
            }
        }
    }
    comps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarjan_finds_cycles() {
        // 0 -> 1 -> 2 -> 0, 3 -> 0
        let e = vec![vec![(1, false)], vec![(2, false)], vec![(0, false)], vec![(0, false)]];
        let mut c = tarjan(4, &e);
        c.sort();
        assert_eq!(c, vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn prereqs_win_inside_a_cycle() {
        let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        // a needs b (prereq), b needs a (plain): b first despite the name order.
        let e = vec![vec![(1, true)], vec![(0, false)]];
        assert_eq!(order_component(&[0, 1], &e, &names), [1, 0]);
    }
}
