//! A yum/dnf repository's metadata for a folder of RPMs, written by strata: `primary.xml.gz`,
//! `filelists.xml.gz`, `other.xml.gz` and `repomd.xml` in the form createrepo_c gives them
//! (the same entries, read from the same header tags by the same rules, checked against
//! createrepo_c by this crate's tests), but deterministic: the same RPMs always give the
//! same bytes. A package's `time file` is its build time (createrepo_c takes the file's
//! mtime, which a copy changes), and repomd's revision and timestamps are the newest build
//! time, so republishing the same set of RPMs produces files identical to those served.
//!
//! No sqlite databases: dnf (libsolv) and yum ≥ 3 read the XML, and the databases would
//! triple the metadata without a reader here.

use crate::tree::{self, Outcome, Tree};
use crate::Error;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use strata_package::{FileKind, Package};
use strata_rpmdb::header::{tag, Header};

/// How many changelog entries of each package `other.xml` keeps (createrepo_c's
/// `--changelog-limit` as Fedora's composes set it).
pub const CHANGELOG_LIMIT: usize = 10;

/// Header tags read here beyond those `strata_rpmdb::header::tag` names.
mod tags {
    pub const SUMMARY: u32 = 1004;
    pub const DESCRIPTION: u32 = 1005;
    pub const BUILDTIME: u32 = 1006;
    pub const BUILDHOST: u32 = 1007;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const LICENSE: u32 = 1014;
    pub const PACKAGER: u32 = 1015;
    pub const URL: u32 = 1020;
    pub const CHANGELOGTIME: u32 = 1080;
    pub const CHANGELOGNAME: u32 = 1081;
    pub const CHANGELOGTEXT: u32 = 1082;
    pub const SOURCEPACKAGE: u32 = 1106;
    pub const LONGSIZE: u32 = 5009;
    pub const LONGARCHIVESIZE: u32 = 271;
    pub const SIG_PAYLOADSIZE: u32 = 1007;
    pub const SIG_LONGARCHIVESIZE: u32 = 271;
}

/// (name, flags, version) tag triples of each dependency kind, in the order primary.xml
/// lists them.
const DEP_KINDS: &[(&str, u32, u32, u32)] = &[
    ("provides", 1047, 1112, 1113),
    ("requires", 1049, 1048, 1050),
    ("conflicts", 1054, 1053, 1055),
    ("obsoletes", 1090, 1114, 1115),
    ("suggests", 5049, 5051, 5050),
    ("enhances", 5055, 5057, 5056),
    ("recommends", 5046, 5048, 5047),
    ("supplements", 5052, 5054, 5053),
];

const SENSE_PREREQ: u32 = 1 << 6;
const SENSE_SCRIPT_PRE: u32 = 1 << 9;
const SENSE_SCRIPT_POST: u32 = 1 << 10;

/// One dependency as the metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepEntry {
    pub name: String,
    /// `EQ`, `LT`, `GE`, … or none.
    pub flags: Option<&'static str>,
    pub epoch: Option<String>,
    pub ver: Option<String>,
    pub rel: Option<String>,
    pub pre: bool,
}

/// One file as the metadata lists it: `dir`, `ghost` or a plain file (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileItem {
    pub path: String,
    pub kind: Option<&'static str>,
}

/// What the metadata says of one RPM.
#[derive(Debug, Clone)]
pub struct PackageEntry {
    pub name: String,
    pub arch: String,
    pub epoch: String,
    pub version: String,
    pub release: String,
    pub sha256: String,
    pub summary: String,
    pub description: String,
    pub packager: String,
    pub url: String,
    pub build_time: u64,
    pub size_package: u64,
    pub size_installed: u64,
    pub size_archive: u64,
    pub location: String,
    pub license: String,
    pub vendor: String,
    pub group: String,
    pub buildhost: String,
    pub sourcerpm: String,
    pub header_start: u64,
    pub header_end: u64,
    /// Per kind (`provides`, `requires`, …), in header order after createrepo_c's filters.
    pub deps: Vec<(&'static str, Vec<DepEntry>)>,
    pub files: Vec<FileItem>,
    /// (author, date, text), oldest first.
    pub changelogs: Vec<(String, u64, String)>,
}

/// The files createrepo_c puts in primary.xml too (what file dependencies usually name).
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path.contains("bin/") || path == "/usr/lib/sendmail"
}

fn flag_str(flags: u32) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// `[E:]V[-R]` split as createrepo_c splits it: the epoch is 0 when a version is given
/// without one.
fn split_evr(evr: &str) -> (Option<String>, Option<String>, Option<String>) {
    if evr.is_empty() {
        return (None, None, None);
    }
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e.to_string(), rest),
        _ => ("0".to_string(), evr),
    };
    let (ver, rel) = match rest.rsplit_once('-') {
        Some((v, r)) => (v.to_string(), Some(r.to_string())),
        None => (rest.to_string(), None),
    };
    (Some(epoch), Some(ver), rel)
}

/// `libc.so.6(GLIBC_2.4)(64bit)`'s version part compared as createrepo_c does, to keep
/// only the highest libc.so.6 requirement.
fn libc_newer(candidate: &str, current: &str) -> bool {
    let ver = |s: &str| -> Option<String> {
        let open = s.find('(')?;
        let close = open + s[open..].find(')')?;
        let inner = &s[open + 1..close];
        let start = inner.find(|c: char| c.is_ascii_digit())?;
        Some(inner[start..].to_string())
    };
    match (ver(candidate), ver(current)) {
        (Some(a), Some(b)) => strata_rpm::evr::rpmvercmp(&a, &b) == std::cmp::Ordering::Greater,
        (Some(_), None) => true,
        _ => false,
    }
}

fn io_at(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |source| Error::Io { context, source }
}

/// Reads an RPM's headers into its metadata entry; `sha256` and `size` are the file's.
pub fn read_package(path: &Path, location: &str, sha256: &str, size: u64) -> Result<PackageEntry, Error> {
    let pkg = Package::open(path).map_err(|e| Error::Invalid(format!("{e}\n  hint: only RPM files belong in the mirror's rpms/ folder")))?;
    let h = pkg.header();
    let s = |t: u32| h.string(t).unwrap_or_default();
    let num = |t: u32| -> Option<u64> { h.u32s(t).first().map(|&v| v as u64).or_else(|| h.u64s(t).first().copied()) };
    let sig = Header::parse(pkg.signature_blob()).ok();
    let size_archive = num(tags::LONGARCHIVESIZE)
        .or_else(|| num(tag::ARCHIVESIZE))
        .or_else(|| sig.as_ref().and_then(|g| g.u64s(tags::SIG_LONGARCHIVESIZE).first().copied().or_else(|| g.u32s(tags::SIG_PAYLOADSIZE).first().map(|&v| v as u64))))
        .unwrap_or(0);
    // The main header starts after the 96-byte lead and the signature header (its 8 bytes
    // of magic, then its blob, padded to 8); the payload follows the main header.
    let header_start = ((96 + 8 + pkg.signature_blob().len()) as u64 + 7) & !7;
    let header_end = header_start + 8 + pkg.main_blob().len() as u64;

    let files = pkg.files().map_err(|e| Error::Invalid(e.to_string()))?;
    let file_items: Vec<FileItem> = files
        .iter()
        .map(|f| FileItem {
            path: f.path.clone(),
            kind: if f.kind == FileKind::Directory {
                Some("dir")
            } else if f.flags.is_ghost() {
                Some("ghost")
            } else {
                None
            },
        })
        .collect();
    let own_files: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();

    let mut deps = Vec::new();
    let mut provided: HashSet<String> = HashSet::new();
    for &(kind, names_tag, flags_tag, versions_tag) in DEP_KINDS {
        let names = h.strings(names_tag);
        let flags = h.u32s(flags_tag);
        let versions = h.strings(versions_tag);
        let mut list: Vec<DepEntry> = Vec::new();
        let mut seen: HashSet<(String, Option<&str>, String, bool)> = HashSet::new();
        let mut libc: Option<DepEntry> = None;
        for (i, name) in names.iter().enumerate() {
            let f = flags.get(i).copied().unwrap_or(0);
            let version = versions.get(i).cloned().unwrap_or_default();
            let flag = flag_str(f);
            let pre = kind == "requires" && f & (SENSE_PREREQ | SENSE_SCRIPT_PRE | SENSE_SCRIPT_POST) != 0;
            if kind == "requires" {
                // rpm's own features, the package's own primary files and what it provides
                // itself never need resolving by a repository.
                if name.starts_with("rpmlib(") || (own_files.contains(name.as_str()) && is_primary_file(name)) || provided.contains(name) {
                    continue;
                }
                if !seen.insert((name.clone(), flag, version.clone(), pre)) {
                    continue;
                }
            }
            let (epoch, ver, rel) = split_evr(&version);
            let dep = DepEntry { name: name.clone(), flags: flag, epoch, ver, rel, pre };
            if kind == "provides" {
                provided.insert(name.clone());
            }
            if kind == "requires" && name.starts_with("libc.so.6") {
                if libc.as_ref().is_none_or(|cur| libc_newer(&dep.name, &cur.name)) {
                    libc = Some(dep);
                }
                continue;
            }
            list.push(dep);
        }
        list.extend(libc);
        deps.push((kind, list));
    }

    let times = h.u32s(tags::CHANGELOGTIME);
    let names = h.strings(tags::CHANGELOGNAME);
    let texts = h.strings(tags::CHANGELOGTEXT);
    let mut changelogs: Vec<(String, u64, String)> = Vec::new();
    for ((time, author), text) in times.iter().zip(&names).zip(&texts).take(CHANGELOG_LIMIT) {
        changelogs.push((author.trim_end_matches(' ').to_string(), *time as u64, text.clone()));
    }
    // Header order is newest first; the metadata lists oldest first, and entries of the
    // same second are told apart as createrepo_c does (the older one a second later).
    changelogs.reverse();
    fix_changelog_times(&mut changelogs);

    Ok(PackageEntry {
        name: s(tag::NAME),
        arch: if num(tags::SOURCEPACKAGE).unwrap_or(0) != 0 { "src".into() } else { s(tag::ARCH) },
        epoch: num(tag::EPOCH).unwrap_or(0).to_string(),
        version: s(tag::VERSION),
        release: s(tag::RELEASE),
        sha256: sha256.to_string(),
        summary: s(tags::SUMMARY),
        description: s(tags::DESCRIPTION),
        packager: s(tags::PACKAGER),
        url: s(tags::URL),
        build_time: num(tags::BUILDTIME).unwrap_or(0),
        size_package: size,
        size_installed: num(tags::LONGSIZE).or_else(|| num(tags::SIZE)).unwrap_or(0),
        size_archive,
        location: location.to_string(),
        license: s(tags::LICENSE),
        vendor: s(tags::VENDOR),
        group: s(tag::GROUP),
        buildhost: s(tags::BUILDHOST),
        sourcerpm: s(tag::SOURCERPM),
        header_start,
        header_end,
        deps,
        files: file_items,
        changelogs,
    })
}

/// createrepo_c walks the changelog newest first and, when an entry has the same time as
/// the one before it, moves the earlier-listed (newer) run of equal times one second
/// later each, so every date is distinct. Here the list is already oldest first.
fn fix_changelog_times(oldest_first: &mut [(String, u64, String)]) {
    // Walk in header order (newest first) = reverse of the list.
    let n = oldest_first.len();
    let mut last_time: Option<u64> = None;
    for k in 0..n {
        let idx = n - 1 - k; // header position k
        let time = oldest_first[idx].1;
        if last_time == Some(time) {
            // Entries already seen (header positions < k) sit at list positions > idx.
            let mut t = time;
            let mut p = idx + 1;
            while p < n && oldest_first[p].1 == t {
                oldest_first[p].1 += 1;
                t += 1;
                p += 1;
            }
        } else {
            last_time = Some(time);
        }
    }
}

/// Text escaped for XML character data: what XML 1.0 cannot carry is dropped.
fn text(s: &str) -> String {
    escape(s, false)
}

/// Text escaped for a double-quoted XML attribute (what XML 1.0 cannot carry dropped).
pub(crate) fn attr(s: &str) -> String {
    escape(s, true)
}

/// XML 1.0 escaping. In an attribute `"` is escaped too, and so are newline and tab, which
/// a parser would otherwise normalise to spaces; characters XML cannot carry are dropped.
fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\t' if in_attr => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

fn version_tag(p: &PackageEntry) -> String {
    format!("<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>", attr(&p.epoch), attr(&p.version), attr(&p.release))
}

fn file_line(out: &mut String, indent: &str, f: &FileItem) {
    match f.kind {
        Some(k) => writeln!(out, "{indent}<file type=\"{k}\">{}</file>", text(&f.path)),
        None => writeln!(out, "{indent}<file>{}</file>", text(&f.path)),
    }
    .expect("writing to a String");
}

/// primary.xml for `packages` (sorted by location).
pub fn primary_xml(packages: &[PackageEntry]) -> String {
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(o, "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">", packages.len());
    for p in packages {
        o.push_str("<package type=\"rpm\">\n");
        let _ = writeln!(o, "  <name>{}</name>", text(&p.name));
        let _ = writeln!(o, "  <arch>{}</arch>", text(&p.arch));
        let _ = writeln!(o, "  {}", version_tag(p));
        let _ = writeln!(o, "  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>", p.sha256);
        let _ = writeln!(o, "  <summary>{}</summary>", text(&p.summary));
        let _ = writeln!(o, "  <description>{}</description>", text(&p.description));
        let _ = writeln!(o, "  <packager>{}</packager>", text(&p.packager));
        let _ = writeln!(o, "  <url>{}</url>", text(&p.url));
        let _ = writeln!(o, "  <time file=\"{}\" build=\"{}\"/>", p.build_time, p.build_time);
        let _ = writeln!(o, "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>", p.size_package, p.size_installed, p.size_archive);
        let _ = writeln!(o, "  <location href=\"{}\"/>", attr(&p.location));
        o.push_str("  <format>\n");
        let _ = writeln!(o, "    <rpm:license>{}</rpm:license>", text(&p.license));
        let _ = writeln!(o, "    <rpm:vendor>{}</rpm:vendor>", text(&p.vendor));
        let _ = writeln!(o, "    <rpm:group>{}</rpm:group>", text(&p.group));
        let _ = writeln!(o, "    <rpm:buildhost>{}</rpm:buildhost>", text(&p.buildhost));
        let _ = writeln!(o, "    <rpm:sourcerpm>{}</rpm:sourcerpm>", text(&p.sourcerpm));
        let _ = writeln!(o, "    <rpm:header-range start=\"{}\" end=\"{}\"/>", p.header_start, p.header_end);
        for (kind, list) in &p.deps {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(o, "    <rpm:{kind}>");
            for d in list {
                let _ = write!(o, "      <rpm:entry name=\"{}\"", attr(&d.name));
                if let Some(f) = d.flags {
                    let _ = write!(o, " flags=\"{f}\"");
                }
                for (k, v) in [("epoch", &d.epoch), ("ver", &d.ver), ("rel", &d.rel)] {
                    if let Some(v) = v {
                        let _ = write!(o, " {k}=\"{}\"", attr(v));
                    }
                }
                if d.pre {
                    o.push_str(" pre=\"1\"");
                }
                o.push_str("/>\n");
            }
            let _ = writeln!(o, "    </rpm:{kind}>");
        }
        for f in p.files.iter().filter(|f| is_primary_file(&f.path)) {
            file_line(&mut o, "    ", f);
        }
        o.push_str("  </format>\n</package>\n");
    }
    o.push_str("</metadata>\n");
    o
}

/// filelists.xml for `packages`.
pub fn filelists_xml(packages: &[PackageEntry]) -> String {
    per_package("filelists", "filelists", packages, |o, p| {
        for f in &p.files {
            file_line(o, "  ", f);
        }
    })
}

/// other.xml (changelogs) for `packages`.
pub fn other_xml(packages: &[PackageEntry]) -> String {
    per_package("otherdata", "other", packages, |o, p| {
        for (author, date, t) in &p.changelogs {
            let _ = writeln!(o, "  <changelog author=\"{}\" date=\"{date}\">{}</changelog>", attr(author), text(t));
        }
    })
}

/// The shape filelists.xml and other.xml share: a `<package pkgid name arch>` with its
/// version per package, and what `body` adds.
fn per_package(root: &str, ns: &str, packages: &[PackageEntry], body: impl Fn(&mut String, &PackageEntry)) -> String {
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(o, "<{root} xmlns=\"http://linux.duke.edu/metadata/{ns}\" packages=\"{}\">", packages.len());
    for p in packages {
        let _ = writeln!(o, "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">", p.sha256, attr(&p.name), attr(&p.arch));
        let _ = writeln!(o, "  {}", version_tag(p));
        body(&mut o, p);
        o.push_str("</package>\n");
    }
    let _ = writeln!(o, "</{root}>");
    o
}

/// One compressed metadata file, as repomd.xml describes it.
struct MetaFile {
    kind: &'static str,
    gz: Vec<u8>,
    sha256: String,
    open_sha256: String,
    open_size: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn meta_file(kind: &'static str, xml: &str) -> Result<MetaFile, Error> {
    // mtime 0 and no file name in the gzip header: the bytes depend on the content only.
    let mut enc = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::new(6));
    enc.write_all(xml.as_bytes()).and_then(|_| enc.try_finish()).map_err(|source| Error::Io { context: format!("compressing {kind}.xml"), source })?;
    let gz = enc.finish().map_err(|source| Error::Io { context: format!("compressing {kind}.xml"), source })?;
    Ok(MetaFile { kind, sha256: sha256_hex(&gz), open_sha256: sha256_hex(xml.as_bytes()), open_size: xml.len() as u64, gz })
}

fn repomd_xml(files: &[MetaFile], revision: u64) -> String {
    let mut o = String::new();
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    o.push_str("<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n");
    let _ = writeln!(o, "  <revision>{revision}</revision>");
    for f in files {
        let _ = writeln!(o, "  <data type=\"{}\">", f.kind);
        let _ = writeln!(o, "    <checksum type=\"sha256\">{}</checksum>", f.sha256);
        let _ = writeln!(o, "    <open-checksum type=\"sha256\">{}</open-checksum>", f.open_sha256);
        let _ = writeln!(o, "    <location href=\"repodata/{}\"/>", meta_name(f));
        let _ = writeln!(o, "    <timestamp>{revision}</timestamp>");
        let _ = writeln!(o, "    <size>{}</size>", f.gz.len());
        let _ = writeln!(o, "    <open-size>{}</open-size>", f.open_size);
        o.push_str("  </data>\n");
    }
    o.push_str("</repomd>\n");
    o
}

fn meta_name(f: &MetaFile) -> String {
    format!("{}-{}.xml.gz", f.sha256, f.kind)
}

/// Checksums of the RPMs already hashed, by file name, kept between publishes so that
/// unchanged RPMs (hundreds of MB each: they carry the image) are not read again.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct HashCache {
    #[serde(default)]
    pub files: BTreeMap<String, CachedHash>,
}

/// A file's identity when it was hashed; any change makes it hashed again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedHash {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub sha256: String,
}

/// What [`update`] did.
#[derive(Debug, Default)]
pub struct RepoUpdate {
    /// Metadata files written (relative to the mirror), repomd.xml last.
    pub written: Vec<String>,
    /// Old metadata files removed after repomd.xml stopped naming them.
    pub removed: Vec<String>,
    /// The RPMs the metadata lists (file names under rpms/).
    pub packages: Vec<String>,
}

/// Brings `rel_dir/repodata` of the mirror up to date with the RPMs in `rel_dir`: nothing
/// is written when the metadata the RPMs give is what repomd.xml already names; otherwise
/// the new metadata files first, repomd.xml last (the switch a reader sees at once), then
/// the files only the old repomd.xml named are removed.
pub fn update(tree: &Tree, rel_dir: &str, cache: &mut HashCache) -> Result<RepoUpdate, Error> {
    let dir = tree.ensure_dir(rel_dir)?;
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(io_at(&dir, "reading"))? {
        let e = e.map_err(io_at(&dir, "reading"))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".rpm") && !name.starts_with('.') && e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            names.push(name);
        }
    }
    names.sort();
    let mut packages = Vec::with_capacity(names.len());
    let mut kept = BTreeMap::new();
    for name in &names {
        let path = dir.join(name);
        let md = std::fs::metadata(&path).map_err(io_at(&path, "reading"))?;
        use std::os::unix::fs::MetadataExt;
        let mtime_ns = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
        let sha256 = match cache.files.get(name) {
            Some(c) if c.size == md.len() && c.mtime_ns == mtime_ns && c.inode == md.ino() => c.sha256.clone(),
            _ => tree::hash_file(&path)?.1,
        };
        kept.insert(name.clone(), CachedHash { size: md.len(), mtime_ns, inode: md.ino(), sha256: sha256.clone() });
        packages.push(read_package(&path, name, &sha256, md.len())?);
    }
    cache.files = kept;
    let revision = packages.iter().map(|p| p.build_time).max().unwrap_or(0);
    let files = [meta_file("primary", &primary_xml(&packages))?, meta_file("filelists", &filelists_xml(&packages))?, meta_file("other", &other_xml(&packages))?];
    let repomd = repomd_xml(&files, revision);
    let repodata = format!("{rel_dir}/repodata");
    tree.ensure_dir(&repodata)?;
    let repomd_rel = format!("{repodata}/repomd.xml");
    let old_repomd = match tree.check_file_slot(&repomd_rel)? {
        Some(_) => std::fs::read_to_string(tree.path(&repomd_rel)).unwrap_or_default(),
        None => String::new(),
    };
    let mut out = RepoUpdate { packages: names, ..Default::default() };
    if old_repomd == repomd {
        return Ok(out);
    }
    for f in &files {
        let rel = format!("{repodata}/{}", meta_name(f));
        if tree.write(&rel, &f.gz)? == Outcome::Written {
            out.written.push(rel);
        }
    }
    tree.write(&repomd_rel, repomd.as_bytes())?;
    out.written.push(repomd_rel);
    // Only metadata the old repomd.xml named and the new one does not: never a file
    // someone else put there.
    for href in hrefs(&old_repomd) {
        if !repomd.contains(&format!("\"{href}\"")) {
            if let Some(name) = href.strip_prefix("repodata/").filter(|n| !n.contains('/') && !n.starts_with('.')) {
                let rel = format!("{repodata}/{name}");
                if tree.remove(&rel)? {
                    out.removed.push(rel);
                }
            }
        }
    }
    Ok(out)
}

/// The `<location href="…"/>` values of a repomd.xml.
fn hrefs(repomd: &str) -> Vec<String> {
    repomd.split("<location href=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_and_flags_as_createrepo_writes_them() {
        assert_eq!(split_evr("2.1.12"), (Some("0".into()), Some("2.1.12".into()), None));
        assert_eq!(split_evr("5.6-0.1"), (Some("0".into()), Some("5.6".into()), Some("0.1".into())));
        assert_eq!(split_evr("1:3.0-2"), (Some("1".into()), Some("3.0".into()), Some("2".into())));
        assert_eq!(split_evr("0:sha256:ab"), (Some("0".into()), Some("sha256:ab".into()), None));
        assert_eq!(split_evr(""), (None, None, None));
        assert_eq!(flag_str(8), Some("EQ"));
        assert_eq!(flag_str(12 | (1 << 9)), Some("GE"));
        assert_eq!(flag_str(0), None);
    }

    #[test]
    fn highest_libc_requirement_wins() {
        assert!(libc_newer("libc.so.6(GLIBC_2.36)(64bit)", "libc.so.6(GLIBC_2.4)(64bit)"));
        assert!(!libc_newer("libc.so.6()(64bit)", "libc.so.6(GLIBC_2.4)(64bit)"));
        assert!(libc_newer("libc.so.6(GLIBC_2.4)(64bit)", "libc.so.6()(64bit)"));
    }

    #[test]
    fn changelog_times_are_made_distinct_like_createrepo() {
        // Header order (newest first): t=5 "c", t=5 "b", t=3 "a" → oldest first a@3, b@5,
        // c@6 (the newer one of the equal pair moves a second later).
        let mut l = vec![("x".to_string(), 3, "a".to_string()), ("x".into(), 5, "b".into()), ("x".into(), 5, "c".into())];
        fix_changelog_times(&mut l);
        let times: Vec<u64> = l.iter().map(|c| c.1).collect();
        assert_eq!(times, [3, 5, 6]);
    }

    #[test]
    fn escaping_keeps_xml_well_formed() {
        assert_eq!(attr("a\"<b>&\n"), "a&quot;&lt;b&gt;&amp;&#10;");
        assert_eq!(text("x\u{1}y<"), "xy&lt;");
    }
}
