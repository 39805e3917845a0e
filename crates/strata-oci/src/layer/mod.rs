//! The deterministic layer tar writer.
//!
//! Callers add entries in any order. Metadata is kept in memory (a few hundred bytes per
//! entry); file *content* is never held in memory: either it is copied at once into an
//! anonymous spill file ([`LayerBuilder::add_file`], for content that arrives as a stream,
//! e.g. an RPM payload) or the builder remembers a path on disk and reads it when writing
//! ([`LayerBuilder::add_file_from_path`], for trees that already exist, e.g. an overlay
//! upper directory). [`LayerBuilder::finish`] then writes the tar sorted by path bytes, so the
//! output depends only on what was added, never on the order. Sorting bytewise puts every
//! directory before its contents, since a parent is a prefix of its children.
//!
//! The tar is normalised: ustar headers with PAX records only where needed, no atime/ctime,
//! device numbers zero, user-chosen uid/gid/uname/gname/mtime written as given. Every parent
//! directory is present: missing ones are added as `0755 root:root` at the builder's default
//! mtime. Callers writing a *diff* over lower layers should add parents with their real
//! metadata, because extractors apply a directory entry's metadata when they see it.
//!
//! Hardlinks: extractors need a link's target earlier in the tar, and sorting may put the
//! link first. So each group of hardlinked paths is rewritten to carry the content at its
//! smallest path and link every other path to that one — same files, any add order.

mod path;
mod tree;
pub use tree::{read_xattr, MtimePolicy};
#[cfg(test)]
pub(crate) mod tests;

pub use path::{OPAQUE_MARKER, WHITEOUT_PREFIX};

use crate::compress::Compression;
use crate::digest::Sha256Writer;
use crate::error::IoContext;
use crate::tarfmt::{self, Kind};
use crate::{Error, Result};
use oci_spec::image::{Descriptor, Digest, MediaType};
use path::{display, normalize_plain, parent};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The xattr holding file capabilities (binary `vfs_cap_data`), as rpm and tar store it.
pub const CAPABILITY_XATTR: &str = "security.capability";

/// Ownership, permissions, time and extended attributes of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// User and group names; empty means "numeric ids only".
    pub uname: String,
    pub gname: String,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes by name (e.g. `security.capability`), values are raw bytes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    /// `mode`, owned by root (0:0, no names), mtime 0, no xattrs.
    pub fn new(mode: u32) -> Self {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn names(mut self, uname: impl Into<String>, gname: impl Into<String>) -> Self {
        self.uname = uname.into();
        self.gname = gname.into();
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    pub fn xattr(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.xattrs.insert(name.into(), value.into());
        self
    }

    fn validate(&self, path: &[u8]) -> Result<()> {
        let bad = |reason: String| Error::InvalidEntry {
            path: display(path),
            reason,
        };
        if self.mode & !0o7777 != 0 {
            return Err(bad(format!("mode {:o} has bits outside 0o7777", self.mode)));
        }
        if self.uname.contains('\0') || self.gname.contains('\0') {
            return Err(bad("user or group name contains NUL".into()));
        }
        for name in self.xattrs.keys() {
            // PAX keys end at '='; records are newline-terminated by length, but a name with
            // NUL or '=' cannot round-trip through any extractor.
            if name.is_empty() || name.contains(['=', '\0', '\n']) {
                return Err(bad(format!("invalid xattr name {name:?}")));
            }
        }
        Ok(())
    }
}

/// Where a regular file's bytes come from when the tar is written.
#[derive(Debug)]
enum Source {
    /// At this offset in the spill file.
    Spill(u64),
    /// Read from this file on disk at write time.
    Path(PathBuf),
}

#[derive(Debug)]
enum Body {
    Dir,
    File {
        size: u64,
        source: Source,
    },
    Symlink(Vec<u8>),
    /// Link to another path in this layer (normalised).
    Hardlink(Vec<u8>),
    /// `.wh.NAME` or `.wh..wh..opq`: an empty file whose name carries the meaning.
    Whiteout,
    /// A device node or FIFO.
    Node(Node),
}

/// A device node or FIFO entry (ADD unpacks them from archives, as Docker does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
}

#[derive(Debug)]
struct Entry {
    meta: Meta,
    body: Body,
}

/// How [`LayerBuilder::finish`] writes the blob.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Compression threads; never changes the output bytes.
    pub threads: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What a finished layer is: both digests, sizes and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar (goes into the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the blob as written (goes into the manifest).
    pub digest: Digest,
    /// Size of the blob as written.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    pub media_type: MediaType,
}

impl LayerInfo {
    /// The manifest descriptor for this layer.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.size, self.digest.clone())
    }
}

/// Collects entries and writes them as a deterministic tar; see the module docs.
#[derive(Debug, Default)]
pub struct LayerBuilder {
    entries: BTreeMap<Vec<u8>, Entry>,
    spill: Option<BufWriter<File>>,
    spill_len: u64,
    spill_dir: Option<PathBuf>,
    default_mtime: u64,
}

impl LayerBuilder {
    /// A builder spilling file content to the system temporary directory.
    pub fn new() -> Self {
        LayerBuilder::default()
    }

    /// Spill file content into `dir` instead (e.g. on the same disk as the store, since
    /// layers can be larger than a tmpfs `/tmp`).
    pub fn with_spill_dir(dir: impl Into<PathBuf>) -> Self {
        LayerBuilder {
            spill_dir: Some(dir.into()),
            ..LayerBuilder::default()
        }
    }

    /// mtime for implicitly added parent directories and for whiteouts (default 0).
    pub fn set_default_mtime(&mut self, mtime: u64) {
        self.default_mtime = mtime;
    }

    /// Number of entries added so far (implicit parents not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, path: Vec<u8>, entry: Entry) -> Result<()> {
        entry.meta.validate(&path)?;
        if self.entries.contains_key(&path) {
            return Err(Error::LayerConflict {
                path: display(&path),
                reason: "added twice".into(),
            });
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Adds a directory.
    pub fn add_dir(&mut self, path: impl AsRef<[u8]>, meta: &Meta) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        self.insert(
            p,
            Entry {
                meta: meta.clone(),
                body: Body::Dir,
            },
        )
    }

    /// Adds a regular file whose `size` bytes are read from `content` now and kept in the
    /// spill file. The reader must yield exactly `size` bytes.
    pub fn add_file(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: &Meta,
        size: u64,
        content: impl Read,
    ) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        meta.validate(&p)?;
        if self.entries.contains_key(&p) {
            return Err(Error::LayerConflict {
                path: display(&p),
                reason: "added twice".into(),
            });
        }
        let offset = self.spill_len;
        let copied = self.spill_copy(&p, size, content)?;
        self.spill_len += copied;
        let body = Body::File {
            size,
            source: Source::Spill(offset),
        };
        self.insert(
            p,
            Entry {
                meta: meta.clone(),
                body,
            },
        )
    }

    /// Copies exactly `size` bytes into the spill file and checks the reader is then empty.
    fn spill_copy(&mut self, p: &[u8], size: u64, mut content: impl Read) -> Result<u64> {
        if self.spill.is_none() {
            let file = match &self.spill_dir {
                Some(dir) => tempfile::tempfile_in(dir),
                None => tempfile::tempfile(),
            }
            .ctx(|| "creating the layer spill file".into())?;
            self.spill = Some(BufWriter::with_capacity(1 << 20, file));
        }
        let Some(spill) = self.spill.as_mut() else {
            return Err(Error::io("layer spill file", io::Error::other("not open")));
        };
        let copied = io::copy(&mut (&mut content).take(size), spill)
            .ctx(|| format!("reading content of {}", display(p)))?;
        let mut extra = [0u8; 1];
        let more = content
            .read(&mut extra)
            .ctx(|| format!("reading content of {}", display(p)))?;
        if copied != size || more != 0 {
            // The bytes already copied stay in the spill file unreferenced; the builder
            // remains usable and the file is anonymous, so nothing leaks past it.
            return Err(Error::SizeMismatch {
                path: display(p),
                expected: size,
                actual: copied + more as u64,
            });
        }
        Ok(copied)
    }

    /// Adds a regular file whose content is read from `source` when the tar is written.
    /// Its size is taken now; if the file changes size before then, writing fails.
    pub fn add_file_from_path(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: &Meta,
        source: impl AsRef<Path>,
    ) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        let source = source.as_ref();
        let md = std::fs::metadata(source).ctx(|| format!("reading {}", source.display()))?;
        if !md.is_file() {
            return Err(Error::InvalidEntry {
                path: display(&p),
                reason: format!("{} is not a regular file", source.display()),
            });
        }
        let body = Body::File {
            size: md.len(),
            source: Source::Path(source.to_path_buf()),
        };
        self.insert(
            p,
            Entry {
                meta: meta.clone(),
                body,
            },
        )
    }

    /// Adds a symbolic link. The target is stored verbatim (it may be absolute: extractors
    /// resolve it inside the container root); it must be non-empty and free of NUL.
    pub fn add_symlink(
        &mut self,
        path: impl AsRef<[u8]>,
        meta: &Meta,
        target: impl AsRef<[u8]>,
    ) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        let target = target.as_ref();
        if target.is_empty() || target.contains(&0) {
            return Err(Error::InvalidEntry {
                path: display(&p),
                reason: "symlink target is empty or contains NUL".into(),
            });
        }
        self.insert(
            p,
            Entry {
                meta: meta.clone(),
                body: Body::Symlink(target.to_vec()),
            },
        )
    }

    /// Adds a device node or FIFO. A character device 0:0 is refused: it is how overlayfs
    /// marks a deletion, and extractors would read it as one.
    pub fn add_node(&mut self, path: impl AsRef<[u8]>, meta: &Meta, node: Node) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        if node == (Node::Char { major: 0, minor: 0 }) {
            return Err(Error::InvalidEntry { path: display(&p), reason: "character device 0:0 is an overlay whiteout, not a device".into() });
        }
        self.insert(p, Entry { meta: meta.clone(), body: Body::Node(node) })
    }

    /// Adds a hardlink to `target`, a regular file (or another hardlink) in this layer.
    /// Metadata is the target's, as for any hardlink.
    pub fn add_hardlink(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        let t = normalize_plain(target.as_ref())?;
        if p == t {
            return Err(Error::InvalidEntry {
                path: display(&p),
                reason: "hardlink to itself".into(),
            });
        }
        self.insert(
            p,
            Entry {
                meta: Meta::new(0),
                body: Body::Hardlink(t),
            },
        )
    }

    /// Adds a whiteout: `path` is deleted from the layers below.
    pub fn add_whiteout(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
        let p = normalize_plain(path.as_ref())?;
        let mut wh = parent(&p).map(|d| [d, b"/"].concat()).unwrap_or_default();
        wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
        wh.extend_from_slice(path::base_name(&p));
        self.insert(wh, self.whiteout_entry())
    }

    /// Marks directory `dir` opaque: its content in the layers below is hidden.
    pub fn add_opaque(&mut self, dir: impl AsRef<[u8]>) -> Result<()> {
        let mut p = normalize_plain(dir.as_ref())?;
        p.push(b'/');
        p.extend_from_slice(OPAQUE_MARKER.as_bytes());
        self.insert(p, self.whiteout_entry())
    }

    fn whiteout_entry(&self) -> Entry {
        Entry {
            meta: Meta::new(0).mtime(self.default_mtime),
            body: Body::Whiteout,
        }
    }

    /// Writes the layer to `out` — compressed as `opts` says — and returns its digests.
    /// Fails without writing a complete tar if the entries contradict each other (a path
    /// below a non-directory, a whiteout beside the path it deletes, a dangling hardlink).
    pub fn finish<W: Write>(mut self, out: W, opts: WriteOptions) -> Result<(W, LayerInfo)> {
        self.complete_parents()?;
        self.check_whiteouts()?;
        self.resolve_hardlinks()?;
        let spill = match self.spill.take() {
            Some(w) => Some(
                w.into_inner()
                    .map_err(|e| Error::io("flushing spill file", e.into_error()))?,
            ),
            None => None,
        };

        let blob = Sha256Writer::new(out);
        let compressor = opts
            .compression
            .writer(blob, opts.threads)
            .ctx(|| "starting compression".into())?;
        let mut tar = Sha256Writer::new(compressor);
        for (p, entry) in &self.entries {
            write_entry(&mut tar, p, entry, spill.as_ref())?;
        }
        tarfmt::write_end(&mut tar).ctx(|| "writing layer".into())?;
        let (compressor, diff_id, tar_size) = tar.finish();
        let blob = compressor.finish().ctx(|| "finishing compression".into())?;
        let (mut out, digest, size) = blob.finish();
        out.flush().ctx(|| "writing layer".into())?;
        let info = LayerInfo {
            diff_id,
            digest,
            size,
            tar_size,
            media_type: opts.compression.layer_media_type(),
        };
        Ok((out, info))
    }

    /// Adds every missing ancestor as a directory and refuses paths below non-directories.
    fn complete_parents(&mut self) -> Result<()> {
        let mut missing = BTreeSet::new();
        for p in self.entries.keys() {
            let mut cur = parent(p);
            while let Some(dir) = cur {
                match self.entries.get(dir) {
                    Some(Entry {
                        body: Body::Dir, ..
                    }) => {}
                    Some(_) => {
                        return Err(Error::LayerConflict {
                            path: display(p),
                            reason: format!("parent {} is not a directory", display(dir)),
                        })
                    }
                    None => {
                        missing.insert(dir.to_vec());
                    }
                }
                cur = parent(dir);
            }
        }
        for dir in missing {
            let meta = Meta::new(0o755).mtime(self.default_mtime);
            self.entries.insert(
                dir,
                Entry {
                    meta,
                    body: Body::Dir,
                },
            );
        }
        Ok(())
    }

    /// A layer that both deletes and creates a path is contradictory; refuse it.
    fn check_whiteouts(&self) -> Result<()> {
        for (p, e) in &self.entries {
            if !matches!(e.body, Body::Whiteout) {
                continue;
            }
            let base = path::base_name(p);
            if base == OPAQUE_MARKER.as_bytes() {
                continue;
            }
            let name = &base[WHITEOUT_PREFIX.len()..];
            let mut deleted = parent(p).map(|d| [d, b"/"].concat()).unwrap_or_default();
            deleted.extend_from_slice(name);
            if self.entries.contains_key(&deleted) {
                return Err(Error::LayerConflict {
                    path: display(&deleted),
                    reason: "both added and whited out in the same layer".into(),
                });
            }
        }
        Ok(())
    }

    /// Rewrites each hardlink group so the content sits at the group's smallest path.
    fn resolve_hardlinks(&mut self) -> Result<()> {
        // Map every hardlink to the regular file at the end of its chain.
        let mut groups: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for (p, e) in &self.entries {
            let Body::Hardlink(first) = &e.body else {
                continue;
            };
            let mut target = first;
            let mut hops = 0;
            loop {
                match self.entries.get(target).map(|t| &t.body) {
                    Some(Body::File { .. }) => break,
                    Some(Body::Hardlink(next)) if hops < self.entries.len() => {
                        target = next;
                        hops += 1;
                    }
                    _ => {
                        return Err(Error::LayerConflict {
                            path: display(p),
                            reason: format!(
                                "hardlink target {} is not a regular file in this layer",
                                display(first)
                            ),
                        })
                    }
                }
            }
            groups.entry(target.clone()).or_default().push(p.clone());
        }
        for (file, links) in groups {
            // BTreeMap iteration gave `links` in path order; the primary is the smallest.
            let primary = links.first().filter(|l| **l < file).cloned();
            let Some(primary) = primary else {
                for l in links {
                    if let Some(e) = self.entries.get_mut(&l) {
                        e.body = Body::Hardlink(file.clone());
                    }
                }
                continue;
            };
            // Move the content from `file` to `primary`; everyone else links to `primary`.
            let Some(file_entry) = self.entries.remove(&file) else {
                continue;
            };
            self.entries.insert(primary.clone(), file_entry);
            let link_meta = Meta::new(0);
            self.entries.insert(
                file,
                Entry {
                    meta: link_meta.clone(),
                    body: Body::Hardlink(primary.clone()),
                },
            );
            for l in links.into_iter().skip(1) {
                self.entries.insert(
                    l,
                    Entry {
                        meta: link_meta.clone(),
                        body: Body::Hardlink(primary.clone()),
                    },
                );
            }
        }
        // Hardlink headers carry the target's metadata, as GNU tar writes them.
        let metas: Vec<(Vec<u8>, Meta)> = self
            .entries
            .iter()
            .filter_map(|(p, e)| match &e.body {
                Body::Hardlink(t) => self.entries.get(t).map(|te| (p.clone(), te.meta.clone())),
                _ => None,
            })
            .collect();
        for (p, m) in metas {
            if let Some(e) = self.entries.get_mut(&p) {
                e.meta = m;
            }
        }
        Ok(())
    }
}

/// Writes one entry: header(s), content and padding.
fn write_entry(w: &mut impl Write, p: &[u8], e: &Entry, spill: Option<&File>) -> Result<()> {
    let ioerr = |err| Error::io(format!("writing {}", display(p)), err);
    let (kind, size, link): (Kind, u64, &[u8]) = match &e.body {
        Body::Dir => (Kind::Dir, 0, b""),
        Body::File { size, .. } => (Kind::File, *size, b""),
        Body::Symlink(t) => (Kind::Symlink, 0, t),
        Body::Hardlink(t) => (Kind::Hardlink, 0, t),
        Body::Whiteout => (Kind::File, 0, b""),
        Body::Node(Node::Char { major, minor }) => (Kind::Char(*major, *minor), 0, b""),
        Body::Node(Node::Block { major, minor }) => (Kind::Block(*major, *minor), 0, b""),
        Body::Node(Node::Fifo) => (Kind::Fifo, 0, b""),
    };
    let mut name = p.to_vec();
    if kind == Kind::Dir {
        name.push(b'/');
    }
    let xattrs: Vec<(String, Vec<u8>)> = e
        .meta
        .xattrs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let header = tarfmt::Header {
        path: &name,
        kind,
        mode: e.meta.mode,
        uid: e.meta.uid,
        gid: e.meta.gid,
        uname: e.meta.uname.as_bytes(),
        gname: e.meta.gname.as_bytes(),
        mtime: e.meta.mtime,
        size,
        link,
        xattrs: &xattrs,
    };
    tarfmt::write_header(w, &header).map_err(ioerr)?;
    if let Body::File { size, source } = &e.body {
        match source {
            Source::Spill(offset) => {
                let file = spill.ok_or_else(|| ioerr(io::Error::other("spill file missing")))?;
                copy_range(file, *offset, *size, w).map_err(ioerr)?;
            }
            Source::Path(src) => {
                let f = File::open(src).ctx(|| format!("opening {}", src.display()))?;
                let copied = io::copy(&mut f.take(*size), w).map_err(ioerr)?;
                let now = std::fs::metadata(src).map(|m| m.len()).unwrap_or(copied);
                if copied != *size || now != *size {
                    return Err(Error::SizeMismatch {
                        path: display(p),
                        expected: *size,
                        actual: if copied != *size { copied } else { now },
                    });
                }
            }
        }
        tarfmt::write_padding(w, *size).map_err(ioerr)?;
    }
    Ok(())
}

/// Copies `len` bytes at `offset` of `file` with positional reads (no shared cursor).
fn copy_range(file: &File, mut offset: u64, mut len: u64, w: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; (256 * 1024).min(len as usize).max(1)];
    while len > 0 {
        let n = buf.len().min(len as usize);
        file.read_exact_at(&mut buf[..n], offset)?;
        w.write_all(&buf[..n])?;
        offset += n as u64;
        len -= n as u64;
    }
    Ok(())
}
