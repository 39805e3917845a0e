//! `strata gc` prunes the RPM cache by last use: the real binary composes from a fixture
//! repository with `--cache-dir`, the cached RPMs are aged, and gc removes them only when
//! no compose used them within `--rpm-max-age`; the next compose fetches them again.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const DAY: Duration = Duration::from_secs(24 * 3600);

struct Env {
    dir: tempfile::TempDir,
    spec: PathBuf,
}

impl Env {
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `strata ARGS… --store STORE --cache-dir CACHE EXTRA…`, asserted to succeed.
    fn strata(&self, args: &[&std::ffi::OsStr], extra: &[&str]) -> std::process::Output {
        let out = run(strata(&self.cache()).args(args).arg("--store").arg(self.store()).arg("--cache-dir").arg(self.cache()).args(extra));
        assert_ok(&format!("strata {args:?} {extra:?}"), &out);
        out
    }

    fn compose(&self, extra: &[&str]) {
        self.strata(&["compose".as_ref(), self.spec.as_os_str()], extra);
    }

    fn gc(&self, extra: &[&str]) -> std::process::Output {
        self.strata(&["gc".as_ref()], extra)
    }

    fn gc_json(&self, extra: &[&str]) -> Value {
        let out = self.gc(&[&["--json"], extra].concat());
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("strata gc --json: {e}\n{}", stdout(&out)))
    }

    /// The cached RPMs (`CACHE/rpms/sha256/*`) and their sizes.
    fn cached(&self) -> Vec<(PathBuf, u64)> {
        let dir = self.cache().join("rpms").join("sha256");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut out: Vec<_> = entries.map(|e| e.unwrap()).map(|e| (e.path(), e.metadata().unwrap().len())).collect();
        out.sort();
        out
    }

    fn age_all(&self, ago: Duration) {
        for (path, _) in self.cached() {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::now() - ago).unwrap();
        }
    }
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_fixture_repo(dir.path(), &[pkg("a", "1", &["Requires: b"]), pkg("b", "1", &[]), pkg("c", "1", &[])]);
    let spec = simple_spec(dir.path(), "fixture", repo.to_str().unwrap(), &[("app", &["a"])]);
    Env { dir, spec }
}

fn used_ago(path: &Path) -> Duration {
    std::fs::metadata(path).unwrap().modified().unwrap().elapsed().unwrap_or_default()
}

#[test]
fn gc_removes_cached_rpms_no_compose_used_within_the_max_age() {
    let env = env();
    env.compose(&[]);
    let cached = env.cached();
    assert_eq!(cached.len(), 2, "a and b are fetched, c is not: {cached:?}");
    let total: u64 = cached.iter().map(|(_, len)| len).sum();

    // Fetched 40 days ago, but a compose used them now: they stay.
    env.age_all(40 * DAY);
    env.compose(&["--force"]);
    assert!(cached.iter().all(|(p, _)| used_ago(p) < Duration::from_secs(60)), "a compose's cache hits renew the entries");
    let report = env.gc_json(&[]);
    assert_eq!((&report["rpms_removed"], &report["rpm_bytes_freed"]), (&Value::from(0), &Value::from(0)), "{report}");

    // `--rpm-max-age 0` keeps them however old; the text line says so.
    env.age_all(40 * DAY);
    let text = stdout(&env.gc(&["--rpm-max-age", "0"]));
    assert!(text.contains("removed 0 cached RPMs (0 B) (--rpm-max-age 0 keeps them), 0 partial downloads"), "{text}");
    assert_eq!(env.cached().len(), 2);

    // A longer max age than their age keeps them too; the default (30 days) does not.
    assert_eq!(env.gc_json(&["--rpm-max-age", "60d"])["rpms_removed"], 0);
    let out = stdout(&env.gc(&["--json"]));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rpms_removed"], 2, "{report}");
    assert_eq!(report["rpm_bytes_freed"], total, "{report}");
    assert_eq!(report["rpm_entries_skipped"], 0, "{report}");
    // The keys `strata gc --json` had before are all still there.
    for key in ["blobs_removed", "bytes_freed", "blobs_kept_young", "cache_entries_removed", "unpacked_layers_removed", "upload_records_removed"] {
        assert!(report[key].is_u64(), "{key} missing: {out}");
    }
    assert!(env.cached().is_empty(), "{:?}", env.cached());

    // The next compose fetches them again and works.
    env.compose(&["--force"]);
    assert_eq!(env.cached(), cached);
}
