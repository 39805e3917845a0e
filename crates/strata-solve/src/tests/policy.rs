//! Candidate policy: priorities, cost, excludes, arch, determinism.

use super::{nevras, ok, p, repo, request, Pkg};
use crate::{PoolRepo, SolveError};

#[test]
fn newest_wins_at_equal_priority() {
    let base = repo("base", &[p("bash", "5.1-1", &[])]);
    let updates = repo("updates", &[p("bash", "5.2-1", &[])]);
    let pool = [PoolRepo::new(&base), PoolRepo::new(&updates)];
    assert_eq!(
        nevras(&pool, &request(&["bash"])).unwrap(),
        ["bash-5.2-1.x86_64@updates"]
    );
}

#[test]
fn better_priority_repo_wins_even_with_an_older_version() {
    let base = repo("base", &[p("bash", "5.1-1", &[]), p("zsh", "1-1", &[])]);
    let updates = repo("updates", &[p("bash", "5.2-1", &[]), p("fish", "1-1", &[])]);
    let mut pool = [PoolRepo::new(&base), PoolRepo::new(&updates)];
    pool[0].priority = 10;
    assert_eq!(
        nevras(&pool, &request(&["bash"])).unwrap(),
        ["bash-5.1-1.x86_64@base"]
    );
    // Priority is per name: a name only the worse repo has is still available.
    assert_eq!(
        nevras(&pool, &request(&["fish"])).unwrap(),
        ["fish-1-1.x86_64@updates"]
    );
    // A requirement the priority repo's version cannot meet is not satisfied elsewhere.
    let r = solve_err(&pool, &["bash >= 5.2"]);
    assert!(r.contains("nothing provides it"), "{r}");
}

fn solve_err(pool: &[PoolRepo<'_>], packages: &[&str]) -> String {
    match nevras(pool, &request(packages)) {
        Ok(v) => panic!("expected failure, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn identical_nevra_prefers_lower_cost_then_pool_order() {
    let a = repo("a", &[p("bash", "5.2-1", &[])]);
    let b = repo("b", &[p("bash", "5.2-1", &[])]);
    let mut pool = [PoolRepo::new(&a), PoolRepo::new(&b)];
    assert_eq!(
        nevras(&pool, &request(&["bash"])).unwrap(),
        ["bash-5.2-1.x86_64@a"]
    );
    pool[1].cost = 500;
    assert_eq!(
        nevras(&pool, &request(&["bash"])).unwrap(),
        ["bash-5.2-1.x86_64@b"]
    );
}

#[test]
fn excludes_hide_packages() {
    let pkgs = [
        p("app", "1-1", &["R:(doc-a or doc-b)"]),
        p("doc-a", "1-1", &[]),
        p("doc-b", "1-1", &[]),
    ];
    let r = repo("r", &pkgs);
    let pool = [PoolRepo::new(&r)];
    let mut req = request(&["app"]);
    req.exclude = vec!["doc-a*".into()];
    assert_eq!(
        nevras(&pool, &req).unwrap(),
        ["app-1-1.x86_64@r", "doc-b-1-1.x86_64@r"]
    );

    // Per-repository excludes; an excluded requested name is unknown.
    let mut pool = [PoolRepo::new(&r)];
    pool[0].excludes = vec!["app".into()];
    match nevras(&pool, &request(&["app"])) {
        Err(SolveError::UnknownPackages(u)) => assert_eq!(u[0].request, "app"),
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn arch_policy() {
    let pkgs = [
        Pkg {
            name: "lib",
            evr: "2-1",
            arch: "i686",
            deps: &[],
        },
        Pkg {
            name: "lib",
            evr: "1-1",
            arch: "x86_64",
            deps: &[],
        },
        Pkg {
            name: "data",
            evr: "1-1",
            arch: "noarch",
            deps: &[],
        },
        Pkg {
            name: "src-only",
            evr: "1-1",
            arch: "src",
            deps: &[],
        },
        Pkg {
            name: "arm",
            evr: "1-1",
            arch: "aarch64",
            deps: &[],
        },
    ];
    // i686 is newer but never picked on x86_64; noarch is fine.
    assert_eq!(
        ok(&pkgs, &["lib", "data"]),
        ["data-1-1.noarch", "lib-1-1.x86_64"]
    );
    let r = repo("r", &pkgs);
    let pool = [PoolRepo::new(&r)];
    for name in ["src-only", "arm"] {
        assert!(
            matches!(
                nevras(&pool, &request(&[name])),
                Err(SolveError::UnknownPackages(_))
            ),
            "{name}"
        );
    }
}

#[test]
fn better_arch_first_at_equal_evr() {
    let pkgs = [
        Pkg {
            name: "tool",
            evr: "1-1",
            arch: "noarch",
            deps: &[],
        },
        Pkg {
            name: "tool",
            evr: "1-1",
            arch: "x86_64",
            deps: &[],
        },
    ];
    assert_eq!(ok(&pkgs, &["tool"]), ["tool-1-1.x86_64"]);
}

#[test]
fn results_and_errors_are_deterministic() {
    let pkgs = [
        p(
            "app",
            "1-1",
            &["R:(x or y or z)", "R:virt", "R:missing >= 2"],
        ),
        p("x", "1-1", &[]),
        p("y", "1-1", &[]),
        p("z", "1-1", &[]),
        p("v1", "1-1", &["P:virt"]),
        p("v2", "1-1", &["P:virt"]),
        p("missing", "1-1", &[]),
    ];
    let first = super::err(&pkgs, &["app"]);
    for _ in 0..5 {
        assert_eq!(super::err(&pkgs, &["app"]), first);
    }
    let pkgs_ok = [
        p("app", "1-1", &["R:(x or y or z)", "R:virt"]),
        p("x", "1-1", &[]),
        p("y", "1-1", &[]),
        p("z", "1-1", &[]),
        p("v1", "1-1", &["P:virt"]),
        p("v2", "1-1", &["P:virt"]),
    ];
    // Competing providers: libsolv's byte order of names.
    assert_eq!(
        ok(&pkgs_ok, &["app"]),
        ["app-1-1.x86_64", "v1-1-1.x86_64", "x-1-1.x86_64"]
    );
}
