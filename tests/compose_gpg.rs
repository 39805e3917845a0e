//! `gpgcheck` through the CLI: the spec's gpgkey reaches the fetcher, signed repos compose,
//! unsigned packages are refused naming the package, `--nogpgcheck` opts out.

mod common;

use common::gpg::{rpmsign, stop_agent, throwaway_key};
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The shipped example repo, built into `dir/repo`; with `key` its RPMs are signed first.
fn example_repo(dir: &Path, sign_with: Option<&Path>) -> std::path::PathBuf {
    let repo = dir.join("repo");
    assert_ok("examples/build-repo.sh", &run(Command::new(project_root().join("examples/build-repo.sh")).arg(&repo)));
    if let Some(home) = sign_with {
        for rpm in std::fs::read_dir(repo.join("Packages")).unwrap() {
            rpmsign(home, &rpm.unwrap().path());
        }
        assert_ok("createrepo_c", &run(Command::new("createrepo_c").args(["--quiet", "--no-database"]).arg(&repo)));
    }
    repo
}

fn spec(dir: &Path, repo: &Path, key: &Path) -> std::path::PathBuf {
    let mut v = read_json(&project_root().join("examples/spec.json"));
    v["repos"][0]["baseurl"] = Value::from(repo.to_str().unwrap());
    v["repos"][0]["gpgcheck"] = Value::from(true);
    v["repos"][0]["gpgkey"] = Value::from(format!("file://{}", key.display()));
    write_json(&dir.join("spec.json"), &v)
}

#[test]
fn signed_repo_composes_unsigned_is_refused() {
    let signed = tempfile::tempdir().unwrap();
    let (home, key) = throwaway_key(signed.path());
    let repo = example_repo(signed.path(), Some(&home));
    stop_agent(&home);
    let s = spec(signed.path(), &repo, &key);
    let out = run(strata(&signed.path().join("cache")).env("STRATA_STAGING_DIR", signed.path().join("staging")).arg("compose").arg(&s).arg("--store").arg(signed.path().join("store")).args(["--image", "hello"]));
    assert_ok("compose from a signed repo with gpgcheck", &out);

    let unsigned = tempfile::tempdir().unwrap();
    let repo = example_repo(unsigned.path(), None);
    let s = spec(unsigned.path(), &repo, &key);
    let compose = |extra: &[&str]| {
        run(strata(&unsigned.path().join("cache")).env("STRATA_STAGING_DIR", unsigned.path().join("staging")).arg("compose").arg(&s).arg("--store").arg(unsigned.path().join("store")).args(["--image", "hello"]).args(extra))
    };
    let err = assert_fails("compose from an unsigned repo with gpgcheck", &compose(&[]));
    assert!(err.contains("not signed") && err.contains("hello-2.0-1"), "{err}");
    assert_ok("compose with --nogpgcheck", &compose(&["--nogpgcheck"]));
}
