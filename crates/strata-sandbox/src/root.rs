//! Host-side handling of the image root: finding files the way the sandbox will see them,
//! and the mountpoints it needs, created only when missing and removed without trace.

use crate::Error;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fs::{File, FileTimes};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// The kernel's limit on symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

pub(crate) fn canonical_root(root: &Path) -> Result<PathBuf, Error> {
    let bad = |problem: String| Error::BadRoot {
        root: root.to_path_buf(),
        problem,
    };
    let canonical = std::fs::canonicalize(root).map_err(|e| bad(e.to_string()))?;
    if !canonical.is_dir() {
        return Err(bad("not a directory".into()));
    }
    if canonical.as_os_str().as_bytes().contains(&0) || canonical.to_str().is_none() {
        return Err(bad("the path must be UTF-8 without NUL bytes".into()));
    }
    Ok(canonical)
}

fn open_root(root: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("open image root {}", root.display()))(e.into()))
}

/// Opens `path` (absolute or relative, inside the root) with the root as `/`, so that no
/// symlink, absolute or `..`, leads out of it. `ENOSYS`: a kernel before 5.6.
fn open_in_root(root: &OwnedFd, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), how)
}

/// Checks that `program` (absolute, inside the root) is a regular file there.
pub(crate) fn find_program(root: &Path, program: &OsStr) -> Result<(), Error> {
    let not_found = || Error::NotFound {
        program: program.to_string_lossy().into_owned(),
        root: root.to_path_buf(),
    };
    let dir = open_root(root)?;
    match open_in_root(&dir, Path::new(program), OFlags::PATH) {
        Ok(fd) => {
            let st = rustix::fs::fstat(&fd)
                .map_err(|e| Error::io(format!("stat {}", program.display()))(e.into()))?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            {
                Ok(())
            } else {
                Err(not_found())
            }
        }
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Err(not_found()),
        // Exec will report a missing program.
        Err(Errno::NOSYS) => Ok(()),
        Err(e) => Err(Error::io(format!(
            "look up {} in image root {}",
            program.display(),
            root.display()
        ))(e.into())),
    }
}

/// Checks that the working directory exists in the root as a directory.
pub(crate) fn check_workdir(root: &Path, cwd: &OsStr) -> Result<(), Error> {
    let dir = open_root(root)?;
    let problem = match open_in_root(&dir, Path::new(cwd), OFlags::PATH | OFlags::DIRECTORY) {
        Ok(_) | Err(Errno::NOSYS) => return Ok(()),
        Err(Errno::NOENT) => "does not exist",
        Err(Errno::NOTDIR) => "is not a directory",
        Err(e) => return Err(Error::io(format!("look up {}", cwd.display()))(e.into())),
    };
    Err(Error::BadRoot {
        root: root.to_path_buf(),
        problem: format!("working directory {} {problem}", cwd.display()),
    })
}

/// The whole content of a file in the root, `None` if it does not exist.
pub(crate) fn read_in_root(root: &Path, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let dir = open_root(root).map_err(std::io::Error::other)?;
    let fd = match open_in_root(&dir, path, OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        // Without openat2 a plain open could follow a link out of the root: refuse.
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    File::from(fd).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// `path` inside the root with every symlink resolved, the root as `/` (so the result is
/// a path without links that stays inside), and how many of its leading components exist.
struct Resolved {
    components: Vec<OsString>,
    existing: usize,
}

fn resolve_in_root(root: &Path, path: &Path) -> Result<Resolved, String> {
    let mut todo: Vec<OsString> = Vec::new();
    let push_front = |todo: &mut Vec<OsString>, p: &Path| {
        // `todo` is a stack: its last element is the next component.
        let mut parts: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        parts.reverse();
        todo.extend(parts);
    };
    push_front(&mut todo, path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        done.push(c);
        let host = done.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        match host.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!("{}: too many levels of symlinks", path.display()));
                }
                let target = std::fs::read_link(&host).map_err(|e| e.to_string())?;
                done.pop();
                if target.is_absolute() {
                    done.clear();
                }
                push_front(&mut todo, &target);
            }
            Ok(m) if !m.is_dir() && !todo.is_empty() => {
                let at = Path::new("/").join(done.iter().collect::<PathBuf>());
                return Err(format!("{} is not a directory", at.display()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let existing = done.len() - 1;
                return finish_missing(done, todo, existing);
            }
            Err(e) => return Err(format!("stat {}: {e}", host.display())),
        }
    }
    let existing = done.len();
    Ok(Resolved {
        components: done,
        existing,
    })
}

/// Past the first missing component nothing exists, so no link can follow: the rest is
/// resolved lexically.
fn finish_missing(
    mut done: Vec<OsString>,
    mut todo: Vec<OsString>,
    existing: usize,
) -> Result<Resolved, String> {
    while let Some(c) = todo.pop() {
        if c == ".." {
            if done.len() <= existing {
                // `..` back into the existing part: it could be a link's parent; not a
                // path a mountpoint is ever given with.
                return Err("a path with .. after a missing directory".into());
            }
            done.pop();
        } else {
            done.push(c);
        }
    }
    Ok(Resolved {
        components: done,
        existing,
    })
}

/// What a mountpoint must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
}

/// A mountpoint the sandbox needs in the root.
#[derive(Clone, Debug)]
pub(crate) struct Want {
    /// Absolute inside the root: the sandbox's own, or a [`crate::Command::mount`]'s.
    pub(crate) path: Cow<'static, str>,
    pub(crate) kind: Kind,
    /// Whether symlinks on the way are followed (inside the root). `/proc`, `/dev` and
    /// `/sys` must be real directories; `/etc/resolv.conf` is often a link, and the
    /// program reading it reads the file it leads to, so that is where the mount goes.
    pub(crate) follow: bool,
}

/// A parent directory whose times go back once the sandbox's entries in it are gone.
struct Parent {
    path: PathBuf,
    /// (atime, mtime) before the sandbox touched it.
    before: (SystemTime, SystemTime),
    /// The mtime its own creations left: if the program did not change the directory, the
    /// times from before go back.
    ours: SystemTime,
}

/// The mountpoints one run created, removed again on drop with their parents' times put
/// back, so that the root's metadata shows no trace of the sandbox.
pub(crate) struct Mountpoints {
    /// In creation order, each with the mtime it was left with (files only).
    created: Vec<(PathBuf, Kind, Option<SystemTime>)>,
    parents: Vec<Parent>,
}

impl Mountpoints {
    /// Makes sure every wanted mountpoint exists in `root` and returns where each one is,
    /// as an absolute path inside the root without symlinks.
    pub(crate) fn prepare(
        root: &Path,
        wants: &[Want],
    ) -> Result<(Mountpoints, Vec<PathBuf>), Error> {
        let mut made = Mountpoints {
            created: Vec::new(),
            parents: Vec::new(),
        };
        let places: Result<Vec<PathBuf>, Error> =
            wants.iter().map(|want| made.place(root, want)).collect();
        // Also when a later mountpoint failed: what was made is removed on drop, and the
        // parents' times go back only if they are still the ones this left.
        for p in &mut made.parents {
            p.ours = times(&p.path)
                .map_err(Error::io(format!("stat {}", p.path.display())))?
                .1;
        }
        Ok((made, places?))
    }

    /// Whether this run made `host` (a path in the root on the host).
    pub(crate) fn made(&self, host: &Path) -> bool {
        self.created.iter().any(|(p, _, _)| p == host)
    }

    fn place(&mut self, root: &Path, want: &Want) -> Result<PathBuf, Error> {
        let bad = |problem: String| Error::BadRoot {
            root: root.to_path_buf(),
            problem,
        };
        let resolved = if want.follow {
            resolve_in_root(root, Path::new(want.path.as_ref())).map_err(bad)?
        } else {
            literal(root, want)?
        };
        let inside: PathBuf = resolved.components.iter().collect();
        let host = root.join(&inside);
        let n = resolved.components.len();
        if resolved.existing == n {
            let m = host
                .metadata()
                .map_err(Error::io(format!("stat {}", host.display())))?;
            let fits = match want.kind {
                Kind::Dir => m.is_dir(),
                Kind::File => m.is_file(),
            };
            if !fits {
                return Err(bad(format!(
                    "{} is a {}, not a {}; the sandbox mounts {} there",
                    Path::new("/").join(&inside).display(),
                    type_name(&m),
                    if want.kind == Kind::Dir {
                        "directory"
                    } else {
                        "regular file"
                    },
                    want.path
                )));
            }
        } else {
            self.create(root, &resolved, want.kind)?;
        }
        Ok(Path::new("/").join(inside))
    }

    fn create(&mut self, root: &Path, resolved: &Resolved, kind: Kind) -> Result<(), Error> {
        let n = resolved.components.len();
        let parent: PathBuf = resolved.components[..resolved.existing].iter().collect();
        let parent = root.join(parent);
        if !self.parents.iter().any(|p| p.path == parent) {
            let before = times(&parent).map_err(Error::io(format!("stat {}", parent.display())))?;
            self.parents.push(Parent {
                path: parent.clone(),
                before,
                ours: before.1,
            });
        }
        let mut path = parent;
        for (i, c) in resolved.components[resolved.existing..].iter().enumerate() {
            path.push(c);
            let last = resolved.existing + i + 1 == n;
            if last && kind == Kind::File {
                let f = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(Error::io(format!("create mountpoint {}", path.display())))?;
                let mtime = f.metadata().and_then(|m| m.modified()).ok();
                self.created.push((path.clone(), Kind::File, mtime));
            } else {
                std::fs::create_dir(&path)
                    .map_err(Error::io(format!("create mountpoint {}", path.display())))?;
                self.created.push((path.clone(), Kind::Dir, None));
            }
        }
        Ok(())
    }
}

/// `/proc`, `/dev`, `/sys`: the directory itself, never through a link (mounting on a
/// link would follow it, and these have no business being links).
fn literal(root: &Path, want: &Want) -> Result<Resolved, Error> {
    let name = want.path.trim_start_matches('/');
    let path = root.join(name);
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => Ok(Resolved {
            components: vec![name.into()],
            existing: 1,
        }),
        Ok(m) => Err(Error::BadRoot {
            root: root.to_path_buf(),
            problem: format!(
                "/{name} is a {}, not a directory; the sandbox mounts {name} there",
                type_name(&m)
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Resolved {
            components: vec![name.into()],
            existing: 0,
        }),
        Err(e) => Err(Error::io(format!("stat {}", path.display()))(e)),
    }
}

impl Drop for Mountpoints {
    fn drop(&mut self) {
        // Whatever times the program left on a directory are the ones to keep; if it left
        // the directory alone, those are the times from before the sandbox's own entries.
        let left: Vec<_> = self
            .parents
            .iter()
            .map(|p| {
                times(&p.path)
                    .ok()
                    .map(|now| if now.1 == p.ours { p.before } else { now })
            })
            .collect();
        // The mounts died with the sandbox's mount namespace. A directory the program
        // filled, or a file it wrote after unmounting what covered it, is its doing: kept.
        let mut kept = Vec::new();
        for (path, kind, mtime) in self.created.iter().rev() {
            let removed = match kind {
                Kind::Dir => std::fs::remove_dir(path).is_ok(),
                Kind::File => {
                    let untouched = path
                        .symlink_metadata()
                        .is_ok_and(|m| m.is_file() && m.len() == 0 && m.modified().ok() == *mtime);
                    untouched && std::fs::remove_file(path).is_ok()
                }
            };
            if !removed {
                kept.push(path.clone());
            }
        }
        for (p, left) in self.parents.iter().zip(left) {
            let keeps_ours = kept.iter().any(|k| k.parent() == Some(p.path.as_path()));
            let (Some((atime, mtime)), false) = (left, keeps_ours) else {
                continue;
            };
            if let Ok(f) = File::open(&p.path) {
                let _ = f.set_times(FileTimes::new().set_accessed(atime).set_modified(mtime));
            }
        }
    }
}

fn type_name(m: &std::fs::Metadata) -> &'static str {
    if m.is_dir() {
        "directory"
    } else if m.is_file() {
        "regular file"
    } else if m.file_type().is_symlink() {
        "symlink"
    } else {
        "special file"
    }
}

fn times(path: &Path) -> std::io::Result<(SystemTime, SystemTime)> {
    let m = path.symlink_metadata()?;
    Ok((m.accessed()?, m.modified()?))
}
