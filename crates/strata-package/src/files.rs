//! The file list of a package, one [`FileEntry`] per path, assembled from the header's
//! parallel arrays (`BASENAMES`/`DIRNAMES`/`DIRINDEXES`, `FILEMODES`, `FILEUSERNAME`, ...).

use crate::tags;
use crate::{Error, Package};
use strata_rpmdb::header::tag;

/// `FILEFLAGS` bits (rpm's `rpmfileAttrs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileFlags(pub u32);

impl FileFlags {
    pub const CONFIG: u32 = 1 << 0;
    pub const DOC: u32 = 1 << 1;
    pub const MISSINGOK: u32 = 1 << 3;
    pub const NOREPLACE: u32 = 1 << 4;
    pub const GHOST: u32 = 1 << 6;
    pub const LICENSE: u32 = 1 << 7;
    pub const README: u32 = 1 << 8;
    pub const ARTIFACT: u32 = 1 << 12;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    pub fn is_config(self) -> bool {
        self.has(Self::CONFIG)
    }
    pub fn is_doc(self) -> bool {
        self.has(Self::DOC)
    }
    pub fn is_ghost(self) -> bool {
        self.has(Self::GHOST)
    }
}

/// File type from the mode's `S_IFMT` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileKind {
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        Some(match mode & 0o170000 {
            0o100000 => FileKind::Regular,
            0o040000 => FileKind::Directory,
            0o120000 => FileKind::Symlink,
            0o020000 => FileKind::CharDevice,
            0o060000 => FileKind::BlockDevice,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            _ => return None,
        })
    }
}

/// Everything the header says about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path as rpm records it (`/usr/bin/bash`).
    pub path: String,
    pub kind: FileKind,
    /// Full `st_mode`, type bits included.
    pub mode: u32,
    pub size: u64,
    pub user: String,
    pub group: String,
    pub mtime: u32,
    pub flags: FileFlags,
    /// Hex digest (algorithm from `FILEDIGESTALGO`); empty for non-regular files.
    pub digest: String,
    pub link_target: String,
    /// Text capabilities (`cap_net_raw=p`), empty when none.
    pub caps: String,
    /// `FILELANGS` value, empty for language-neutral files.
    pub lang: String,
    /// Hardlink identity: files of one package with the same (device, inode) are one file.
    pub device: u32,
    pub inode: u32,
    pub rdev: u16,
}

impl FileEntry {
    /// Permission bits only (including setuid/setgid/sticky).
    pub fn perms(&self) -> u32 {
        self.mode & 0o7777
    }
}

impl Package {
    /// The package's files in header order (which is sorted by path; file states in the
    /// rpmdb follow the same order).
    pub fn files(&self) -> Result<Vec<FileEntry>, Error> {
        let h = self.header();
        let basenames = h.strings(tag::BASENAMES);
        let n = basenames.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let dirnames = h.strings(tag::DIRNAMES);
        let dirindexes = h.u32s(tag::DIRINDEXES);
        let modes = h.u16s(tags::FILEMODES);
        let sizes: Vec<u64> = match h.u64s(tags::LONGFILESIZES) {
            v if v.len() == n => v,
            _ => h.u32s(tags::FILESIZES).into_iter().map(u64::from).collect(),
        };
        let users = h.strings(tags::FILEUSERNAME);
        let groups = h.strings(tags::FILEGROUPNAME);
        let mtimes = h.u32s(tags::FILEMTIMES);
        let flags = h.u32s(tags::FILEFLAGS);
        let digests = h.strings(tags::FILEDIGESTS);
        let links = h.strings(tags::FILELINKTOS);
        let caps = h.strings(tags::FILECAPS);
        let langs = h.strings(tags::FILELANGS);
        let devices = h.u32s(tags::FILEDEVICES);
        let inodes = h.u32s(tags::FILEINODES);
        let rdevs = h.u16s(tags::FILERDEVS);
        for (what, len) in [
            ("DIRINDEXES", dirindexes.len()),
            ("FILEMODES", modes.len()),
            ("FILESIZES", sizes.len()),
            ("FILEUSERNAME", users.len()),
            ("FILEGROUPNAME", groups.len()),
            ("FILEMTIMES", mtimes.len()),
            ("FILEFLAGS", flags.len()),
        ] {
            if len != n {
                return Err(self.malformed(format!("{what} has {len} values for {n} files")));
            }
        }
        let opt = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let dir = dirnames
                .get(dirindexes[i] as usize)
                .ok_or_else(|| self.malformed(format!("file {i}: directory index out of range")))?;
            let mode = u32::from(modes[i]);
            let kind = FileKind::from_mode(mode)
                .ok_or_else(|| self.malformed(format!("{dir}{}: unknown file type in mode {mode:o}", basenames[i])))?;
            out.push(FileEntry {
                path: format!("{dir}{}", basenames[i]),
                kind,
                mode,
                size: sizes[i],
                user: users[i].clone(),
                group: groups[i].clone(),
                mtime: mtimes[i],
                flags: FileFlags(flags[i]),
                digest: opt(&digests, i),
                link_target: opt(&links, i),
                caps: opt(&caps, i),
                lang: opt(&langs, i),
                device: devices.get(i).copied().unwrap_or(0),
                inode: inodes.get(i).copied().unwrap_or(i as u32 + 1),
                rdev: rdevs.get(i).copied().unwrap_or(0),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::corpus_rpm;

    #[test]
    fn reads_modes_owners_caps_and_links_from_real_packages() {
        let ping = Package::open(&corpus_rpm("iputils-ping-")).unwrap();
        let files = ping.files().unwrap();
        let bin = files.iter().find(|f| f.path == "/bin/ping").unwrap();
        assert_eq!(bin.kind, FileKind::Regular);
        assert_eq!(bin.caps, "cap_net_raw=p");
        assert_eq!(bin.digest.len(), 64);

        let util = Package::open(&corpus_rpm("util-linux-")).unwrap();
        let su = util.files().unwrap().into_iter().find(|f| f.path == "/bin/su").unwrap();
        assert_eq!(su.perms(), 0o4755);
        assert_eq!((su.user.as_str(), su.group.as_str()), ("root", "root"));

        let dash = Package::open(&corpus_rpm("dash-")).unwrap();
        let sh = dash.files().unwrap().into_iter().find(|f| f.path == "/bin/sh").unwrap();
        assert_eq!(sh.kind, FileKind::Symlink);
        assert_eq!(sh.link_target, "dash");
    }

    #[test]
    fn marks_docs_configs_and_ghost_flags() {
        let bp = Package::open(&corpus_rpm("base-passwd-")).unwrap();
        let files = bp.files().unwrap();
        let passwd = files.iter().find(|f| f.path == "/etc/passwd").unwrap();
        assert!(passwd.flags.is_config());
        assert!(files.iter().any(|f| f.flags.is_doc()));
    }
}
