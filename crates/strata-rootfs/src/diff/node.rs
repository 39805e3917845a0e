//! Comparing an entry after a step with the same path before it.
//!
//! "Changed" means the layer must carry the entry: its type, permission bits, owner, image
//! xattrs, symlink target, device number, size, modification time or content differ. A
//! directory whose only difference is its mtime is not changed (the mtime moves whenever a
//! child is added or removed, and those children are in the diff themselves, or were
//! temporary or excluded); it still goes into the layer, with its new time, as the parent of
//! anything that changed below it.

use crate::fsx;
use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Dir,
    File,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

pub(crate) fn type_of(md: &Metadata) -> Type {
    let ft = md.file_type();
    if ft.is_dir() {
        Type::Dir
    } else if ft.is_symlink() {
        Type::Symlink
    } else if ft.is_char_device() {
        Type::Char
    } else if ft.is_block_device() {
        Type::Block
    } else if ft.is_fifo() {
        Type::Fifo
    } else if ft.is_socket() {
        Type::Socket
    } else {
        Type::File
    }
}

/// Whether the entry at `new` (metadata `nmd`) differs from the one at `old` (`omd`).
pub(crate) fn differs(old: &Path, omd: &Metadata, new: &Path, nmd: &Metadata) -> io::Result<bool> {
    let ty = type_of(nmd);
    if type_of(omd) != ty
        || omd.mode() & 0o7777 != nmd.mode() & 0o7777
        || omd.uid() != nmd.uid()
        || omd.gid() != nmd.gid()
    {
        return Ok(true);
    }
    if ty != Type::Dir && (omd.mtime(), omd.mtime_nsec()) != (nmd.mtime(), nmd.mtime_nsec()) {
        return Ok(true);
    }
    if xattrs(old)? != xattrs(new)? {
        return Ok(true);
    }
    Ok(match ty {
        Type::Dir | Type::Fifo | Type::Socket => false,
        Type::Char | Type::Block => omd.rdev() != nmd.rdev(),
        Type::Symlink => std::fs::read_link(old)? != std::fs::read_link(new)?,
        Type::File => omd.len() != nmd.len() || !same_content(old, new)?,
    })
}

fn xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    fsx::image_xattrs(path)
}

/// Byte-for-byte comparison; only reached when size and mtime already agree.
fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let mut ba = vec![0u8; 1 << 16];
    let mut bb = vec![0u8; 1 << 16];
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn content_is_compared_only_as_a_last_resort_and_then_exactly() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::write(&a, "same size 1").unwrap();
        fs::write(&b, "same size 2").unwrap();
        let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        for p in [&a, &b] {
            fs::File::options().write(true).open(p).unwrap().set_modified(when).unwrap();
        }
        let md = |p: &Path| fs::symlink_metadata(p).unwrap();
        assert!(differs(&a, &md(&a), &b, &md(&b)).unwrap(), "same size and mtime, other bytes");
        fs::write(&b, "same size 1").unwrap();
        fs::File::options().write(true).open(&b).unwrap().set_modified(when).unwrap();
        assert!(!differs(&a, &md(&a), &b, &md(&b)).unwrap());
        fs::set_permissions(&b, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        assert!(differs(&a, &md(&a), &b, &md(&b)).unwrap(), "mode");
    }

    #[test]
    fn directory_mtime_alone_is_no_change() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::File::open(&a).unwrap().set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        let md = |p: &Path| fs::symlink_metadata(p).unwrap();
        assert!(!differs(&a, &md(&a), &b, &md(&b)).unwrap());
    }
}
