//! Dependency semantics: versioned provides, files, rich deps, conflicts, obsoletes, weak.

use super::{err, filelists_xml, nevras, ok, p, primary_xml, repo, request};
use crate::PoolRepo;
use strata_repo::{LoadedRepo, RepoIndex};

#[test]
fn versioned_provides_pick_the_provider_in_range() {
    let pkgs = [
        p("app", "1.0-1", &["R:libfoo >= 2"]),
        p("foo1", "1.0-1", &["P:libfoo = 1"]),
        p("foo2", "1.0-1", &["P:libfoo = 2.1"]),
    ];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1.0-1.x86_64", "foo2-1.0-1.x86_64"]
    );
}

#[test]
fn unversioned_provide_satisfies_a_versioned_requirement() {
    let pkgs = [
        p("app", "1.0-1", &["R:libfoo >= 2"]),
        p("foo", "1.0-1", &["P:libfoo"]),
    ];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1.0-1.x86_64", "foo-1.0-1.x86_64"]
    );
}

#[test]
fn own_name_is_provided_without_an_explicit_provide() {
    let pkgs = [
        p("app", "1.0-1", &["R:bar >= 1.5"]),
        p("bar", "1.0-1", &[]),
        p("bar", "2.0-1", &[]),
    ];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1.0-1.x86_64", "bar-2.0-1.x86_64"]
    );
    let pkgs = [
        p("app", "1.0-1", &["R:bar < 1.5"]),
        p("bar", "1.0-1", &[]),
        p("bar", "2.0-1", &[]),
    ];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1.0-1.x86_64", "bar-1.0-1.x86_64"]
    );
}

#[test]
fn missing_release_in_a_requirement_is_a_wildcard() {
    let pkgs = [p("app", "1.0-1", &["R:bar = 1.0"]), p("bar", "1.0-3", &[])];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1.0-1.x86_64", "bar-1.0-3.x86_64"]
    );
}

#[test]
fn epoch_orders_before_version() {
    let pkgs = [p("bar", "2.0-1", &[]), p("bar", "1:0.5-1", &[])];
    assert_eq!(ok(&pkgs, &["bar"]), ["bar-1:0.5-1.x86_64"]);
    let pkgs = [p("app", "1-1", &["R:bar >= 1:0"]), p("bar", "9.0-1", &[])];
    let text = err(&pkgs, &["app"]);
    assert!(
        text.contains(
            "app-1-1 requires bar >= 1:0, but nothing provides it (available: bar-9.0-1)"
        ),
        "{text}"
    );
}

#[test]
fn file_requirement_from_primary_files_and_explicit_provides() {
    let pkgs = [
        p("app", "1-1", &["R:/usr/bin/tool", "R:/etc/app.conf"]),
        p("tools", "1-1", &["F:/usr/bin/tool"]),
        p("conf", "1-1", &["P:/etc/app.conf"]),
    ];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1-1.x86_64", "conf-1-1.x86_64", "tools-1-1.x86_64"]
    );
}

#[test]
fn file_requirement_only_in_filelists_is_loaded_lazily() {
    let pkgs = [
        p("app", "1-1", &["R:/usr/share/data/blob"]),
        p("data", "1-1", &[]),
    ];
    assert!(!LoadedRepo::primary_covers("/usr/share/data/blob"));
    let index = RepoIndex::from_primary_xml(primary_xml(&pkgs).as_bytes()).unwrap();
    let r = LoadedRepo::in_memory(
        "r",
        index,
        Some(filelists_xml(&pkgs, &[(1, "/usr/share/data/blob")])),
    );
    let pool = [PoolRepo::new(&r)];
    assert_eq!(
        nevras(&pool, &request(&["app"])).unwrap(),
        ["app-1-1.x86_64@r", "data-1-1.x86_64@r"]
    );

    // Without file lists nothing provides it.
    let text = err(&pkgs, &["app"]);
    assert!(
        text.contains("app-1-1 requires /usr/share/data/blob, but nothing provides it"),
        "{text}"
    );
}

fn rich_pool<'a>(requires: &'a [&'a str]) -> Vec<super::Pkg<'a>> {
    vec![
        p("app", "1-1", requires),
        p("a", "1-1", &[]),
        p("b", "1-1", &[]),
        p("c", "1-1", &[]),
        p("d", "1-1", &["P:feature = 2"]),
        p("e", "1-1", &["P:feature = 1"]),
    ]
}

#[test]
fn rich_or_and() {
    assert_eq!(
        ok(&rich_pool(&["R:(a or b)"]), &["app"]),
        ["a-1-1.x86_64", "app-1-1.x86_64"]
    );
    // Alternatives compete in byte order of names, not listed order (libsolv).
    assert_eq!(
        ok(&rich_pool(&["R:(b or a)"]), &["app"]),
        ["a-1-1.x86_64", "app-1-1.x86_64"]
    );
    assert_eq!(
        ok(&rich_pool(&["R:(a and b)"]), &["app"]),
        ["a-1-1.x86_64", "app-1-1.x86_64", "b-1-1.x86_64"]
    );
    // `or` skips an alternative nothing provides.
    assert_eq!(
        ok(&rich_pool(&["R:(missing or c)"]), &["app"]),
        ["app-1-1.x86_64", "c-1-1.x86_64"]
    );
    // Nested: (a and (missing or c)).
    assert_eq!(
        ok(&rich_pool(&["R:(a and (missing or c))"]), &["app"]),
        ["a-1-1.x86_64", "app-1-1.x86_64", "c-1-1.x86_64"]
    );
}

#[test]
fn rich_if_else_unless() {
    // (a if b): nothing pulls b, so a is not needed.
    assert_eq!(
        ok(&rich_pool(&["R:(a if b)"]), &["app"]),
        ["app-1-1.x86_64"]
    );
    // With b requested, a comes along.
    assert_eq!(
        ok(&rich_pool(&["R:(a if b)"]), &["app", "b"]),
        ["a-1-1.x86_64", "app-1-1.x86_64", "b-1-1.x86_64"]
    );
    // (a if b else c): b absent → c.
    assert_eq!(
        ok(&rich_pool(&["R:(a if b else c)"]), &["app"]),
        ["app-1-1.x86_64", "c-1-1.x86_64"]
    );
    assert_eq!(
        ok(&rich_pool(&["R:(a if b else c)"]), &["app", "b"]),
        ["a-1-1.x86_64", "app-1-1.x86_64", "b-1-1.x86_64"]
    );
    // (a unless b): b absent → a.
    assert_eq!(
        ok(&rich_pool(&["R:(a unless b)"]), &["app"]),
        ["a-1-1.x86_64", "app-1-1.x86_64"]
    );
    assert_eq!(
        ok(&rich_pool(&["R:(a unless b)"]), &["app", "b"]),
        ["app-1-1.x86_64", "b-1-1.x86_64"]
    );
    // (a unless b else c): b present → c.
    assert_eq!(
        ok(&rich_pool(&["R:(a unless b else c)"]), &["app", "b"]),
        ["app-1-1.x86_64", "b-1-1.x86_64", "c-1-1.x86_64"]
    );
}

#[test]
fn rich_with_without() {
    // One package must provide feature and feature >= 2: only d.
    assert_eq!(
        ok(&rich_pool(&["R:(feature with feature >= 2)"]), &["app"]),
        ["app-1-1.x86_64", "d-1-1.x86_64"]
    );
    // feature but not feature = 2: only e.
    assert_eq!(
        ok(&rich_pool(&["R:(feature without feature = 2)"]), &["app"]),
        ["app-1-1.x86_64", "e-1-1.x86_64"]
    );
}

#[test]
fn provider_named_like_the_capability_wins() {
    let pkgs = [
        p("app", "1-1", &["R:libsystemd0"]),
        p("libelogind0", "246-1", &["P:libsystemd0"]),
        p("libsystemd0", "252-1", &[]),
    ];
    assert_eq!(
        ok(&pkgs, &["app"]),
        ["app-1-1.x86_64", "libsystemd0-252-1.x86_64"]
    );
}

#[test]
fn conflicts_plain_versioned_and_never_self() {
    // Plain: app conflicts with b; app requires (b or c) → c.
    let pkgs = [
        p("app", "1-1", &["R:(b or c)", "C:b"]),
        p("b", "1-1", &[]),
        p("c", "1-1", &[]),
    ];
    assert_eq!(ok(&pkgs, &["app"]), ["app-1-1.x86_64", "c-1-1.x86_64"]);
    // Versioned: conflict with lib < 2 forces the newer lib.
    let pkgs = [
        p("app", "1-1", &["R:lib", "C:lib < 2"]),
        p("lib", "1-1", &[]),
        p("lib", "3-1", &[]),
        p("old", "1-1", &["R:lib = 1"]),
    ];
    assert_eq!(ok(&pkgs, &["app"]), ["app-1-1.x86_64", "lib-3-1.x86_64"]);
    let text = err(&pkgs, &["app", "old"]);
    assert!(
        text.contains("app-1-1 conflicts with lib < 2 (provided by lib-1-1)"),
        "{text}"
    );
    // Debian idiom: provides and conflicts the same virtual name.
    let pkgs = [p("mta", "1-1", &["P:mail-transport", "C:mail-transport"])];
    assert_eq!(ok(&pkgs, &["mta"]), ["mta-1-1.x86_64"]);
}

#[test]
fn rich_conflict_without() {
    // perl-base conflicts with (perl-modules < 5.36 without perl-modules-5.36):
    // perl-modules-5.36 provides perl-modules unversioned and must stay installable.
    let pkgs = [
        p(
            "perl-base",
            "5.36.0-1",
            &["C:(perl-modules < 5.36.0~-0 without perl-modules-5.36)"],
        ),
        p("perl-modules-5.36", "5.36.0-1", &["P:perl-modules"]),
        p("perl-modules", "5.34.0-1", &[]),
    ];
    assert_eq!(
        ok(&pkgs, &["perl-base", "perl-modules-5.36"]),
        [
            "perl-base-5.36.0-1.x86_64",
            "perl-modules-5.36-5.36.0-1.x86_64"
        ]
    );
    let text = err(&pkgs, &["perl-base", "perl-modules"]);
    assert!(text.contains("perl-base-5.36.0-1 conflicts with"), "{text}");
    assert!(text.contains("perl-modules-5.34.0-1"), "{text}");
}

#[test]
fn obsoletes_forbid_the_obsoleted_package() {
    let pkgs = [
        p("new", "2-1", &["O:old < 2"]),
        p("old", "1-1", &[]),
        p("user", "1-1", &["R:new", "R:(old or other)"]),
        p("other", "1-1", &[]),
    ];
    assert_eq!(
        ok(&pkgs, &["user"]),
        ["new-2-1.x86_64", "other-1-1.x86_64", "user-1-1.x86_64"]
    );
}

#[test]
fn obsoletes_match_names_not_provides() {
    // `virt` is only provided by `impl`; an Obsoletes on `virt` must not remove `impl`.
    let pkgs = [p("new", "1-1", &["O:virt"]), p("impl", "1-1", &["P:virt"])];
    assert_eq!(
        ok(&pkgs, &["new", "impl"]),
        ["impl-1-1.x86_64", "new-1-1.x86_64"]
    );
}

#[test]
fn request_for_an_obsoleted_name_installs_the_obsoleter() {
    let pkgs = [
        p("old", "1-1", &[]),
        p("new", "2-1", &["O:old < 2", "P:old = 2"]),
    ];
    assert_eq!(ok(&pkgs, &["old"]), ["new-2-1.x86_64"]);
    // Not every candidate obsoleted: the name itself is installed.
    let pkgs = [
        p("old", "1-1", &[]),
        p("old", "3-1", &[]),
        p("new", "2-1", &["O:old < 2"]),
    ];
    assert_eq!(ok(&pkgs, &["old"]), ["old-3-1.x86_64"]);
}

fn weak_pool() -> Vec<super::Pkg<'static>> {
    vec![
        p(
            "app",
            "1-1",
            &["Rec:helper", "Rec:(missing or alt)", "Rec:broken"],
        ),
        p("helper", "1-1", &["Rec:helper-data"]),
        p("helper-data", "1-1", &[]),
        p("alt", "1-1", &[]),
        p("broken", "1-1", &["R:nothing-provides-this"]),
        p("lang-app", "1-1", &["Sup:(app and langpacks)"]),
        p("plugin", "1-1", &["Sup:app"]),
        p("langpacks", "1-1", &[]),
    ]
}

#[test]
fn weak_deps_on_add_recommends_and_supplements_best_effort() {
    let r = repo("r", &weak_pool());
    let pool = [PoolRepo::new(&r)];
    let mut req = request(&["app"]);
    req.install_weak_deps = true;
    let got = nevras(&pool, &req).unwrap();
    assert_eq!(
        got,
        [
            "alt-1-1.x86_64@r",
            "app-1-1.x86_64@r",
            "helper-1-1.x86_64@r",
            "helper-data-1-1.x86_64@r",
            "plugin-1-1.x86_64@r"
        ]
    );
    // The rich Supplements fires once langpacks is there too.
    req.packages.push("langpacks".into());
    let got = nevras(&pool, &req).unwrap();
    assert!(got.contains(&"lang-app-1-1.x86_64@r".to_owned()), "{got:?}");
}

#[test]
fn weak_deps_off_are_ignored() {
    assert_eq!(ok(&weak_pool(), &["app"]), ["app-1-1.x86_64"]);
}

#[test]
fn without_requires_the_best_candidate_is_taken_alone() {
    // The newer image requires the older one by a provide of the same package name: with
    // Requires the one-per-name rule leaves only the older, without them the newer wins.
    let pkgs = [
        p("img", "1-1", &["P:image(web) = 1-1", "P:image-id(a)"]),
        p("img", "2-1", &["P:image(web) = 2-1", "R:image-id(a)"]),
        p("other", "1-1", &["P:image(web) = 9-1", "R:missing"]),
    ];
    let r = repo("r", &pkgs);
    let pool = [PoolRepo::new(&r)];
    let names = |sel: Vec<crate::Selected>| {
        sel.iter()
            .map(|s| r.index.package(s.id).nevra())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(crate::solve_without_requires(&pool, &request(&["img"])).unwrap()),
        ["img-2-1.x86_64"]
    );
    assert_eq!(
        names(crate::solve(&pool, &request(&["img"])).unwrap()),
        ["img-1-1.x86_64"]
    );
    // A capability: the highest provider in range, its missing Requires no obstacle.
    assert_eq!(
        names(crate::solve_without_requires(&pool, &request(&["image(web) >= 3"])).unwrap()),
        ["other-1-1.x86_64"]
    );
    assert_eq!(
        names(crate::solve_without_requires(&pool, &request(&["image(web) < 9"])).unwrap()),
        ["img-2-1.x86_64"]
    );
}
