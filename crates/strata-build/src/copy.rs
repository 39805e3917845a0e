//! COPY and ADD into a stage's root: sources from a tree (the context or another image),
//! heredoc files, local archives unpacked, URLs downloaded. Every write resolves inside the
//! stage root (`strata-install`'s `RootFs`), so neither a symlink in the image nor one in
//! the sources can make a copy land outside it.

use crate::context::{Kind, SourceTree};
use crate::Error;
use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use strata_install::rootfs::{Attrs, RootFs};

/// Owner, mode and time rules of one COPY/ADD.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyOpts {
    /// `--chown` resolved in the stage root; 0:0 without it, as Docker does.
    pub uid: u32,
    pub gid: u32,
    /// `--chmod`: replaces the permission bits of every copied file and directory.
    pub chmod: Option<u32>,
    /// Time for entries that have none of their own (heredocs, downloads).
    pub now: u32,
}

impl CopyOpts {
    fn attrs(&self, mode: u32, mtime: i64, caps: Option<Vec<u8>>) -> Attrs {
        Attrs { uid: self.uid, gid: self.gid, perms: self.chmod.unwrap_or(mode & 0o7777), mtime: mtime.clamp(0, i64::from(u32::MAX)) as u32, caps }
    }
}

/// The image-absolute destination: relative ones are under WORKDIR; a trailing `/` (or `.`)
/// kept, since it means "into this directory".
pub(crate) fn destination(dest: &str, workdir: &str) -> String {
    let dir_like = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') { dest.to_string() } else { format!("{}/{dest}", workdir.trim_end_matches('/')) };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if dir_like && out != "/" {
        out.push('/');
    }
    out
}

/// `path` (image-absolute) with every symlink on the way followed inside the stage root, a
/// final one included, even when its target does not exist yet: what Docker's builders do
/// (BuildKit resolves COPY and WORKDIR destinations with `fs.RootPath`). COPY or WORKDIR
/// through `/link -> /data` then writes into `/data`, created if missing, instead of
/// replacing the link with a directory. `..` stops at `/`, so the result stays in the root.
pub(crate) fn in_root(view: &SourceTree, path: &str) -> Result<String, Error> {
    let parts = |p: &str| p.split('/').filter(|c| !c.is_empty() && *c != ".").rev().map(String::from).collect::<Vec<_>>();
    let mut todo = parts(path);
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let cand = if done.is_empty() { c.clone() } else { format!("{}/{c}", done.join("/")) };
        match view.entry(&cand)? {
            Some(crate::context::Entry { kind: Kind::Symlink(target), .. }) => {
                hops += 1;
                if hops > 40 {
                    return Err(Error::Dockerfile(format!("{path}: too many levels of symbolic links in the image")));
                }
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(parts(&target));
            }
            _ => done.push(c),
        }
    }
    Ok(format!("/{}", done.join("/")))
}

/// A COPY/ADD destination resolved by [`in_root`], keeping the trailing `/` that means "into".
fn resolved_dest(view: &SourceTree, dest: &str) -> Result<String, Error> {
    let r = in_root(view, dest)?;
    Ok(if dest.ends_with('/') && r != "/" { format!("{r}/") } else { r })
}

fn is_dir_in(root: &SourceTree, path: &str) -> Result<bool, Error> {
    Ok(matches!(root.followed(path.trim_matches('/'))?, Some(e) if e.kind == Kind::Dir))
}

/// Creates the missing directories leading to `path` (not `path` itself) as COPY's owner,
/// as BuildKit and buildah do for a `--chown` copy into a new place.
fn make_parents(view: &SourceTree, fs: &mut RootFs, path: &str, opts: &CopyOpts) -> Result<(), Error> {
    let mut cur = String::new();
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        cur.push('/');
        cur.push_str(c);
        if view.followed(cur.trim_start_matches('/'))?.is_none() {
            fs.dir(&cur, &opts.attrs(0o755, i64::from(opts.now), None))?;
        }
    }
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Copies `sources` (paths in `tree`, already expanded) to `dest` (image-absolute, from
/// [`destination`]) in `root`, as Docker does: a directory's contents go into `dest`; a
/// file goes to `dest` itself unless `dest` is a directory (existing, or written with a
/// trailing `/`); several sources need a directory `dest`.
pub(crate) fn copy_sources(root: &Path, tree: &SourceTree, sources: &[String], dest: &str, opts: &CopyOpts) -> Result<(), Error> {
    let view = SourceTree::open(root, None, "the stage")?;
    let dest = &resolved_dest(&view, dest)?;
    let into_dir = dest.ends_with('/') || is_dir_in(&view, dest)?;
    if sources.len() > 1 && !into_dir {
        return Err(Error::Dockerfile(format!("when copying several sources ({}), the destination {dest} must be a directory ending in /", sources.join(", "))));
    }
    let mut fs = RootFs::open(root)?;
    for src in sources {
        let Some(top) = tree.followed(src)? else {
            return Err(Error::SourceNotFound { path: src.clone(), tree: tree.what.clone(), dir: tree.dir.clone() });
        };
        match top.kind {
            Kind::Dir => {
                let target = dest.trim_end_matches('/');
                if target.is_empty() {
                    copy_children(&mut fs, tree, &top.rel, "", opts)?;
                } else {
                    if !is_dir_in(&view, target)? {
                        make_parents(&view, &mut fs, target, opts)?;
                        fs.dir(target, &opts.attrs(top.mode, top.mtime, None))?;
                    }
                    copy_children(&mut fs, tree, &top.rel, target, opts)?;
                }
            }
            Kind::File => {
                let base = src.rsplit('/').next().unwrap_or(src);
                let target = if into_dir { join(dest, base) } else { dest.to_string() };
                make_parents(&view, &mut fs, &target, opts)?;
                copy_file(&mut fs, tree, &top.rel, &target, top.mode, top.mtime, opts)?;
            }
            Kind::Symlink(_) => unreachable!("followed() resolves symlinks"),
        }
    }
    Ok(())
}

fn copy_children(fs: &mut RootFs, tree: &SourceTree, from: &str, to: &str, opts: &CopyOpts) -> Result<(), Error> {
    for e in tree.children(from)? {
        let name = e.rel.rsplit('/').next().unwrap_or(&e.rel).to_string();
        let target = join(to, &name);
        match &e.kind {
            Kind::File => copy_file(fs, tree, &e.rel, &target, e.mode, e.mtime, opts)?,
            Kind::Symlink(t) => fs.symlink(&target, t, &opts.attrs(0o777, e.mtime, None))?,
            Kind::Dir => {
                fs.dir(&target, &opts.attrs(e.mode, e.mtime, None))?;
                copy_children(fs, tree, &e.rel, &target, opts)?;
            }
        }
    }
    Ok(())
}

fn copy_file(fs: &mut RootFs, tree: &SourceTree, rel: &str, target: &str, mode: u32, mtime: i64, opts: &CopyOpts) -> Result<(), Error> {
    let mut f = tree.open_file(rel)?;
    let caps = tree.caps(rel);
    fs.write_file(target, &mut f, &opts.attrs(mode, mtime, caps))?;
    Ok(())
}

/// A file made from bytes: a heredoc (`COPY <<EOF /etc/motd`) or a download.
pub(crate) fn write_bytes(root: &Path, dest: &str, name: &str, bytes: &mut dyn Read, mode: u32, opts: &CopyOpts) -> Result<(), Error> {
    let view = SourceTree::open(root, None, "the stage")?;
    let dest = &resolved_dest(&view, dest)?;
    let target = if dest.ends_with('/') || is_dir_in(&view, dest)? { join(dest, name) } else { dest.to_string() };
    let mut fs = RootFs::open(root)?;
    make_parents(&view, &mut fs, &target, opts)?;
    fs.write_file(&target, bytes, &opts.attrs(mode, i64::from(opts.now), None))?;
    Ok(())
}

/// The compression of a local file ADD unpacks, by its first bytes; `None`: not a tar.
fn archive_kind(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some("tar")
    } else {
        None
    }
}

/// ADD of a local file: a tar archive (plain, gzip, bzip2, xz or zstd) is unpacked into
/// `dest`, anything else copied. Returns whether it was unpacked.
pub(crate) fn add_local(root: &Path, tree: &SourceTree, src: &str, dest: &str, into_dir: bool, opts: &CopyOpts) -> Result<bool, Error> {
    let Some(top) = tree.followed(src)? else {
        return Err(Error::SourceNotFound { path: src.to_string(), tree: tree.what.clone(), dir: tree.dir.clone() });
    };
    if top.kind != Kind::File {
        copy_sources(root, tree, &[src.to_string()], dest, opts)?;
        return Ok(false);
    }
    let mut f = tree.open_file(&top.rel)?;
    let mut head = vec![0u8; 512];
    let n = read_up_to(&mut f, &mut head)?;
    head.truncate(n);
    let Some(kind) = archive_kind(&head) else {
        let dest = if into_dir && !dest.ends_with('/') { format!("{dest}/") } else { dest.to_string() };
        copy_sources(root, tree, &[src.to_string()], &dest, opts)?;
        return Ok(false);
    };
    f.rewind().map_err(|e| Error::Io(format!("reading {src}: {e}")))?;
    let plain: Box<dyn Read> = match kind {
        "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(f)),
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
        // gzip, zstd and plain tar are told apart by the extractor itself.
        _ => Box::new(f),
    };
    let dest = in_root(&SourceTree::open(root, None, "the stage")?, dest)?;
    let dir = RootFs::open(root)?.ensure_dir(&dest)?;
    let target = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    // Device nodes are created, as Docker's unpacker does (moby pkg/archive createTarFile:
    // mknod, skipped only inside a user namespace); the step's layer then carries them.
    let opts = strata_rootfs::ExtractOptions { devices: strata_rootfs::DeviceNodes::Create, ..Default::default() };
    strata_rootfs::extract(plain, &target, &opts).map_err(|e| Error::Dockerfile(format!("ADD {src}: unpacking the {kind} archive: {e}")))?;
    Ok(true)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::Io(e.to_string())),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_resolve_against_workdir() {
        assert_eq!(destination(".", "/app"), "/app/");
        assert_eq!(destination("conf/", "/app"), "/app/conf/");
        assert_eq!(destination("x", "/"), "/x");
        assert_eq!(destination("/tmp/", "/app"), "/tmp/");
        assert_eq!(destination("../../etc/x", "/app"), "/etc/x");
        assert_eq!(destination("/", "/app"), "/");
    }

    #[test]
    fn destinations_follow_image_links_without_leaving_the_root() {
        let d = tempfile::tempdir().unwrap();
        let link = |name: &str, target: &str| std::os::unix::fs::symlink(target, d.path().join(name)).unwrap();
        std::fs::create_dir(d.path().join("usr")).unwrap();
        link("up", "../../../..");
        link("abs", "/data/work");
        link("rel", "usr/missing");
        link("loop", "loop");
        link("chain", "abs");
        let view = SourceTree::open(d.path(), None, "the stage").unwrap();
        assert_eq!(in_root(&view, "/up/etc/passwd").unwrap(), "/etc/passwd", "`..` stops at the root");
        assert_eq!(in_root(&view, "/abs").unwrap(), "/data/work", "a dangling absolute link is followed");
        assert_eq!(in_root(&view, "/chain/x").unwrap(), "/data/work/x");
        assert_eq!(in_root(&view, "/rel/").unwrap(), "/usr/missing");
        assert_eq!(in_root(&view, "/usr/../rel").unwrap(), "/usr/missing");
        assert!(in_root(&view, "/loop/x").unwrap_err().to_string().contains("too many levels"));
        assert_eq!(resolved_dest(&view, "/abs/").unwrap(), "/data/work/", "the trailing / is kept");
    }

    #[test]
    fn archives_are_told_by_their_first_bytes() {
        assert_eq!(archive_kind(&[0x1f, 0x8b, 8]), Some("gzip"));
        assert_eq!(archive_kind(b"BZh91AY"), Some("bzip2"));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(archive_kind(&tar), Some("tar"));
        assert_eq!(archive_kind(b"#!/bin/sh\n"), None);
    }
}
