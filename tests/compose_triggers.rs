//! Issue 17 (part 2): classic triggers, the image's own rpm macros and merged-/usr roots,
//! each checked against rpm 4.18 itself. Fixture packages are built here with rpmbuild;
//! strata composes them, `rpm --root DIR -i` installs the same packages in the same order,
//! and the two roots must be the same tree (tests/common/tree.rs), list the same packages
//! in the same order, and verify clean with `rpm -Va`.
//!
//! Every fixture set starts with `base`: busybox (static) as `/usr/bin/sh`, and `/bin` a
//! symlink to `usr/bin` (a merged-/usr root, as Fedora's filesystem package makes it), so
//! scriptlets find `/bin/sh` in both roots.

mod common;

use common::tree::{assert_same_install, entries, rpm_at, rpm_install};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const LOG: &str = "var/log/triggers.log";

/// The macro file `langconf` installs (`printf %b` turns each `\n` into a line break).
const MACROS: &str = "%_install_langs de:en\\n%_excludedocs 1\\n%_netsharedpath /usr/share/tr/net";
/// The macros that file sets, as the reference passes them to rpm.
const MACRO_NAMES: [&str; 3] = ["_install_langs", "_excludedocs", "_netsharedpath"];

/// A spec file: name, `Requires` (which fix the install order), files written by
/// `%install` as `path → content` (an attribute before the path goes to `%files`:
/// `%lang(de) /usr/…`, `%doc /usr/…`), and more sections (scriptlets, triggers) as written.
fn spec(name: &str, requires: &[&str], files: &[(&str, &str)], more: &str) -> String {
    let mut install = String::new();
    let mut list = String::new();
    for (path, content) in files {
        let (attr, path) = match path.split_once(" /") {
            Some((attr, _)) => (format!("{attr} "), &path[attr.len() + 1..]),
            None => (String::new(), *path),
        };
        let dir = Path::new(path).parent().unwrap().display().to_string();
        // `%%`: rpmbuild expands macros in %install, and contents may name macros.
        let content = content.replace('%', "%%");
        install.push_str(&format!("mkdir -p %{{buildroot}}{dir}\nprintf '%%b\\n' '{content}' > %{{buildroot}}{path}\n"));
        list.push_str(&format!("{attr}{path}\n"));
    }
    let requires: String = requires.iter().map(|r| format!("Requires: {r}\n")).collect();
    format!(
        "Name: {name}\nVersion: 1\nRelease: 1\nSummary: fixture {name}\nLicense: MIT\nBuildArch: noarch\n{requires}\
         %description\nFixture.\n%install\n{install}\n%files\n{list}\n{more}\n"
    )
}

/// A scriptlet body appending one line to the log inside the root.
fn log(what: &str) -> String {
    format!("echo \"{what} $1 $2\" >> /{LOG}\n")
}

/// `base` (busybox, merged /usr, /var/log) and the packages of the three sets.
fn build_repo(dir: &Path) -> PathBuf {
    require_tool("busybox");
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let busybox = ["/usr/bin/busybox", "/bin/busybox"].into_iter().find(|p| Path::new(p).is_file()).expect("busybox-static");
    let base = format!(
        "Name: base\nVersion: 1\nRelease: 1\nSummary: fixture base\nLicense: MIT\nBuildArch: x86_64\nProvides: /bin/sh\n\
         %global debug_package %{{nil}}\n%description\nBusybox as /bin/sh in a merged-/usr root.\n%install\n\
         mkdir -p %{{buildroot}}/usr/bin %{{buildroot}}/var/log %{{buildroot}}/usr/share/locale/de %{{buildroot}}/usr/share/locale/fr\n\
         cp {busybox} %{{buildroot}}/usr/bin/busybox\nln -s busybox %{{buildroot}}/usr/bin/sh\nln -s usr/bin %{{buildroot}}/bin\n\
         %files\n/bin\n%dir /usr/bin\n/usr/bin/busybox\n/usr/bin/sh\n%dir /var/log\n%dir /usr/share/locale/de\n%dir /usr/share/locale/fr\n"
    );
    // The owner also has file triggers on the target's files, one above rpm's priority
    // bound (before %post) and one below (after %triggerin).
    let owner_triggers = |target: &str| {
        format!(
            "%pre\n{}%post\n{}%triggerprein -- {target}\n{}%triggerin -- {target} >= 1\n{}%triggerin -- base\n{}%triggerin -- {target} < 1\n{}%triggerun -- {target}\n{}%triggerpostun -- {target}\n{}\
             %filetriggerin -- /usr/share/{target}\n{}%filetriggerin -P 100 -- /usr/share/{target}\n{}",
            log("pre owner"),
            log("post owner"),
            log(&format!("triggerprein owner<-{target}")),
            log(&format!("triggerin owner<-{target}")),
            log("triggerin owner<-base"),
            log("never: version out of range"),
            log("never: triggerun"),
            log("never: triggerpostun"),
            log("filetriggerin upper"),
            log("filetriggerin lower"),
        )
    };
    let target_scripts = format!("%pre\n{}%post\n{}", log("pre target"), log("post target"));
    let texts = [
        ("base", base),
        // Owner first: `tgt1` requires `own1`, so own1's triggers wait for tgt1.
        ("own1", spec("own1", &["base"], &[("/usr/share/own1/f", "own1")], &owner_triggers("tgt1"))),
        ("tgt1", spec("tgt1", &["own1"], &[("/usr/share/tgt1/f", "tgt1")], &target_scripts)),
        // Target first: `own2` requires `tgt2`, so tgt2 is installed when own2 arrives.
        ("tgt2", spec("tgt2", &["base"], &[("/usr/share/tgt2/f", "tgt2")], &target_scripts)),
        ("own2", spec("own2", &["tgt2"], &[("/usr/share/own2/f", "own2")], &owner_triggers("tgt2"))),
        // The image's macros: a macro file, then packages with translations after it.
        ("langconf", spec("langconf", &["base"], &[("/usr/lib/rpm/macros.d/macros.langs", MACROS)], "")),
        (
            "tr",
            spec(
                "tr",
                &["langconf"],
                &[
                    ("/usr/share/tr/plain", "neutral"),
                    ("%lang(de) /usr/share/locale/de/tr.mo", "de"),
                    ("%lang(fr) /usr/share/locale/fr/tr.mo", "fr"),
                    ("%doc /usr/share/doc/tr/README", "doc"),
                    ("/usr/share/tr/net/shared", "on the share"),
                ],
                "",
            ),
        ),
        // Merged /usr: a package naming /bin/ux lands in /usr/bin/ux.
        ("ubin", spec("ubin", &["base"], &[("/bin/ux", "ux"), ("/usr/bin/uy", "uy")], "")),
        // The same file under both names, with different contents: a conflict.
        ("cbin", spec("cbin", &["base"], &[("/bin/cx", "one")], "")),
        ("cusr", spec("cusr", &["base"], &[("/usr/bin/cx", "two")], "")),
    ];
    let files: Vec<PathBuf> = texts
        .iter()
        .map(|(n, t)| {
            let f = specs.join(format!("{n}.spec"));
            std::fs::write(&f, t).unwrap();
            f
        })
        .collect();
    build_spec_files(dir, &files)
}

struct Env {
    dir: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let repo = build_repo(dir.path());
        let home = rpm_home(dir.path());
        Env { dir, repo, home }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn rpm(&self, name: &str) -> PathBuf {
        let arch = if name == "base" { "x86_64" } else { "noarch" };
        self.repo.join("Packages").join(format!("{name}-1-1.{arch}.rpm"))
    }
    /// strata compose of one image with `packages`; the unpacked root, or the failure.
    fn compose(&self, image: &str, packages: &[&str]) -> Result<PathBuf, String> {
        let spec = simple_spec(self.path(), "fix", &self.repo.display().to_string(), &[(image, packages)]);
        let store = self.path().join("store");
        let out = run(strata(&self.path().join("cache"))
            .env("STRATA_STAGING_DIR", self.path().join("staging"))
            .arg("compose")
            .arg(&spec)
            .arg("--store")
            .arg(&store)
            .args(["--json", "--image", image]));
        if !out.status.success() {
            return Err(stderr(&out));
        }
        let _: Value = serde_json::from_slice(&out.stdout).unwrap();
        Ok(umoci_unpack(&store, &format!("{image}:latest"), &self.path().join(format!("{image}-bundle"))))
    }
    /// The reference: rpm installs `packages` into a fresh root as one transaction.
    fn rpm_root(&self, name: &str, packages: &[&str]) -> PathBuf {
        let root = self.path().join(format!("rpm-{name}"));
        let rpms: Vec<PathBuf> = packages.iter().map(|p| self.rpm(p)).collect();
        rpm_install(&root, &self.home, &[], &rpms);
        root
    }
}

fn read_log(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join(LOG)).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn classic_triggers_fire_as_rpm_fires_them_in_both_orders() {
    require_tool("rpm");
    let env = Env::new();
    for (set, packages, expected) in [
        (
            "owner-first",
            ["base", "own1", "tgt1"],
            // own1 arrives after base: its own %triggerin on base ($1 = own1's count, $2 =
            // base's). tgt1 arrives: own1's %triggerprein before tgt1's %pre, tgt1 not yet
            // in the rpmdb ($2 = 0); %triggerin after tgt1's %post ($2 = 1).
            vec![
                "pre owner 1 ",
                "post owner 1 ",
                "triggerin owner<-base 1 1",
                "triggerprein owner<-tgt1 1 0",
                "pre target 1 ",
                "filetriggerin upper 0 ",
                "post target 1 ",
                "triggerin owner<-tgt1 1 1",
                "filetriggerin lower 0 ",
            ],
        ),
        (
            "target-first",
            ["base", "tgt2", "own2"],
            // own2 arrives with tgt2 installed: its own %triggerprein before its %pre, own2
            // not yet in the rpmdb ($1 = 0); its %triggerin on base and on tgt2 after
            // %post, in the header's trigger order (rpmbuild stores the one on base first).
            vec![
                "pre target 1 ",
                "post target 1 ",
                "triggerprein owner<-tgt2 0 1",
                "pre owner 1 ",
                "filetriggerin upper 0 ",
                "post owner 1 ",
                "triggerin owner<-base 1 1",
                "triggerin owner<-tgt2 1 1",
                "filetriggerin lower 0 ",
            ],
        ),
    ] {
        let ours = env.compose(set, &packages).unwrap_or_else(|e| panic!("strata compose {set}: {e}"));
        let theirs = env.rpm_root(set, &packages);
        assert_eq!(read_log(&ours), read_log(&theirs), "{set}: trigger log, strata vs rpm");
        assert_eq!(read_log(&theirs), expected, "{set}: rpm's own log is what this test expects");
        // rpm makes its scriptlets' temporary folder (%_tmppath) in the root.
        assert_same_install(set, &ours, &theirs, &env.home, &["var/tmp"]);
        // The rpmdb keeps every trigger as the package has it, %triggerun/%triggerpostun too.
        let owner = packages[1..].iter().find(|p| p.starts_with("own")).unwrap();
        let q = |root: &Path| stdout(&rpm_at(root, &env.home, &["-q", "--triggers", "--filetriggers", owner]));
        assert!(q(&ours).contains("triggerpostun scriptlet"), "{}", q(&ours));
        assert_eq!(q(&ours), q(&theirs), "{set}: rpm -q --triggers --filetriggers");
    }
}

#[test]
fn the_images_macro_files_filter_later_packages() {
    require_tool("rpm");
    let env = Env::new();
    let packages = ["base", "langconf", "tr"];
    let ours = env.compose("langs", &packages).unwrap_or_else(|e| panic!("strata compose: {e}"));
    assert!(ours.join("usr/share/locale/de/tr.mo").is_file() && !ours.join("usr/share/locale/fr/tr.mo").exists(), "fr filtered, de kept");
    assert!(!ours.join("usr/share/doc/tr/README").exists() && !ours.join("usr/share/tr/net/shared").exists(), "%_excludedocs, %_netsharedpath");
    assert!(ours.join("usr/share/tr/plain").is_file());

    // rpm --root reads only the host's macro files (rpmtsCreate expands %_install_langs
    // from them): one transaction installs every translation. rpm run *in* the image reads
    // the image's: the reference installs package by package in the same order, before
    // each one rpm itself reads the image's macro files as they stand then (`--macros`
    // with the host's path plus the image's, `--eval`; rpm 4.18 does not apply `--macros`
    // to a `--root` install, so the value goes in through `--define`).
    let plain = env.rpm_root("langs-one-transaction", &packages);
    assert!(plain.join("usr/share/locale/fr/tr.mo").is_file(), "rpm --root ignores the root's macro files");

    let showrc = run(Command::new("rpm").env("HOME", &env.home).arg("--showrc"));
    let host = stdout(&showrc).lines().find_map(|l| l.strip_prefix("Macro path: ").map(str::to_string)).expect("rpm --showrc names its macro path");
    let theirs = env.path().join("rpm-langs");
    for p in packages {
        let with_image = format!("{host}:{}/usr/lib/rpm/macros.d/macros.*", theirs.display());
        let mut defines = Vec::new();
        for name in MACRO_NAMES {
            let eval = run(Command::new("rpm").env("HOME", &env.home).args(["--macros", &with_image, "--eval", &format!("%{{?{name}}}")]));
            assert_ok("rpm --eval", &eval);
            let value = stdout(&eval).trim().to_string();
            if !value.is_empty() {
                defines.extend(["--define".to_string(), format!("{name} {value}")]);
            }
        }
        let extra: Vec<&str> = defines.iter().map(String::as_str).collect();
        rpm_install(&theirs, &env.home, &extra, &[env.rpm(p)]);
    }
    assert!(!theirs.join("usr/share/locale/fr/tr.mo").exists(), "rpm with the image's macros filters fr");
    assert!(!theirs.join("usr/share/doc/tr/README").exists() && !theirs.join("usr/share/tr/net/shared").exists());
    assert_same_install("langs", &ours, &theirs, &env.home, &[]);
    // Both rpmdbs know the file was left out on purpose.
    let states = rpm_at(&ours, &env.home, &["-q", "--qf", "[%{FILESTATES:fstate} %{FILENAMES}\\n]", "tr"]);
    let theirs_states = rpm_at(&theirs, &env.home, &["-q", "--qf", "[%{FILESTATES:fstate} %{FILENAMES}\\n]", "tr"]);
    assert_eq!(stdout(&states), stdout(&theirs_states), "file states (normal, not installed, net shared)");
    for want in ["not installed /usr/share/locale/fr/tr.mo", "not installed /usr/share/doc/tr/README", "net shared /usr/share/tr/net/shared"] {
        assert!(stdout(&states).contains(want), "{want}:\n{}", stdout(&states));
    }
}

#[test]
fn merged_usr_roots_land_bin_in_usr_bin_and_see_one_file() {
    require_tool("rpm");
    let env = Env::new();
    let packages = ["base", "ubin"];
    let ours = env.compose("usrmerge", &packages).unwrap_or_else(|e| panic!("strata compose: {e}"));
    let theirs = env.rpm_root("usrmerge", &packages);
    assert!(ours.join("bin").symlink_metadata().unwrap().file_type().is_symlink(), "/bin stays a link");
    assert_eq!(std::fs::read_to_string(ours.join("usr/bin/ux")).unwrap(), "ux\n");
    assert_same_install("usrmerge", &ours, &theirs, &env.home, &[]);
    // The layers carry /usr/bin/ux, never a bin/ux under the link.
    let mut listed = String::new();
    for blob in std::fs::read_dir(env.path().join("store/blobs/sha256")).unwrap() {
        let t = run(Command::new("tar").arg("-tzf").arg(blob.unwrap().path()));
        if t.status.success() {
            listed.push_str(&stdout(&t));
        }
    }
    assert!(listed.lines().any(|l| l.trim_start_matches("./") == "usr/bin/ux"), "no layer has usr/bin/ux:\n{listed}");
    assert!(!listed.lines().any(|l| l.trim_start_matches("./").starts_with("bin/")), "a layer writes below the /bin link:\n{listed}");
    assert!(entries(&ours, &[]).contains_key("usr/bin/ux"));
    let owner = rpm_at(&ours, &env.home, &["-qf", "/bin/ux"]);
    assert_eq!(stdout(&owner).trim(), "ubin-1-1.noarch", "the rpmdb keeps the package's own name for it");

    // /bin/cx and /usr/bin/cx are one file: rpm refuses the pair, and so does strata.
    let both = [env.rpm("base"), env.rpm("cbin"), env.rpm("cusr")];
    let root = env.path().join("rpm-conflict");
    std::fs::create_dir_all(&root).unwrap();
    assert_ok("rpm --initdb", &rpm_at(&root, &env.home, &["--initdb"]));
    let mut args = vec!["-i".to_string(), "--test".into(), "--nosignature".into()];
    args.extend(both.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rpm_says = rpm_at(&root, &env.home, &args);
    let rpm_err = assert_fails("rpm -i --test of cbin and cusr", &rpm_says);
    assert!(rpm_err.contains("conflicts"), "rpm: {rpm_err}");
    let err = env.compose("conflict", &["base", "cbin", "cusr"]).expect_err("strata must refuse the conflict");
    assert!(err.contains("/usr/bin/cx") && err.contains("cbin") && err.contains("cusr"), "strata: {err}");
}
