//! The build context: the folder `strata build` is pointed at, seen through `.dockerignore`,
//! and the trees COPY reads from (the context, an earlier stage, an image) as one kind of
//! thing: a root directory whose paths never resolve outside it.

use crate::glob;
use crate::Error;
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use strata_dockerfile::{DockerIgnore, Walk};

/// A directory tree read with every path resolved inside it (`openat2(RESOLVE_IN_ROOT)`:
/// `..` and absolute symlinks stay in), optionally filtered by a `.dockerignore`.
pub(crate) struct SourceTree {
    pub dir: PathBuf,
    fd: OwnedFd,
    ignore: Option<DockerIgnore>,
    /// What the tree is, for messages: `the build context`, `stage builder`, ...
    pub what: String,
}

/// One entry below a tree, as COPY sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative to the tree, `/`-separated, no leading `/`.
    pub rel: String,
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    pub mtime: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink(String),
}

impl SourceTree {
    pub fn open(dir: &Path, ignore: Option<DockerIgnore>, what: &str) -> Result<SourceTree, Error> {
        let fd = rfs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| Error::Io(format!("opening {what} {}: {e}", dir.display())))?;
        Ok(SourceTree { dir: dir.to_path_buf(), fd, ignore, what: what.to_string() })
    }

    /// The build context at `dir`, with its `.dockerignore` if it has one.
    pub fn context(dir: &Path) -> Result<SourceTree, Error> {
        SourceTree::with_ignore(dir, "the build context")
    }

    /// A directory tree with its `.dockerignore` if it has one: the build context, or a
    /// `--build-context NAME=DIR`.
    pub fn with_ignore(dir: &Path, what: &str) -> Result<SourceTree, Error> {
        if !dir.is_dir() {
            return Err(Error::Context(format!("{} is not a directory", dir.display())));
        }
        let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(text) => Some(DockerIgnore::parse(&text).map_err(|e| Error::Context(format!("{}/{e}", dir.display())))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io(format!("reading {}/.dockerignore: {e}", dir.display()))),
        };
        SourceTree::open(dir, ignore, what)
    }

    fn resolve(&self, rel: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let rel = if rel.is_empty() { "." } else { rel };
        rfs::openat2(&self.fd, rel, flags | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS)
    }

    fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && self.ignore.as_ref().is_some_and(|i| i.is_excluded(rel))
    }

    /// The entry at `rel` (a final symlink not followed), unless missing or ignored.
    pub fn entry(&self, rel: &str) -> Result<Option<Entry>, Error> {
        if self.excluded(rel) {
            return Ok(None);
        }
        self.stat(rel)
    }

    /// The entry at `rel` whether ignored or not.
    fn stat(&self, rel: &str) -> Result<Option<Entry>, Error> {
        let fd = match self.resolve(rel, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(Error::Io(format!("{} in {}: {e}", rel, self.what))),
        };
        let st = rfs::fstat(&fd).map_err(|e| Error::Io(format!("{rel}: {e}")))?;
        let kind = match rfs::FileType::from_raw_mode(st.st_mode) {
            rfs::FileType::RegularFile => Kind::File,
            rfs::FileType::Directory => Kind::Dir,
            rfs::FileType::Symlink => {
                let target = rfs::readlinkat(&fd, "", Vec::new()).map_err(|e| Error::Io(format!("{rel}: {e}")))?;
                Kind::Symlink(target.to_string_lossy().into_owned())
            }
            _ => return Err(Error::Context(format!("{rel} in {} is a device, FIFO or socket, which COPY does not take", self.what))),
        };
        Ok(Some(Entry { rel: rel.to_string(), kind, mode: st.st_mode & 0o7777, size: st.st_size as u64, mtime: st.st_mtime }))
    }

    /// `rel` with a final symlink followed inside the tree (COPY of a link copies what it
    /// names, as BuildKit does for the source path itself).
    pub fn followed(&self, rel: &str) -> Result<Option<Entry>, Error> {
        let mut cur = rel.to_string();
        for _ in 0..40 {
            match self.entry(&cur)? {
                Some(Entry { kind: Kind::Symlink(target), .. }) => {
                    let base = if target.starts_with('/') { String::new() } else { cur.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default() };
                    cur = clean_inside(&format!("{base}/{target}"));
                }
                other => return Ok(other),
            }
        }
        Err(Error::Context(format!("{rel} in {}: too many levels of symlinks", self.what)))
    }

    /// The entries directly below directory `rel`, sorted, ignored ones left out.
    pub fn children(&self, rel: &str) -> Result<Vec<Entry>, Error> {
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW).map_err(|e| Error::Io(format!("{rel} in {}: {e}", self.what)))?;
        let mut names: Vec<String> = Vec::new();
        for ent in rfs::Dir::read_from(&fd).map_err(|e| Error::Io(format!("{rel}: {e}")))? {
            let ent = ent.map_err(|e| Error::Io(format!("{rel}: {e}")))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let child = if rel.is_empty() { n } else { format!("{rel}/{n}") };
            if let Some(e) = self.entry(&child)? {
                out.push(e);
            } else if self.ignore.as_ref().is_some_and(|i| matches!(i.walk(&child, true), Walk::Descend)) {
                // An excluded directory with an exception below it: what the exception keeps
                // is still there, under a directory that carries its own metadata.
                if let Some(e @ Entry { kind: Kind::Dir, .. }) = self.stat(&child)? {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Opens a regular file for reading.
    pub fn open_file(&self, rel: &str) -> Result<std::fs::File, Error> {
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::NOFOLLOW).map_err(|e| Error::Io(format!("{rel} in {}: {e}", self.what)))?;
        Ok(std::fs::File::from(fd))
    }

    /// A file's `security.capability`, if it has one.
    pub fn caps(&self, rel: &str) -> Option<Vec<u8>> {
        let fd = self.resolve(rel, OFlags::PATH | OFlags::NOFOLLOW).ok()?;
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        strata_oci::layer::read_xattr(Path::new(&path), strata_oci::layer::CAPABILITY_XATTR).ok().flatten()
    }

    /// The paths a COPY source names: `pattern` cleaned (it may not leave the tree), with
    /// wildcards expanded among the entries at that depth. Never empty.
    pub fn sources(&self, pattern: &str) -> Result<Vec<String>, Error> {
        let clean = clean_source(pattern).ok_or_else(|| Error::Context(format!("COPY source {pattern:?} is outside {}", self.what)))?;
        if !glob::has_wildcards(&clean) {
            return match self.followed(&clean)? {
                Some(_) => Ok(vec![clean]),
                None => Err(Error::SourceNotFound { path: pattern.to_string(), tree: self.what.clone(), dir: self.dir.clone() }),
            };
        }
        let depth = clean.split('/').count();
        let mut found = Vec::new();
        let mut todo = vec![(String::new(), 0usize)];
        while let Some((dir, d)) = todo.pop() {
            for e in self.children(&dir)? {
                let prefix_ok = glob::matches(&clean.split('/').take(d + 1).collect::<Vec<_>>().join("/"), &e.rel);
                if !prefix_ok {
                    continue;
                }
                if d + 1 == depth {
                    found.push(e.rel);
                } else if e.kind == Kind::Dir {
                    todo.push((e.rel, d + 1));
                }
            }
        }
        found.sort();
        if found.is_empty() {
            return Err(Error::SourceNotFound { path: pattern.to_string(), tree: self.what.clone(), dir: self.dir.clone() });
        }
        Ok(found)
    }

    /// Digest of everything COPY would take from `rel`: paths, types, modes, link targets and
    /// file contents (not times or owners, as Docker's cache does).
    pub fn digest(&self, rel: &str) -> Result<String, Error> {
        let mut h = Sha256::new();
        let Some(top) = self.followed(rel)? else {
            return Err(Error::SourceNotFound { path: rel.to_string(), tree: self.what.clone(), dir: self.dir.clone() });
        };
        let mut todo = vec![(top, String::new())];
        while let Some((e, name)) = todo.pop() {
            match &e.kind {
                Kind::File => {
                    h.update(format!("f {name} {:o} {}\n", e.mode, e.size).as_bytes());
                    let mut f = self.open_file(&e.rel)?;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = f.read(&mut buf).map_err(|err| Error::Io(format!("reading {}: {err}", e.rel)))?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                }
                Kind::Symlink(t) => h.update(format!("l {name} {t}\n").as_bytes()),
                Kind::Dir => {
                    h.update(format!("d {name} {:o}\n", e.mode).as_bytes());
                    let mut kids = self.children(&e.rel)?;
                    kids.reverse();
                    for k in kids {
                        let base = k.rel.rsplit('/').next().unwrap_or_default().to_string();
                        let child_name = if name.is_empty() { base } else { format!("{name}/{base}") };
                        todo.push((k, child_name));
                    }
                }
            }
        }
        Ok(format!("sha256:{}", hex::encode(h.finalize())))
    }
}

/// A source path relative to its tree: leading `/` and `./` dropped, `.` components removed,
/// `..` applied; `None` when `..` would leave the tree.
pub(crate) fn clean_source(pattern: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in pattern.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Like [`clean_source`] but `..` stops at the root, as a symlink inside a root resolves.
fn clean_inside(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)], ignore: Option<&str>) -> (tempfile::TempDir, SourceTree) {
        let d = tempfile::tempdir().unwrap();
        for (p, content) in files {
            let path = d.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        if let Some(i) = ignore {
            std::fs::write(d.path().join(".dockerignore"), i).unwrap();
        }
        let t = SourceTree::context(d.path()).unwrap();
        (d, t)
    }

    #[test]
    fn sources_expand_wildcards_and_never_leave_the_context() {
        let (_d, t) = tree(&[("a.txt", "1"), ("b.txt", "2"), ("src/x.rs", "x"), ("src/y.rs", "y"), ("secret.txt", "s")], Some("secret.txt\n"));
        assert_eq!(t.sources("*.txt").unwrap(), ["a.txt", "b.txt"], "secret.txt is ignored");
        assert_eq!(t.sources("src/*.rs").unwrap(), ["src/x.rs", "src/y.rs"]);
        assert_eq!(t.sources("./src/../a.txt").unwrap(), ["a.txt"]);
        assert_eq!(t.sources("/a.txt").unwrap(), ["a.txt"]);
        assert!(matches!(t.sources("../etc/passwd"), Err(Error::Context(m)) if m.contains("outside")));
        let e = t.sources("secret.txt").unwrap_err().to_string();
        assert!(e.contains("secret.txt") && e.contains("not found"), "{e}");
        assert!(t.sources("nothing*").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_tree() {
        let (d, t) = tree(&[("real/f", "data")], None);
        std::os::unix::fs::symlink("/real/f", d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("escape")).unwrap();
        assert_eq!(t.followed("abs").unwrap().unwrap().rel, "real/f");
        assert_eq!(t.followed("escape").unwrap(), None, "resolves to CONTEXT/etc/passwd, which is not there");
    }

    #[test]
    fn digest_follows_content_not_times() {
        let (d, t) = tree(&[("dir/a", "1"), ("dir/b", "2")], None);
        let before = t.digest("dir").unwrap();
        let f = std::fs::File::options().write(true).open(d.path().join("dir/a")).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(t.digest("dir").unwrap(), before);
        std::fs::write(d.path().join("dir/b"), "3").unwrap();
        assert_ne!(t.digest("dir").unwrap(), before);
    }
}
