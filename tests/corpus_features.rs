//! The corpus in use (CI's ../shared/corpus or the one corpus/build.py built) holds what the
//! other tests rely on, checked with rpm itself rather than with strata: the manifest agrees
//! with the repositories, every update sorts newer than its base build in rpm's order, the
//! synthetic bash update is Debian's bash plus one file, and the RPM features are there
//! (three payload compressions, soname, file, rich and weak dependencies, a user-adding
//! %pre, a %post, the ldconfig file trigger, a file capability, setuid files, config files,
//! source RPM grouping). A corpus builder that lost one of them fails here, by name, instead
//! of somewhere downstream.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `rpm -qp --qf FORMAT FILE`'s output.
fn rpm_qf(file: &Path, format: &str) -> String {
    require_tool("rpm");
    let out = run(Command::new("rpm").args(["-qp", "--nosignature", "--nodigest", "--qf", format]).arg(file));
    assert_ok(&format!("rpm -qp {}", file.display()), &out);
    stdout(&out)
}

fn rpm_of(repo: &str, name: &str) -> std::path::PathBuf {
    corpus_manifest().get(repo, name).path()
}

/// The `packages="N"` a repository metadata file declares, read from its first 4 KiB as
/// `DECOMPRESSOR -dc` gives them.
fn declared_packages(decompressor: &str, file: &Path) -> usize {
    require_tool(decompressor);
    let out = run(Command::new("sh").arg("-c").arg(format!("{decompressor} -dc \"$1\" | head -c 4096")).arg("sh").arg(file));
    let head = stdout(&out);
    head.split("packages=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{} declares no package count:\n{head}", file.display()))
}

#[test]
fn the_manifest_lists_exactly_the_repositories_rpms() {
    let m = corpus_manifest();
    for repo in ["base", "updates"] {
        let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_repo(repo).join("Packages"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let listed: BTreeSet<String> = m.rpms.iter().filter(|r| r.repo == repo).map(|r| r.file_name().to_string()).collect();
        assert_eq!(on_disk, listed, "{repo}: Packages/ and the manifest differ");
        assert_eq!(declared_packages("gzip", &repodata_file(&corpus_repo(repo), "primary")), listed.len(), "{repo}: primary.xml");
    }
    // Each entry's NEVRA and digest are the file's.
    for r in m.rpms.iter().filter(|r| ["bash", "libssl3", "nginx-light", "tzdata"].contains(&r.name.as_str())) {
        let q = rpm_qf(&r.path(), "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}.%{ARCH} %{SOURCERPM}");
        assert_eq!(q, format!("{} {}.{} {}", r.name, r.evr(), r.arch, r.sourcerpm), "{}", r.rpm);
        let digest = run(Command::new("sha256sum").arg(r.path()));
        assert!(stdout(&digest).starts_with(&r.rpm_sha256), "{}: sha256 differs from the manifest", r.rpm);
    }
}

#[test]
fn every_update_sorts_newer_than_its_base_build_in_rpms_order() {
    let m = corpus_manifest();
    let updates: Vec<_> = m.rpms.iter().filter(|r| r.repo == "updates").collect();
    assert!(updates.iter().any(|r| r.variant == "debian"), "the updates repo holds no Debian update");
    let pairs: Vec<(String, String)> = updates
        .iter()
        .filter_map(|u| m.find("base", &u.name).map(|b| (u.evr(), b.evr())))
        .collect();
    // rpm's own comparison (its Lua rpm.vercmp), one call for all pairs.
    let calls: Vec<String> = pairs.iter().map(|(u, b)| format!("rpm.vercmp('{u}', '{b}')")).collect();
    let out = run(Command::new("rpm").arg("--eval").arg(format!("%{{lua: print(table.concat({{{}}}, ' '))}}", calls.join(", "))));
    assert_ok("rpm --eval rpm.vercmp", &out);
    let answers: Vec<String> = stdout(&out).split_whitespace().map(str::to_string).collect();
    assert_eq!(answers.len(), pairs.len(), "{}", stdout(&out));
    for ((u, b), a) in pairs.iter().zip(&answers) {
        assert_eq!(a, "1", "update {u} does not sort newer than base {b}");
    }
}

#[test]
fn the_synthetic_bash_update_is_debians_bash_plus_one_file() {
    let m = corpus_manifest();
    let synthetic = m.rpms.iter().find(|r| r.repo == "updates" && r.variant == "synthetic-update").expect("a synthetic update");
    assert_eq!(synthetic.name, "bash");
    // Made from the newest Debian bash: an update of it when there is one, else base's.
    let from = m.rpms.iter().find(|r| r.repo == "updates" && r.name == "bash" && r.variant == "debian").unwrap_or_else(|| m.get("base", "bash"));
    assert_eq!((synthetic.version.as_str(), synthetic.release.clone()), (from.version.as_str(), format!("{}.1", from.release)));
    let files = |p: &Path| -> BTreeSet<String> { rpm_qf(p, "[%{FILENAMES}\n]").lines().map(str::to_string).collect() };
    let added: Vec<String> = files(&synthetic.path()).difference(&files(&from.path())).cloned().collect();
    assert_eq!(added, ["/usr/share/doc/bash/README.corpus-update"]);
    assert!(files(&from.path()).is_subset(&files(&synthetic.path())));
}

#[test]
fn the_rpm_features_the_tests_rely_on_are_there() {
    let m = corpus_manifest();
    // Three payload compressions, as rpm reads them.
    let mut compressors = BTreeMap::new();
    for name in ["libc6", "libssl3", "bash"] {
        compressors.insert(rpm_qf(&rpm_of("base", name), "%{PAYLOADCOMPRESSOR}"), name);
    }
    assert_eq!(compressors.keys().map(String::as_str).collect::<Vec<_>>(), ["gzip", "xz", "zstd"], "{compressors:?}");

    // Dependencies: sonames, file paths, Requires(pre), rich and weak ones.
    let bash = rpm_qf(&rpm_of("base", "bash"), "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]");
    assert!(bash.lines().any(|l| l.starts_with("libc.so.6(GLIBC_")), "bash has no soname requirement:\n{bash}");
    assert!(bash.lines().any(|l| l.ends_with(" pre")), "bash has no Requires(pre) (Debian Pre-Depends):\n{bash}");
    let deps: Vec<String> = m
        .rpms
        .iter()
        .filter(|r| r.repo == "base")
        .map(|r| rpm_qf(&r.path(), "[R %{REQUIRENAME}\n][W %{RECOMMENDNAME}\n]"))
        .collect();
    assert!(deps.iter().any(|d| d.lines().any(|l| l.starts_with("R /"))), "no file requirement");
    assert!(deps.iter().any(|d| d.lines().any(|l| l.starts_with("R ("))), "no rich requirement");
    assert!(deps.iter().any(|d| d.lines().any(|l| l.starts_with("W "))), "no weak dependency");

    // Scriptlets: the %pre that adds a user, the %post, the ldconfig file trigger.
    let pre = rpm_qf(&rpm_of("base", "redis-server"), "%{PREIN}");
    assert!(pre.contains("redis:x:999:999") && pre.contains("/etc/passwd"), "{pre}");
    let post = rpm_qf(&rpm_of("base", "ca-certificates"), "%{POSTIN}");
    assert!(post.contains("update-ca-certificates"), "{post}");
    let trigger = rpm_qf(&rpm_of("base", "libc-bin"), "[%{TRANSFILETRIGGERCONDS}\n]%{TRANSFILETRIGGERSCRIPTS}");
    assert!(trigger.contains("/usr/lib/x86_64-linux-gnu") && trigger.contains("ldconfig"), "{trigger}");

    // File attributes: a capability, setuid files, config files.
    let ping = rpm_qf(&rpm_of("base", "iputils-ping"), "[%{FILENAMES} %{FILECAPS}\n]");
    assert!(ping.lines().any(|l| l == "/bin/ping cap_net_raw=p"), "{ping}");
    let su = rpm_qf(&rpm_of("base", "util-linux"), "[%{FILENAMES} %{FILEMODES:perms}\n]");
    assert!(su.lines().any(|l| l == "/bin/su -rwsr-xr-x"), "/bin/su is not setuid");
    let passwd = rpm_qf(&rpm_of("base", "base-passwd"), "[%{FILENAMES} %{FILEFLAGS:fflags}\n]");
    assert!(passwd.lines().any(|l| l.starts_with("/etc/passwd ") && l.contains('c') && l.contains('n')), "{passwd}");

    // Source RPM grouping: binaries of one Debian source name one source RPM.
    assert_eq!(m.get("base", "libssl3").sourcerpm, m.get("base", "openssl").sourcerpm);
    assert!(m.get("base", "libssl3").sourcerpm.starts_with("openssl-"));
}

#[test]
fn the_scale_repository_describes_all_of_bookworm_main() {
    let scale = corpus_dir().join("out/scale");
    let count = declared_packages("zstd", &repodata_file(&scale, "primary"));
    assert!(count > 60_000, "the scale repository has {count} packages");
}
