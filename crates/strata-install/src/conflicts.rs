//! File conflicts between the packages of one transaction, with rpm's rule: two packages
//! may share a path if both entries are the same kind and, for files, have the same digest
//! (for symlinks, the same target). Directories never conflict; `%ghost` entries neither.
//!
//! Paths are compared where they land, as rpm's fingerprints compare them: a directory
//! symlink shipped by any package of the transaction (`/bin -> usr/bin` in a merged-/usr
//! root) is followed, so `/bin/x` and `/usr/bin/x` are one file.

use std::borrow::Cow;
use std::collections::HashMap;
use strata_package::{FileEntry, FileKind};

/// rpm's limit on symlinks followed in one lookup (the kernel's too).
const MAX_LINKS: usize = 40;

/// Every conflicting path, as a sentence naming both packages. `packages` pairs each
/// package's NEVRA with its file list.
pub fn find_conflicts(packages: &[(String, Vec<FileEntry>)]) -> Vec<String> {
    let links = Links::of(packages.iter().map(|(_, files)| files.as_slice()));
    let mut owner: HashMap<Cow<'_, str>, (usize, &FileEntry)> = HashMap::new();
    let mut out = Vec::new();
    for (p, (_, files)) in packages.iter().enumerate() {
        for f in files.iter().filter(|f| !f.flags.is_ghost()) {
            let key = links.resolve(&f.path);
            match owner.get(&key) {
                None => {
                    owner.insert(key, (p, f));
                }
                Some(&(q, g)) if q != p && differs(f, g) => {
                    let theirs = if g.path == f.path { String::new() } else { format!(" {}", g.path) };
                    let landing = if key == f.path.as_str() { String::new() } else { format!(" (which is {key} in this root)") };
                    out.push(format!("file {}{landing} from {} conflicts with the file{theirs} from {}", f.path, packages[p].0, packages[q].0))
                }
                Some(_) => {}
            }
        }
    }
    out
}

/// The symlinks a transaction's packages ship, for resolving the directories of paths.
pub struct Links<'a> {
    targets: HashMap<&'a str, &'a str>,
}

impl<'a> Links<'a> {
    pub fn of(lists: impl Iterator<Item = &'a [FileEntry]>) -> Links<'a> {
        let targets = lists.flatten().filter(|f| f.kind == FileKind::Symlink && !f.link_target.is_empty()).map(|f| (f.path.as_str(), f.link_target.as_str())).collect();
        Links { targets }
    }

    /// `path` with its directories resolved through the links (the last component is
    /// not followed); borrowed when no directory of it is a link, which is the usual case.
    pub fn resolve<'p>(&self, path: &'p str) -> Cow<'p, str> {
        if self.targets.is_empty() || !ancestors(path).any(|a| self.targets.contains_key(a)) {
            return Cow::Borrowed(path);
        }
        let Some((dir, name)) = path.rsplit_once('/') else { return Cow::Borrowed(path) };
        let mut parts: Vec<String> = Vec::new();
        let mut pending: Vec<String> = dir.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string).collect();
        let mut followed = 0;
        while let Some(comp) = pending.pop() {
            match comp.as_str() {
                "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                _ => {}
            }
            parts.push(comp);
            let here = format!("/{}", parts.join("/"));
            if let Some(target) = self.targets.get(here.as_str()) {
                followed += 1;
                if followed > MAX_LINKS {
                    return Cow::Borrowed(path); // a loop: rpm would fail to create it anyway
                }
                parts.pop();
                if target.starts_with('/') {
                    parts.clear();
                }
                pending.extend(target.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string));
            }
        }
        Cow::Owned(if parts.is_empty() { format!("/{name}") } else { format!("/{}/{name}", parts.join("/")) })
    }
}

/// `/a/b/c` → `/a/b`, `/a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut end = path.len();
    std::iter::from_fn(move || {
        let i = path[..end].rfind('/')?;
        end = i;
        (i > 0).then(|| &path[..i])
    })
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

    #[test]
    fn merged_usr_paths_are_one_file() {
        let mut bin = f("/bin", FileKind::Symlink, "");
        bin.link_target = "usr/bin".into();
        let mut lib = f("/lib64", FileKind::Symlink, "");
        lib.link_target = "/usr/lib/../lib64".into();
        let fs = ("filesystem".to_string(), vec![bin, lib, f("/usr/bin", FileKind::Directory, "")]);
        let a = ("a".to_string(), vec![f("/bin/x", FileKind::Regular, "aa"), f("/lib64/l", FileKind::Regular, "11")]);
        let b = ("b".to_string(), vec![f("/usr/bin/x", FileKind::Regular, "bb"), f("/usr/lib64/l", FileKind::Regular, "22")]);
        let c = conflicts_of(&[fs.clone(), a.clone(), b]);
        assert_eq!(c, ["file /usr/bin/x from b conflicts with the file /bin/x from a", "file /usr/lib64/l from b conflicts with the file /lib64/l from a"]);
        let same = ("c".to_string(), vec![f("/usr/bin/x", FileKind::Regular, "aa")]);
        assert!(conflicts_of(&[fs, a, same]).is_empty(), "identical files may be shared");
        let links = Links::of([].into_iter());
        assert!(matches!(links.resolve("/bin/x"), Cow::Borrowed(_)));
    }

    fn conflicts_of(p: &[(String, Vec<FileEntry>)]) -> Vec<String> {
        find_conflicts(p)
    }
}
