//! Request forms and the wording of failures.

use super::{err, nevras, ok, p, repo, request, Pkg};
use crate::{PoolRepo, SolveError};

fn pool_pkgs() -> Vec<Pkg<'static>> {
    vec![
        p("bash", "5.2.15-2+b13", &["F:/bin/bash", "P:/bin/sh"]),
        p("bash", "5.1-1", &[]),
        Pkg {
            name: "bash",
            evr: "5.2.15-2+b13",
            arch: "i686",
            deps: &[],
        },
        p("libssl3", "3.0.11-1", &["P:libssl.so.3()(64bit)"]),
        p("bash-completion", "2.11-1", &[]),
        p("nginx", "1.22.1-9", &[]),
        p("nginx-light", "1.22.1-9", &["R:nginx-common"]),
        p("nginx-common", "1.22.1-9", &[]),
    ]
}

#[test]
fn request_forms() {
    let pkgs = pool_pkgs();
    let bash = ["bash-5.2.15-2+b13.x86_64"];
    assert_eq!(ok(&pkgs, &["bash"]), bash);
    assert_eq!(ok(&pkgs, &["bash >= 5"]), bash);
    assert_eq!(ok(&pkgs, &["bash < 5.2"]), ["bash-5.1-1.x86_64"]);
    assert_eq!(ok(&pkgs, &["bash = 5.2.15-2+b13"]), bash);
    assert_eq!(ok(&pkgs, &["bash-5.2.15-2+b13"]), bash);
    assert_eq!(ok(&pkgs, &["bash-5.2.15-2+b13.x86_64"]), bash);
    assert_eq!(ok(&pkgs, &["bash-5.1"]), ["bash-5.1-1.x86_64"]);
    assert_eq!(ok(&pkgs, &["bash.x86_64"]), bash);
    assert_eq!(
        ok(&pkgs, &["libssl.so.3()(64bit)"]),
        ["libssl3-3.0.11-1.x86_64"]
    );
    assert_eq!(ok(&pkgs, &["/bin/bash"]), bash);
    assert_eq!(ok(&pkgs, &["/bin/sh"]), bash);
    // `or` alternatives compete like providers (byte order), as in libsolv.
    assert_eq!(
        ok(&pkgs, &["(nginx-light or nginx)"]),
        ["nginx-1.22.1-9.x86_64"]
    );
    assert!(ok(&pkgs, &["(nginx-light if bash)"]).is_empty());
}

#[test]
fn nevra_of_a_foreign_arch_is_unknown() {
    // bash.i686 exists but the target cannot run it.
    let text = err(&pool_pkgs(), &["bash.i686"]);
    assert!(
        text.starts_with("no match for package: `bash.i686`"),
        "{text}"
    );
}

#[test]
fn unknown_requests_are_all_listed_with_suggestions() {
    let r = repo("r", &pool_pkgs());
    let pool = [PoolRepo::new(&r)];
    let e = nevras(&pool, &request(&["bash", "nginx-lite", "bsah", "zzzzzzzz"])).unwrap_err();
    let SolveError::UnknownPackages(unknown) = &e else {
        panic!("{e}")
    };
    let got: Vec<(&str, Vec<&str>)> = unknown
        .iter()
        .map(|u| {
            (
                u.request.as_str(),
                u.suggestions.iter().map(|s| s.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("nginx-lite", vec!["nginx-light", "nginx"]),
            ("bsah", vec!["bash"]),
            ("zzzzzzzz", vec![]),
        ]
    );
    assert_eq!(
        e.to_string(),
        "no match for packages: `nginx-lite` (did you mean: nginx-light, nginx?); \
         `bsah` (did you mean: bash?); `zzzzzzzz`"
    );
}

#[test]
fn malformed_requests_are_bad_requests() {
    for (item, reason) in [
        ("bash >=", "expected `NAME`, `NAME OP VERSION` or a NEVRA"),
        ("bash ~> 5", "unknown operator `~>` (use <, <=, =, >=, >)"),
        (
            "bash >= x:1",
            "`x:1` is not a version ([EPOCH:]VERSION[-RELEASE])",
        ),
        ("  ", "empty package request"),
    ] {
        let text = err(&pool_pkgs(), &[item]);
        assert_eq!(text, format!("bad request `{item}`: {reason}"));
    }
    let text = err(&pool_pkgs(), &["(bash or"]);
    assert!(
        text.starts_with("bad request `(bash or`: not a valid rich dependency"),
        "{text}"
    );
}

#[test]
fn unsatisfiable_names_the_missing_requirement_and_what_is_available() {
    let pkgs = [
        p("nodejs", "18.19.0-1", &["R:libnode108 = 18.19.0-1"]),
        p("libnode108", "18.20.4-1~deb12u3", &[]),
    ];
    let text = err(&pkgs, &["nodejs"]);
    assert!(
        text.contains(
            "  - nodejs-18.19.0-1 requires libnode108 = 18.19.0-1, but nothing provides it \
             (available: libnode108-18.20.4-1~deb12u3)\n"
        ),
        "{text}"
    );
    assert!(
        text.starts_with("no set of packages satisfies the request:\n"),
        "{text}"
    );
    assert!(text.contains("resolver explanation:\n"), "{text}");
    assert!(
        !text.contains("SolvableId") && !text.contains("VersionSet"),
        "{text}"
    );
}

#[test]
fn unsatisfiable_soname_without_any_provider() {
    let pkgs = [p("app", "1-1", &["R:libgone.so.1()(64bit)"])];
    let text = err(&pkgs, &["app"]);
    assert!(
        text.contains("  - app-1-1 requires libgone.so.1()(64bit), but nothing provides it\n"),
        "{text}"
    );
}

#[test]
fn requested_version_that_does_not_exist() {
    let text = err(&pool_pkgs(), &["bash >= 6"]);
    assert!(
        text.contains(
            "the request needs bash >= 6, but nothing provides it (available: bash-5.2.15-2+b13)"
        ),
        "{text}"
    );
}
