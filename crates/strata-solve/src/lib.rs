//! The dependency resolver: a request (names, `name op evr`, NEVRAs, provides, file paths)
//! plus a pool of loaded repositories → the exact set of packages to install, with RPM
//! semantics (versioned and file provides, rich dependencies, conflicts, obsoletes, weak
//! dependencies, repository priority and cost, arch policy, excludes), and errors a user
//! can act on.
//!
//! It sits on `resolvo` (CDCL). This crate owns the modelling of RPM on top of it (one
//! solvable per package under its package name; capabilities as unions of per-name version
//! sets; conflicts and obsoletes as constrains; rich deps as CNF clauses with conditions;
//! weak deps as soft requirements), the meaning of a request, and the wording of failures.
//! Version comparison and dependency parsing belong to `strata-rpm`, metadata to
//! `strata-repo`.

mod catalog;
mod explain;
mod glob;
mod provider;
mod request;
mod rich;
mod weak;

#[cfg(test)]
mod tests;

use resolvo::{Solver, UnsolvableOrCancelled};
use strata_repo::{LoadedRepo, PkgId, RepoError};

use crate::catalog::Catalog;
use crate::provider::Provider;
use crate::request::Meaning;

/// dnf's default repository priority.
pub const DEFAULT_PRIORITY: i32 = 99;
/// dnf's default repository cost.
pub const DEFAULT_COST: i32 = 1000;

/// A repository as the solver sees it.
#[derive(Clone, Debug)]
pub struct PoolRepo<'a> {
    pub repo: &'a LoadedRepo,
    /// dnf priority: for each package name only the repositories with the lowest number
    /// that have the name are considered. Default [`DEFAULT_PRIORITY`].
    pub priority: i32,
    /// dnf cost: among identical NEVRAs in several repositories the lowest cost wins.
    /// Default [`DEFAULT_COST`].
    pub cost: i32,
    /// Globs on package names hidden from this repository (dnf `excludepkgs`).
    pub excludes: Vec<String>,
}

impl<'a> PoolRepo<'a> {
    /// A repository with dnf's default priority and cost and no excludes.
    pub fn new(repo: &'a LoadedRepo) -> Self {
        PoolRepo {
            repo,
            priority: DEFAULT_PRIORITY,
            cost: DEFAULT_COST,
            excludes: Vec::new(),
        }
    }
}

/// What to install.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Names, `name op evr`, dnf NEVRA forms, provides, file paths or rich expressions.
    pub packages: Vec<String>,
    /// Globs on package names hidden from every repository.
    pub exclude: Vec<String>,
    /// Also install Recommends and Supplements, best effort.
    pub install_weak_deps: bool,
    /// Target arch, e.g. `x86_64`; candidates are limited to the arches it can run.
    pub arch: String,
}

/// One package of the solution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selected {
    /// Index into the pool slice given to [`solve`].
    pub repo: usize,
    pub id: PkgId,
}

/// A request item nothing matches, with the closest package names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    pub request: String,
    pub suggestions: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("{}", unknown_message(.0))]
    UnknownPackages(Vec<Unknown>),
    #[error("{explanation}")]
    Unsatisfiable { explanation: String },
    #[error("bad request `{request}`: {reason}")]
    BadRequest { request: String, reason: String },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn unknown_message(unknown: &[Unknown]) -> String {
    let parts: Vec<String> = unknown
        .iter()
        .map(|u| {
            if u.suggestions.is_empty() {
                format!("`{}`", u.request)
            } else {
                format!(
                    "`{}` (did you mean: {}?)",
                    u.request,
                    u.suggestions.join(", ")
                )
            }
        })
        .collect();
    let noun = if unknown.len() == 1 {
        "package"
    } else {
        "packages"
    };
    format!("no match for {noun}: {}", parts.join("; "))
}

/// Resolves `req` against `pool`: the packages to install, sorted by name (then NEVRA and
/// repository, for determinism).
pub fn solve(pool: &[PoolRepo<'_>], req: &Request) -> Result<Vec<Selected>, SolveError> {
    solve_with(pool, req, true)
}

/// [`solve`] with every package's Requires ignored (conflicts and obsoletes still count):
/// the package each request item would install, chosen by the same rules (highest EVR,
/// arch policy, priority, cost, excludes), and nothing it needs — `dnf download` without
/// `--resolve`. For fetching one package that is used whole, such as an image RPM, whose
/// Requires name what it was built from rather than what it needs to be loaded.
pub fn solve_without_requires(
    pool: &[PoolRepo<'_>],
    req: &Request,
) -> Result<Vec<Selected>, SolveError> {
    solve_with(pool, req, false)
}

fn solve_with(
    pool: &[PoolRepo<'_>],
    req: &Request,
    requires: bool,
) -> Result<Vec<Selected>, SolveError> {
    let mut provider = Provider::new(Catalog::new(pool, &req.arch, &req.exclude));
    provider.requires = requires;
    let mut requirements = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for item in &req.packages {
        match request::resolve(&provider, item) {
            Meaning::Requirements(reqs) => {
                for r in reqs {
                    if !requirements.contains(&r) {
                        requirements.push(r);
                    }
                }
            }
            Meaning::Unknown => unknown.push(item.clone()),
            Meaning::Bad(reason) => {
                return Err(SolveError::BadRequest {
                    request: item.clone(),
                    reason,
                })
            }
        }
    }
    if let Some(e) = provider.cat.take_error() {
        return Err(SolveError::Repo(e));
    }
    if !unknown.is_empty() {
        let names = provider.cat.all_names();
        let unknown = unknown
            .into_iter()
            .map(|request| Unknown {
                suggestions: explain::suggestions(&request, &names),
                request,
            })
            .collect();
        return Err(SolveError::UnknownPackages(unknown));
    }

    let mut solver = Solver::new(provider);
    let solution = match weak::solve(&mut solver, requirements, req.install_weak_deps) {
        Ok(s) => s,
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            return Err(SolveError::Unsatisfiable {
                explanation: explain::unsatisfiable(&solver, &conflict),
            })
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => {
            return match solver.provider().cat.take_error() {
                Some(e) => Err(SolveError::Repo(e)),
                None => Err(SolveError::Unsatisfiable {
                    explanation: "the resolver was cancelled".to_owned(),
                }),
            }
        }
    };
    let cat = &solver.provider().cat;
    if let Some(e) = cat.take_error() {
        return Err(SolveError::Repo(e));
    }
    let mut out: Vec<(String, String, Selected)> = solution
        .into_iter()
        .map(|s| {
            let rec = cat.solvable(s);
            let pkg = cat.package(s);
            let key = format!("{}.{}", cat.display_solvable(s), pkg.arch());
            (
                pkg.name().to_owned(),
                key,
                Selected {
                    repo: rec.repo,
                    id: rec.id,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1, a.2.repo).cmp(&(&b.0, &b.1, b.2.repo)));
    Ok(out.into_iter().map(|(_, _, s)| s).collect())
}
