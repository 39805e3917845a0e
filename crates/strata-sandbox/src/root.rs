//! Host-side handling of the image root: finding the program the way the chroot will, and
//! the mountpoints the sandbox needs, created only when missing and removed without trace.

use crate::Error;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs::{File, FileTimes};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Mountpoints the sandbox uses inside the root.
pub(crate) const MOUNTPOINTS: [&str; 2] = ["proc", "dev"];

/// Checks that `program` (absolute, inside the root) is a regular file there. Symlinks are
/// resolved with the root as `/`, so an absolute link never reaches the host's files.
pub(crate) fn find_program(root: &Path, program: &OsStr) -> Result<(), Error> {
    let not_found = || Error::NotFound {
        program: program.to_string_lossy().into_owned(),
        root: root.to_path_buf(),
    };
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("open image root {}", root.display()))(e.into()))?;
    let rel = Path::new(program)
        .strip_prefix("/")
        .unwrap_or(Path::new(program));
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(
        &dir,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        how,
    ) {
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
        // A kernel without openat2 (before 5.6): exec will report a missing program.
        Err(Errno::NOSYS) => Ok(()),
        Err(e) => Err(Error::io(format!(
            "look up {} in image root {}",
            program.display(),
            root.display()
        ))(e.into())),
    }
}

/// The mountpoints one run created, and the root directory's times to put back once they
/// are gone, so that the root's metadata shows no trace of the sandbox.
pub(crate) struct Mountpoints {
    root: PathBuf,
    created: Vec<PathBuf>,
    /// The root's (atime, mtime) before the sandbox touched it, and the mtime its own
    /// `mkdir` left: if the program did not change the root, the first pair goes back.
    times: Option<((SystemTime, SystemTime), SystemTime)>,
}

impl Mountpoints {
    pub(crate) fn prepare(root: &Path) -> Result<Mountpoints, Error> {
        let mut missing = Vec::new();
        for name in MOUNTPOINTS {
            let path = root.join(name);
            match path.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                // Mounting over a symlink would follow it, possibly out of the root.
                Ok(m) => {
                    let problem = format!(
                        "/{name} is a {:?}, not a directory; the sandbox mounts {name} there",
                        m.file_type()
                    );
                    return Err(Error::BadRoot {
                        root: root.to_path_buf(),
                        problem,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(path),
                Err(e) => return Err(Error::io(format!("stat {}", path.display()))(e)),
            }
        }
        let mut made = Mountpoints {
            root: root.to_path_buf(),
            created: Vec::new(),
            times: None,
        };
        if missing.is_empty() {
            return Ok(made);
        }
        let before = times(root).map_err(Error::io(format!("stat {}", root.display())))?;
        for path in missing {
            std::fs::create_dir(&path)
                .map_err(Error::io(format!("create mountpoint {}", path.display())))?;
            made.created.push(path);
        }
        let after = times(root).map_err(Error::io(format!("stat {}", root.display())))?;
        made.times = Some((before, after.1));
        Ok(made)
    }
}

impl Drop for Mountpoints {
    fn drop(&mut self) {
        let Some((before, ours)) = self.times else {
            return;
        };
        // Whatever times the program left on the root are the ones to keep; if it left the
        // root alone, those are the times from before the sandbox's own mkdir.
        let left = times(&self.root)
            .ok()
            .map(|now| if now.1 == ours { before } else { now });
        // The mounts died with the namespace; the directories are empty again unless the
        // program unmounted and filled them, and then they are its doing, kept.
        for path in &self.created {
            let _ = std::fs::remove_dir(path);
        }
        if let (Some((atime, mtime)), Ok(f)) = (left, File::open(&self.root)) {
            let _ = f.set_times(FileTimes::new().set_accessed(atime).set_modified(mtime));
        }
    }
}

fn times(path: &Path) -> std::io::Result<(SystemTime, SystemTime)> {
    let m = path.symlink_metadata()?;
    Ok((m.accessed()?, m.modified()?))
}
