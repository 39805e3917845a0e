//! Tests on real directories, mounts and tarballs.
//!
//! Most need root (chown, mknod, `trusted.` xattrs, mounts). Without it a test prints a
//! note and passes, except in CI (`CI` set), where it fails saying why — the same rule as
//! strata-sandbox's tests.

mod cache;
mod extract;
mod hostile;
mod lowers;
mod roundtrip;
mod stage;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use strata_oci::compress::Compression;
use strata_oci::layer::{LayerBuilder, LayerInfo, WriteOptions};

pub(crate) fn have_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "strata-rootfs tests need root in CI (chown, mknod, overlay mounts)");
    eprintln!("skipped: needs root");
    false
}

/// A tar written byte by byte, so tests can say things no well-behaved writer would.
#[derive(Default)]
pub(crate) struct RawTar {
    out: Vec<u8>,
}

#[derive(Clone)]
pub(crate) struct E<'a> {
    pub name: &'a [u8],
    pub ty: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: &'a [u8],
    pub data: &'a [u8],
    pub dev: (u32, u32),
    pub pax: Vec<(String, Vec<u8>)>,
}

impl<'a> E<'a> {
    pub fn new(name: &'a [u8], ty: u8) -> Self {
        E { name, ty, mode: if ty == b'5' { 0o755 } else { 0o644 }, uid: 0, gid: 0, mtime: 1_000_000, link: b"", data: b"", dev: (0, 0), pax: Vec::new() }
    }
    pub fn file(name: &'a [u8], data: &'a [u8]) -> Self {
        E { data, ..E::new(name, b'0') }
    }
    pub fn dir(name: &'a [u8]) -> Self {
        E::new(name, b'5')
    }
    pub fn symlink(name: &'a [u8], target: &'a [u8]) -> Self {
        E { link: target, ..E::new(name, b'2') }
    }
    pub fn hardlink(name: &'a [u8], target: &'a [u8]) -> Self {
        E { link: target, ..E::new(name, b'1') }
    }
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }
    pub fn pax(mut self, key: &str, value: &[u8]) -> Self {
        self.pax.push((key.to_string(), value.to_vec()));
        self
    }
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body_len + 1;
    while len != body_len + len.to_string().len() {
        len = body_len + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl RawTar {
    fn block(&mut self, name: &[u8], ty: u8, e: &E<'_>, size: u64, link: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(e.mode);
        h.set_uid(e.uid.min(0o7777777));
        h.set_gid(e.gid.min(0o7777777));
        h.set_mtime(e.mtime);
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_device_major(e.dev.0).unwrap();
        h.set_device_minor(e.dev.1).unwrap();
        let u = h.as_ustar_mut().unwrap();
        u.name = [0; 100];
        u.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        u.linkname = [0; 100];
        u.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
    }

    fn data(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn add(&mut self, e: E<'_>) -> &mut Self {
        let mut pax = e.pax.clone();
        if e.name.len() > 100 {
            pax.push(("path".into(), e.name.to_vec()));
        }
        if e.link.len() > 100 {
            pax.push(("linkpath".into(), e.link.to_vec()));
        }
        if !pax.is_empty() {
            let body: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
            self.block(b"././@PaxHeader", b'x', &E::new(b"", b'x'), body.len() as u64, b"");
            self.data(&body);
        }
        self.block(e.name, e.ty, &e, e.data.len() as u64, e.link);
        self.data(e.data);
        self
    }

    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.out.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

pub(crate) fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    let mut w = c.writer(Vec::new(), 1).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub(crate) fn diff_id_of(data: &[u8]) -> strata_oci::oci_spec::image::Digest {
    strata_oci::sha256_hex_of(data)
}

/// A finished layer: bytes (gzip) and digests.
pub(crate) fn finish(layer: LayerBuilder) -> (Vec<u8>, LayerInfo) {
    layer.finish(Vec::new(), WriteOptions { compression: Compression::Gzip { level: 6 }, threads: 1 }).unwrap()
}

/// One entry of a tree as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Info {
    pub ty: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub nlink: u64,
    pub data: Option<Vec<u8>>,
    pub link: Option<String>,
    pub rdev: u64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every entry below `root` (not `root` itself), with the metadata an image carries.
pub(crate) fn scan(root: &Path) -> BTreeMap<String, Info> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let ty = if ft.is_dir() {
                'd'
            } else if ft.is_symlink() {
                'l'
            } else if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else if ft.is_fifo() {
                'p'
            } else {
                'f'
            };
            let xattrs = if ft.is_symlink() { BTreeMap::new() } else { crate::fsx::image_xattrs(&path).unwrap() };
            out.insert(
                rel,
                Info {
                    ty,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime: md.mtime(),
                    nlink: if ft.is_dir() { 0 } else { md.nlink() },
                    data: ft.is_file().then(|| fs::read(&path).unwrap()),
                    link: ft.is_symlink().then(|| fs::read_link(&path).unwrap().to_string_lossy().into_owned()),
                    rdev: md.rdev(),
                    xattrs,
                },
            );
            if ft.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Entry-by-entry comparison with a readable failure.
pub(crate) fn assert_same_tree(want: &BTreeMap<String, Info>, got: &BTreeMap<String, Info>) {
    let mut problems = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            None => problems.push(format!("missing {p}")),
            Some(g) if g != w => problems.push(format!("{p}:\n  want {w:?}\n  got  {g:?}")),
            _ => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        problems.push(format!("unexpected {p}"));
    }
    assert!(problems.is_empty(), "trees differ:\n{}", problems.join("\n"));
}

/// A valid `vfs_cap_data` (revision 2) granting CAP_NET_RAW.
pub(crate) const CAP_NET_RAW: [u8; 20] = [0x00, 0x00, 0x00, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
