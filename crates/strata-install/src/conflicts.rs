//! File conflicts between the packages of one transaction, with rpm's rule: two packages
//! may share a path if both entries are the same kind and, for files, have the same digest
//! (for symlinks, the same target). Directories never conflict; `%ghost` entries neither.

use std::collections::HashMap;
use strata_package::{FileEntry, FileKind};

/// Every conflicting path, as a sentence naming both packages. `packages` pairs each
/// package's NEVRA with its file list.
pub fn find_conflicts(packages: &[(String, Vec<FileEntry>)]) -> Vec<String> {
    let mut owner: HashMap<&str, (usize, &FileEntry)> = HashMap::new();
    let mut out = Vec::new();
    for (p, (_, files)) in packages.iter().enumerate() {
        for f in files.iter().filter(|f| !f.flags.is_ghost()) {
            match owner.get(f.path.as_str()) {
                None => {
                    owner.insert(&f.path, (p, f));
                }
                Some(&(q, g)) if q != p && differs(f, g) => out.push(format!(
                    "file {} from {} conflicts with the file from {}",
                    f.path, packages[p].0, packages[q].0
                )),
                Some(_) => {}
            }
        }
    }
    out
}

fn differs(a: &FileEntry, b: &FileEntry) -> bool {
    if a.kind == FileKind::Directory && b.kind == FileKind::Directory {
        return false;
    }
    if a.kind != b.kind {
        return true;
    }
    match a.kind {
        FileKind::Symlink => a.link_target != b.link_target,
        FileKind::Regular => a.size != b.size || a.digest != b.digest,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_package::FileFlags;

    fn f(path: &str, kind: FileKind, digest: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind,
            mode: 0o100644,
            size: 1,
            user: "root".into(),
            group: "root".into(),
            mtime: 0,
            flags: FileFlags(0),
            digest: digest.into(),
            link_target: String::new(),
            caps: String::new(),
            lang: String::new(),
            device: 1,
            inode: 1,
            rdev: 0,
        }
    }

    #[test]
    fn different_content_conflicts_identical_does_not() {
        let a = ("a-1.x86_64".to_string(), vec![f("/usr", FileKind::Directory, ""), f("/etc/x", FileKind::Regular, "aa"), f("/etc/same", FileKind::Regular, "cc")]);
        let b = ("b-1.x86_64".to_string(), vec![f("/usr", FileKind::Directory, ""), f("/etc/x", FileKind::Regular, "bb"), f("/etc/same", FileKind::Regular, "cc")]);
        let c = conflicts_of(&[a, b]);
        assert_eq!(c, ["file /etc/x from b-1.x86_64 conflicts with the file from a-1.x86_64"]);
    }

    #[test]
    fn ghosts_never_conflict_but_kinds_do() {
        let mut ghost = f("/run/x", FileKind::Regular, "zz");
        ghost.flags = FileFlags(FileFlags::GHOST);
        let a = ("a".to_string(), vec![ghost, f("/k", FileKind::Directory, "")]);
        let b = ("b".to_string(), vec![f("/run/x", FileKind::Regular, "yy"), f("/k", FileKind::Regular, "yy")]);
        assert_eq!(conflicts_of(&[a, b]).len(), 1);
    }

    fn conflicts_of(p: &[(String, Vec<FileEntry>)]) -> Vec<String> {
        find_conflicts(p)
    }
}
