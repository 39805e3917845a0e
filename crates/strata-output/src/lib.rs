//! Output paths of the command line (`save -o`, `rpm -o`, `--lock`, logs): one rule for all.
//!
//! - `-` is standard output.
//! - An absent path or a regular file is written to a temporary file beside it and renamed
//!   over it only when everything was written: a failed run leaves the old file as it was.
//! - A FIFO, a terminal, `/dev/null` or `/dev/full`, and `/dev/stdout`, `/dev/stderr` or
//!   `/dev/fd/N` (a descriptor of this process, whatever it is open on) are written through:
//!   they are streams, replacing them with a file is exactly what must never happen.
//! - Anything else is refused without touching it: a directory, a block device (a disk), a
//!   socket, other character devices (`/dev/mem`, `/dev/kmsg`, ...), other `/proc` files.
//!
//! Symlinks are followed to the final name, which is what gets replaced or written through;
//! the links themselves are left as they are.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An output being written; [`Output::commit`] makes it visible.
pub struct Output {
    inner: Inner,
    /// The path as the user gave it, for messages.
    shown: String,
}

enum Inner {
    /// Standard output or another descriptor of this process, or a FIFO or terminal opened
    /// for writing: bytes go straight through.
    Stream(File),
    /// A temporary file renamed over `dest` on commit.
    Replace { tmp: tempfile::NamedTempFile, dest: PathBuf, mode: u32 },
}

/// Where an output path leads, after following its symlinks.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// Written to a temporary file and renamed over this path (absent or a regular file).
    Replace(PathBuf),
    /// A descriptor of this process (`-`, `/dev/stdout`, `/dev/fd/N`).
    Descriptor(i32),
    /// A FIFO, terminal, `/dev/null` or `/dev/full`, opened and written through.
    Stream(PathBuf),
}

fn refuse(path: &Path, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to write to {}: {why}", path.display()))
}

/// What writing to `path` means; refuses what must not be written (see the module docs).
pub fn destination(path: &Path) -> io::Result<Destination> {
    if path.as_os_str() == "-" {
        return Ok(Destination::Descriptor(1));
    }
    let mut cur = std::path::absolute(path)?;
    for _ in 0..40 {
        // The directories on the way are resolved by the kernel (a `/dev/fd/1` passes through
        // the `/dev/fd` link); only the final name is looked at here, one link at a time.
        let (Some(parent), Some(name)) = (cur.parent(), cur.file_name()) else {
            return Err(refuse(path, "it is a directory; give a file name"));
        };
        match std::fs::canonicalize(parent) {
            Ok(p) => cur = p.join(name),
            // The temporary file cannot be made there either; its error names the folder.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Replace(cur)),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", parent.display()))),
        }
        if let Some(fd) = own_descriptor(&cur) {
            return Ok(Destination::Descriptor(fd));
        }
        if cur.starts_with("/proc") || cur.starts_with("/sys") {
            return Err(refuse(path, &format!("{} is a kernel interface, not an output file", cur.display())));
        }
        let md = match std::fs::symlink_metadata(&cur) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Replace(cur)),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", cur.display()))),
        };
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&cur)?;
            cur = cur.parent().unwrap_or(Path::new("/")).join(target);
            continue;
        }
        let what = if cur.as_path() == path { String::new() } else { format!(" (where {} leads)", path.display()) };
        return if ft.is_file() {
            Ok(Destination::Replace(cur))
        } else if ft.is_fifo() || (ft.is_char_device() && stream_device(md.rdev())) {
            Ok(Destination::Stream(cur))
        } else if ft.is_dir() {
            Err(refuse(path, &format!("{}{what} is a directory; give a file name", cur.display())))
        } else if ft.is_block_device() {
            Err(refuse(path, &format!("{}{what} is a block device (a disk); an output is never written over one", cur.display())))
        } else if ft.is_char_device() {
            Err(refuse(path, &format!("{}{what} is a character device other than a terminal, /dev/null or /dev/full", cur.display())))
        } else {
            Err(refuse(path, &format!("{}{what} is a socket", cur.display())))
        };
    }
    Err(refuse(path, "too many levels of symbolic links"))
}

/// `/proc/self/fd/N` (what `/dev/stdout`, `/dev/stderr` and `/dev/fd/N` lead to): a
/// descriptor of this process, written as it is open (offset, append mode and all).
fn own_descriptor(p: &Path) -> Option<i32> {
    let parts: Vec<&str> = p.to_str()?.strip_prefix("/proc/")?.split('/').collect();
    let (pid, n) = match parts.as_slice() {
        [pid, "fd", n] | [pid, "task", _, "fd", n] => (*pid, *n),
        _ => return None,
    };
    let ours = pid == "self" || pid == "thread-self" || pid.parse::<u32>().ok() == Some(std::process::id());
    n.parse::<i32>().ok().filter(|_| ours)
}

/// Terminals (majors 4, 5 and the pseudo-terminals 136–143) and the memory devices
/// `/dev/null`, `/dev/zero` and `/dev/full` (1:3, 1:5, 1:7): streams a user may name as an
/// output. Other character devices (`/dev/mem`, `/dev/port`, `/dev/kmsg`...) are refused.
fn stream_device(rdev: u64) -> bool {
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    matches!(major, 4 | 5 | 136..=143) || (major == 1 && matches!(minor, 3 | 5 | 7))
}

impl Output {
    /// Opens `path` for writing by the rule of this crate. Nothing at `path` changes until
    /// [`Output::commit`] (except for streams, which are written as bytes come).
    pub fn create(path: &Path) -> io::Result<Output> {
        let shown = path.display().to_string();
        let inner = match destination(path)? {
            Destination::Descriptor(fd) => {
                // SAFETY: the descriptor is only duplicated, never closed or kept; one that is
                // not open makes the dup fail with EBADF, reported below.
                let fd = rustix::io::fcntl_dupfd_cloexec(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, 3)
                    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{shown}: descriptor {fd} is not open: {e}")))?;
                Inner::Stream(File::from(fd))
            }
            Destination::Stream(p) => {
                // No O_CREAT, no O_TRUNC: the FIFO or device must be there and stays itself.
                let f = std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", p.display())))?;
                Inner::Stream(f)
            }
            Destination::Replace(dest) => {
                let dir = dest.parent().unwrap_or(Path::new("/"));
                let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                // A replaced file keeps its permission bits; a new one is an ordinary 0644 file.
                let mode = std::fs::metadata(&dest).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
                if !dir.is_dir() {
                    return Err(io::Error::new(io::ErrorKind::NotFound, format!("cannot write {shown}: the folder {} does not exist (create it first)", dir.display())));
                }
                let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir).map_err(|e| {
                    // tempfile's own text repeats the path; the OS error says it all.
                    let base = e.raw_os_error().map(io::Error::from_raw_os_error).unwrap_or(e);
                    io::Error::new(base.kind(), format!("creating a temporary file in {}: {base}", dir.display()))
                })?;
                Inner::Replace { tmp, dest, mode }
            }
        };
        Ok(Output { inner, shown })
    }

    /// The path as given, for messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the output is a terminal (binary archives are refused there, as docker does).
    pub fn is_terminal(&self) -> bool {
        matches!(&self.inner, Inner::Stream(f) if std::io::IsTerminal::is_terminal(f))
    }

    /// Whether bytes reach their destination as they are written (nothing to undo on error).
    pub fn is_stream(&self) -> bool {
        matches!(self.inner, Inner::Stream(_))
    }

    /// Makes the output visible: the rename of a regular file (after its bytes are durable),
    /// or the last flush of a stream. Dropping an uncommitted output removes its temporary.
    pub fn commit(self) -> io::Result<()> {
        let shown = self.shown;
        let err = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what} {shown}: {e}"));
        match self.inner {
            Inner::Stream(mut f) => f.flush().map_err(|e| err("writing", e)),
            Inner::Replace { tmp, dest, mode } => {
                tmp.as_file().sync_all().map_err(|e| err("writing", e))?;
                std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(|e| err("writing", e))?;
                tmp.persist(&dest).map_err(|e| err("replacing", e.error))?;
                // The rename is durable once the directory is (best effort: some file
                // systems refuse fsync on a directory).
                if let Some(dir) = dest.parent() {
                    if let Ok(d) = File::open(dir) {
                        let _ = rustix::fs::fsync(d.as_fd());
                    }
                }
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Stream(f) => f.write(buf),
            Inner::Replace { tmp, .. } => tmp.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Stream(f) => f.flush(),
            Inner::Replace { tmp, .. } => tmp.flush(),
        }
    }
}

/// Writes `bytes` to `path` by the rule of this crate; errors name the path.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = Output::create(path)?;
    out.write_all(bytes).map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))?;
    out.commit()
}

/// An output directory (`rpm -o DIR`, `save --format oci -o DIR`): created when absent,
/// used when it is a directory (or a symlink to one), refused when it is anything else.
pub fn directory(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(md) => {
            let kind = kind_of(&md.file_type());
            Err(refuse(path, &format!("it is {kind}, not a directory")))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(refuse(path, "it is a symlink to nothing; create the directory it names, or give another"));
            }
            std::fs::create_dir_all(path).map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

fn kind_of(ft: &std::fs::FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a directory"
    }
}

#[cfg(test)]
mod tests;
