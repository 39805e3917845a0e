//! Comparing an image root strata composed with the root `rpm --root DIR -i` produced from
//! the same packages: every entry's path, type, permissions, owner, link target, content
//! digest, capabilities and link count; `rpm -qa`; `rpm -Va` clean on both.
//!
//! Modification times are left out on purpose: directories rpm creates implicitly and
//! files scriptlets write get the wall clock on both sides. Package files' mtimes are
//! still checked, indirectly, by `rpm -Va` (its `T` column).

use super::{assert_ok, assert_same_tree, require_tool, run, stdout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One entry of a root, everything but its times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `dir`, `file`, `symlink`, `char`, `block`, `fifo`, `socket`.
    pub kind: &'static str,
    /// Permission bits with setuid/setgid/sticky.
    pub perms: u32,
    pub uid: u32,
    pub gid: u32,
    /// File: sha256 of the content; symlink: its target; device: `rdev N`; else empty.
    pub what: String,
    /// `security.capability`, hex; empty when none.
    pub caps: String,
    /// Hard link count of regular files (1 for the rest).
    pub nlink: u64,
}

/// Every entry below `root` by its path relative to the root (`usr/bin/x`), leaving out
/// the paths in `skip` and everything below them (`var/lib/rpm`: each side's rpmdb is
/// compared through `rpm -qa` instead of its bytes).
pub fn entries(root: &Path, skip: &[&str]) -> BTreeMap<String, Entry> {
    use sha2::Digest;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip.iter().any(|s| rel == *s || rel.starts_with(&format!("{s}/"))) {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let (kind, what) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", String::new())
            } else if ft.is_symlink() {
                ("symlink", std::fs::read_link(&p).unwrap().to_string_lossy().into_owned())
            } else if ft.is_file() {
                ("file", hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())))
            } else if ft.is_char_device() {
                ("char", format!("rdev {}", md.rdev()))
            } else if ft.is_block_device() {
                ("block", format!("rdev {}", md.rdev()))
            } else if ft.is_fifo() {
                ("fifo", String::new())
            } else {
                ("socket", String::new())
            };
            let mut buf = vec![0u8; 256];
            let caps = match rustix::fs::lgetxattr(&p, "security.capability", &mut buf) {
                Ok(n) => hex::encode(&buf[..n]),
                Err(_) => String::new(),
            };
            let nlink = if ft.is_file() { md.nlink() } else { 1 };
            out.insert(rel, Entry { kind, perms: md.mode() & 0o7777, uid: md.uid(), gid: md.gid(), what, caps, nlink });
        }
    }
    out
}

/// `rpm --root ROOT --dbpath /var/lib/rpm ARGS...` with `home`'s macros (see [`rpm_home`]).
pub fn rpm_at(root: &Path, home: &Path, args: &[&str]) -> Output {
    require_tool("rpm");
    run(Command::new("rpm").env("HOME", home).arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm"]).args(args))
}

/// The reference install: `rpm --root ROOT -i --nosignature EXTRA... RPMS...` as one
/// transaction into a fresh root (created here, its rpmdb initialised first). Returns
/// rpm's output (scriptlet output included) after asserting it succeeded.
#[track_caller]
pub fn rpm_install(root: &Path, home: &Path, extra: &[&str], rpms: &[PathBuf]) -> Output {
    std::fs::create_dir_all(root).unwrap();
    if !root.join("var/lib/rpm").exists() {
        assert_ok("rpm --initdb", &rpm_at(root, home, &["--initdb"]));
    }
    let mut args: Vec<&str> = vec!["-i", "--nosignature"];
    args.extend_from_slice(extra);
    let paths: Vec<String> = rpms.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = rpm_at(root, home, &args);
    assert_ok(&format!("rpm -i of {paths:?}"), &out);
    out
}

/// `rpm -qa` as `NAME-EPOCH:VERSION-RELEASE.ARCH` lines in rpmdb order (install order), not
/// sorted: two roots with equal lists installed the same packages in the same order.
pub fn rpm_qa_in_order(root: &Path, home: &Path) -> Vec<String> {
    let out = rpm_at(root, home, &["-qa", "--qf", "%{INSTALLTID} %{DBINSTANCE} %{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n"]);
    assert_ok("rpm -qa", &out);
    let mut rows: Vec<(u64, String)> = stdout(&out)
        .lines()
        .map(|l| {
            let mut w = l.splitn(3, ' ');
            let _tid = w.next();
            let instance: u64 = w.next().unwrap().parse().unwrap();
            (instance, w.next().unwrap().to_string())
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, n)| n).collect()
}

/// Panics unless `rpm -Va` reports nothing in `root`.
#[track_caller]
pub fn assert_verifies_clean(what: &str, root: &Path, home: &Path) {
    let va = rpm_at(root, home, &["-Va"]);
    assert!(va.status.success() && stdout(&va).trim().is_empty(), "{what}: rpm -Va is not clean ({}):\n{}{}", va.status, stdout(&va), super::stderr(&va));
}

/// The whole comparison: same entries (outside `skip`; the rpmdb folder is always left
/// out), same `rpm -qa` in the same order, `rpm -Va` clean on both. `home` comes from
/// [`rpm_home`] (rpm's database at /var/lib/rpm).
#[track_caller]
pub fn assert_same_install(what: &str, ours: &Path, theirs: &Path, home: &Path, skip: &[&str]) {
    let mut all_skip = vec!["var/lib/rpm"];
    all_skip.extend_from_slice(skip);
    assert_same_tree(&format!("{what} (strata vs rpm)"), &entries(ours, &all_skip), &entries(theirs, &all_skip));
    assert_eq!(rpm_qa_in_order(ours, home), rpm_qa_in_order(theirs, home), "{what}: rpm -qa (in install order) differs (strata, rpm)");
    assert_verifies_clean(&format!("{what} (strata)"), ours, home);
    assert_verifies_clean(&format!("{what} (rpm)"), theirs, home);
}

