//! The parsed form of primary.xml: every package with its dependencies and primary's file
//! subset, plus lookup tables (name → packages, capability → providers, path → owners),
//! stored as one blob that a warm run maps and reads in place.

use crate::blob::{blob_bytes, write_atomic, write_blob_file, Blob, BlobError, BlobWriter, Span};
use crate::cold::{self, ColdStore};
use crate::strings::{StringPool, StringTable, EMPTY};
use crate::RepoError;
use bytemuck::{Pod, Zeroable};
use std::path::Path;
use strata_rpm::{DepRef, EvrRef, Op};

pub type PkgId = u32;

const KIND: u32 = 1;
/// Bump whenever the layout below changes: old cache files are then rebuilt.
const VERSION: u32 = 3;

/// Dependency kinds, in the order their ranges are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DepKind {
    Provides = 0,
    Requires,
    Conflicts,
    Obsoletes,
    Recommends,
    Suggests,
    Supplements,
    Enhances,
}
pub(crate) const DEP_KINDS: usize = 8;

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct PkgRec {
    pub name: u32,
    pub arch: u32,
    pub epoch: u32,
    pub flags: u32,
    pub version: u32,
    pub release: u32,
    pub location: u32,
    pub location_base: u32,
    pub checksum_type: u32,
    pub checksum: u32,
    pub summary: u32,
    pub sourcerpm: u32,
    pub size_package: u64,
    pub size_installed: u64,
    pub buildtime: u64,
    /// Start of each dependency kind in the deps array; `deps[k + 1]` ends kind `k`.
    pub deps: [u32; DEP_KINDS + 1],
    pub files: Span,
    pub _pad: u32,
}
const PKG_HAS_EPOCH: u32 = 1;

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct DepRec {
    pub name: u32,
    pub version: u32,
    pub release: u32,
    pub epoch: u32,
    pub flags: u32,
}
const DEP_OP_MASK: u32 = 0x7;
const DEP_PRE: u32 = 1 << 8;
const DEP_HAS_EPOCH: u32 = 1 << 9;
const DEP_HAS_RELEASE: u32 = 1 << 10;

fn op_code(op: Option<Op>) -> u32 {
    match op {
        None => 0,
        Some(Op::Lt) => 1,
        Some(Op::Le) => 2,
        Some(Op::Eq) => 3,
        Some(Op::Ge) => 4,
        Some(Op::Gt) => 5,
    }
}

fn op_of(code: u32) -> Option<Op> {
    match code & DEP_OP_MASK {
        1 => Some(Op::Lt),
        2 => Some(Op::Le),
        3 => Some(Op::Eq),
        4 => Some(Op::Ge),
        5 => Some(Op::Gt),
        _ => None,
    }
}

// Section numbers.
const S_STRINGS: usize = 0; // three sections
const S_PKGS: usize = 3;
const S_DEPS: usize = 4;
const S_FILES: usize = 5;
const S_BY_NAME: usize = 6;
const S_PROVIDES: usize = 7;
const S_FILE_OWNERS: usize = 8;
const S_NAMES: usize = 9;
const S_OBSOLETES: usize = 10;
const SECTIONS: usize = 11;

/// A dependency as the parser hands it over (borrowed from the XML event).
pub(crate) struct RawDep<'a> {
    pub name: &'a str,
    pub op: Option<Op>,
    pub epoch: Option<u32>,
    pub version: Option<&'a str>,
    pub release: Option<&'a str>,
    pub pre: bool,
}

/// Package fields as the parser hands them over; strings already interned.
#[derive(Default, Clone, Copy)]
pub(crate) struct RawPackage {
    pub name: u32,
    pub arch: u32,
    pub epoch: Option<u32>,
    pub version: u32,
    pub release: u32,
    pub location: u32,
    pub location_base: u32,
    pub checksum_type: u32,
    pub checksum: u32,
    pub summary: u32,
    pub sourcerpm: u32,
    pub size_package: u64,
    pub size_installed: u64,
    pub buildtime: u64,
}

/// Accumulates packages while primary.xml streams by.
pub(crate) struct IndexBuilder {
    pub pool: StringPool,
    cold: StringPool,
    pkgs: Vec<PkgRec>,
    deps: Vec<DepRec>,
    files: Vec<u32>,
    /// Dependencies of the package being parsed, per kind (XML does not order the kinds).
    pending: [Vec<DepRec>; DEP_KINDS],
    pending_files: Vec<u32>,
}

impl IndexBuilder {
    pub(crate) fn new() -> IndexBuilder {
        IndexBuilder {
            pool: StringPool::new(),
            cold: StringPool::new(),
            pkgs: Vec::new(),
            deps: Vec::new(),
            files: Vec::new(),
            pending: Default::default(),
            pending_files: Vec::new(),
        }
    }

    /// Sizes the arrays for `packages` packages up front: growing by doubling would briefly
    /// hold two copies of the largest arrays.
    pub(crate) fn reserve(&mut self, packages: usize) {
        let packages = packages.min(1 << 22);
        self.pkgs.reserve_exact(packages);
        self.deps.reserve_exact(packages * 9);
        // Measured on Debian's 63k-package primary: ~7 distinct strings and ~270 bytes of
        // them per package.
        self.pool.reserve(packages * 5, packages * 130);
        self.cold.reserve(packages * 4, packages * 170);
    }

    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        self.pool.intern(s)
    }

    /// Interns a string only reports and downloads read (kept in the sidecar, see `cold`).
    pub(crate) fn intern_cold(&mut self, s: &str) -> u32 {
        self.cold.intern(s)
    }

    pub(crate) fn add_dep(&mut self, kind: DepKind, d: RawDep<'_>) {
        let rec = DepRec {
            name: self.pool.intern(d.name),
            version: d.version.map_or(EMPTY, |v| self.pool.intern(v)),
            release: d.release.map_or(EMPTY, |r| self.pool.intern(r)),
            epoch: d.epoch.unwrap_or(0),
            flags: op_code(d.op)
                | if d.pre { DEP_PRE } else { 0 }
                | if d.epoch.is_some() { DEP_HAS_EPOCH } else { 0 }
                | if d.release.is_some() { DEP_HAS_RELEASE } else { 0 },
        };
        self.pending[kind as usize].push(rec);
    }

    pub(crate) fn add_file(&mut self, path: &str) {
        let id = self.pool.intern(path);
        self.pending_files.push(id);
    }

    /// Ends the current package, moving its pending deps and files into place.
    pub(crate) fn finish_package(&mut self, p: RawPackage) {
        let mut deps = [0u32; DEP_KINDS + 1];
        for (k, pending) in self.pending.iter_mut().enumerate() {
            deps[k] = self.deps.len() as u32;
            self.deps.append(pending);
            // `append` keeps the emptied buffer's capacity: one package with millions of
            // entries would otherwise hold that much memory twice until the end.
            if pending.capacity() > 1 << 16 {
                *pending = Vec::new();
            }
        }
        deps[DEP_KINDS] = self.deps.len() as u32;
        let files = Span { start: self.files.len() as u32, count: self.pending_files.len() as u32 };
        self.files.append(&mut self.pending_files);
        self.pkgs.push(PkgRec {
            name: p.name,
            arch: p.arch,
            epoch: p.epoch.unwrap_or(0),
            flags: if p.epoch.is_some() { PKG_HAS_EPOCH } else { 0 },
            version: p.version,
            release: p.release,
            location: p.location,
            location_base: p.location_base,
            checksum_type: p.checksum_type,
            checksum: p.checksum,
            summary: p.summary,
            sourcerpm: p.sourcerpm,
            size_package: p.size_package,
            size_installed: p.size_installed,
            buildtime: p.buildtime,
            deps,
            files,
            _pad: 0,
        });
    }

    /// Drops a half-parsed package's pending data (used when the XML ends mid-package).
    pub(crate) fn discard_pending(&mut self) {
        self.pending.iter_mut().for_each(Vec::clear);
        self.pending_files.clear();
    }

    fn take_cold(&mut self) -> StringPool {
        std::mem::replace(&mut self.cold, StringPool::new())
    }

    /// Writes the index, freeing each part as soon as it is out, to keep the peak low.
    pub(crate) fn write_to<W: std::io::Write + std::io::Seek>(self, w: &mut BlobWriter<W>) -> std::io::Result<()> {
        let IndexBuilder { pool, pkgs, deps, files, .. } = self;
        // Lookup tables: pairs sorted by key id, searched by binary search on the id.
        let mut by_name: Vec<[u32; 2]> = pkgs.iter().enumerate().map(|(i, p)| [p.name, i as u32]).collect();
        by_name.sort_unstable();
        let mut names: Vec<u32> = by_name.iter().map(|e| e[0]).collect();
        names.dedup();
        names.sort_unstable_by(|a, b| pool.as_str(*a).cmp(pool.as_str(*b)));
        let mut provides: Vec<[u32; 2]> = Vec::new();
        for p in &pkgs {
            let range = p.deps[DepKind::Provides as usize]..p.deps[DepKind::Provides as usize + 1];
            provides.extend(range.map(|d| [deps[d as usize].name, d]));
        }
        provides.sort_unstable();
        let mut obsoletes: Vec<[u32; 2]> = Vec::new();
        for p in &pkgs {
            let range = p.deps[DepKind::Obsoletes as usize]..p.deps[DepKind::Obsoletes as usize + 1];
            obsoletes.extend(range.map(|d| [deps[d as usize].name, d]));
        }
        obsoletes.sort_unstable();
        let mut owners: Vec<[u32; 2]> = Vec::new();
        for (i, p) in pkgs.iter().enumerate() {
            owners.extend(files[p.files.range()].iter().map(|f| [*f, i as u32]));
        }
        owners.sort_unstable();
        owners.dedup();

        pool.write(w)?;
        w.push(&pkgs)?;
        drop(pkgs);
        w.push(&deps)?;
        drop(deps);
        w.push(&files)?;
        w.push(&by_name)?;
        w.push(&provides)?;
        w.push(&owners)?;
        w.push(&names)?;
        w.push(&obsoletes)
    }

    /// Writes the index to `path` (and its cold strings beside it) atomically and maps it.
    /// The sidecar goes first: an index file is only ever seen with its sidecar complete.
    pub(crate) fn write_file(mut self, path: &Path) -> Result<RepoIndex, RepoError> {
        let cold = self.take_cold();
        let cold_path = cold_path(path);
        write_blob_file(&cold_path, 3, |w| cold.write(w), cold::KIND, VERSION)
            .map_err(|e| RepoError::cache(&cold_path, e))?;
        write_blob_file(path, SECTIONS, |w| self.write_to(w), KIND, VERSION).map_err(|e| RepoError::cache(path, e))?;
        RepoIndex::open(path)
    }

    pub(crate) fn into_memory(mut self) -> Result<RepoIndex, RepoError> {
        let cold = self.take_cold();
        let cold_bytes = blob_bytes(3, |w| cold.write(w), cold::KIND, VERSION);
        let cold = Blob::from_bytes(cold_bytes, cold::KIND, VERSION)
            .and_then(ColdStore::memory)
            .map_err(|e| corrupt("index", e))?;
        let bytes = blob_bytes(SECTIONS, |w| self.write_to(w), KIND, VERSION);
        RepoIndex::checked(Blob::from_bytes(bytes, KIND, VERSION).map_err(|e| corrupt("index", e))?, cold)
            .map_err(|e| corrupt("index", e))
    }
}

/// The sidecar of cold strings for the index at `path`.
fn cold_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("cold")
}

/// The index of one repository's primary metadata. Immutable; cheap to open.
pub struct RepoIndex {
    blob: Blob,
    cold: ColdStore,
}

fn corrupt(what: &str, e: BlobError) -> RepoError {
    RepoError::Corrupt { repo: String::new(), file: what.to_string(), detail: e.to_string() }
}

impl RepoIndex {
    /// Parses primary.xml (already decompressed) into an in-memory index.
    pub fn from_primary_xml<R: std::io::BufRead>(xml: R) -> Result<RepoIndex, RepoError> {
        crate::primary::parse(xml, crate::limits::Budget::undeclared())
            .map_err(|detail| RepoError::Corrupt { repo: String::new(), file: "primary.xml".into(), detail })?
            .into_memory()
    }

    /// Maps a cached index file; a damaged or outdated file is an error (callers rebuild).
    pub fn open(path: &Path) -> Result<RepoIndex, RepoError> {
        let blob = Blob::open(path, KIND, VERSION).map_err(|e| RepoError::cache(path, e))?;
        let cold_path = cold_path(path);
        let cold = ColdStore::open(&cold_path, VERSION).map_err(|e| RepoError::cache(&cold_path, e))?;
        RepoIndex::checked(blob, cold).map_err(|e| RepoError::cache(path, e))
    }

    /// Hashes the whole file against the digest stored when it was written.
    pub fn verify(&self) -> Result<(), RepoError> {
        self.blob.verify().map_err(|e| corrupt("index", e))?;
        let cold = self.cold.bytes().map_err(|e| corrupt("index", BlobError(e.to_string())))?;
        Blob::from_bytes(cold, cold::KIND, VERSION)
            .and_then(|b| b.verify())
            .map_err(|e| corrupt("index", e))
    }

    /// O(1) consistency checks (section sizes and alignment); see `Blob::verify` for why
    /// the content is not hashed here.
    fn checked(blob: Blob, cold: ColdStore) -> Result<RepoIndex, BlobError> {
        StringTable::read(&blob, S_STRINGS)?;
        blob.array::<PkgRec>(S_PKGS)?;
        blob.array::<DepRec>(S_DEPS)?;
        blob.array::<u32>(S_FILES)?;
        for s in [S_BY_NAME, S_PROVIDES, S_FILE_OWNERS, S_OBSOLETES] {
            blob.array::<[u32; 2]>(s)?;
        }
        blob.array::<u32>(S_NAMES)?;
        Ok(RepoIndex { blob, cold })
    }

    /// Writes the index atomically (temporary file, then rename).
    /// Writes the index and its cold-string sidecar (`path` with extension `.cold`).
    pub fn write(&self, path: &Path) -> Result<(), RepoError> {
        let cold_path = cold_path(path);
        let cold = self.cold.bytes().map_err(|e| RepoError::cache(&cold_path, e))?;
        write_atomic(&cold_path, &cold).map_err(|e| RepoError::cache(&cold_path, e))?;
        write_atomic(path, self.blob_bytes()).map_err(|e| RepoError::cache(path, e))
    }

    fn blob_bytes(&self) -> &[u8] {
        // The blob's first section starts after the header; the whole backing is the file.
        self.blob.whole()
    }

    fn strings(&self) -> StringTable<'_> {
        StringTable::read(&self.blob, S_STRINGS).expect("checked at open")
    }

    fn pkgs(&self) -> &[PkgRec] {
        self.blob.array(S_PKGS).expect("checked at open")
    }

    fn deps(&self) -> &[DepRec] {
        self.blob.array(S_DEPS).expect("checked at open")
    }

    fn pairs(&self, section: usize) -> &[[u32; 2]] {
        self.blob.array(section).expect("checked at open")
    }

    pub fn len(&self) -> usize {
        self.pkgs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn package(&self, id: PkgId) -> Package<'_> {
        Package { index: self, id, rec: &self.pkgs()[id as usize] }
    }

    /// Entries of a table sorted by key id whose key is `s`.
    fn lookup(&self, section: usize, s: &str) -> &[[u32; 2]] {
        let Some(key) = self.strings().lookup(s) else { return &[] };
        let table = self.pairs(section);
        let start = table.partition_point(|e| e[0] < key);
        let end = start + table[start..].partition_point(|e| e[0] == key);
        &table[start..end]
    }

    fn valid_pkg(&self, id: u32) -> bool {
        (id as usize) < self.len()
    }

    pub fn ids_by_name(&self, name: &str) -> impl Iterator<Item = PkgId> + '_ {
        self.lookup(S_BY_NAME, name).iter().map(|e| e[1]).filter(|id| self.valid_pkg(*id))
    }

    /// Every (package, provide) whose provide name equals `cap` (explicit provides only).
    pub fn whatprovides(&self, cap: &str) -> impl Iterator<Item = (PkgId, DepRef<'_>)> + '_ {
        self.deps_named(S_PROVIDES, DepKind::Provides, cap)
    }

    /// Every (package, obsoletes entry) naming `name`: the packages that may obsolete it.
    pub fn whatobsoletes(&self, name: &str) -> impl Iterator<Item = (PkgId, DepRef<'_>)> + '_ {
        self.deps_named(S_OBSOLETES, DepKind::Obsoletes, name)
    }

    fn deps_named(&self, table: usize, kind: DepKind, name: &str) -> impl Iterator<Item = (PkgId, DepRef<'_>)> + '_ {
        let deps = self.deps();
        let pkgs = self.pkgs();
        self.lookup(table, name).iter().filter_map(move |e| {
            let d = e[1];
            // Each kind's ranges are in package order, so the owner is found by binary search.
            let owner = pkgs.partition_point(|p| p.deps[kind as usize + 1] <= d) as PkgId;
            let dep = deps.get(d as usize)?;
            self.valid_pkg(owner).then(|| (owner, self.dep_ref(dep)))
        })
    }

    /// Packages listing `path` among primary's file entries (createrepo's subset).
    pub fn file_owners(&self, path: &str) -> impl Iterator<Item = PkgId> + '_ {
        self.lookup(S_FILE_OWNERS, path).iter().map(|e| e[1]).filter(|id| self.valid_pkg(*id))
    }

    /// Every distinct package name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        let strings = self.strings();
        let names: &[u32] = self.blob.array(S_NAMES).expect("checked at open");
        names.iter().map(move |id| strings.get(*id))
    }

    fn dep_ref(&self, d: &DepRec) -> DepRef<'_> {
        let s = self.strings();
        DepRef {
            name: s.get(d.name),
            op: op_of(d.flags),
            evr: EvrRef {
                epoch: (d.flags & DEP_HAS_EPOCH != 0).then_some(d.epoch),
                version: s.get(d.version),
                release: (d.flags & DEP_HAS_RELEASE != 0).then(|| s.get(d.release)),
            },
            pre: d.flags & DEP_PRE != 0,
        }
    }
}

/// One package of an index.
#[derive(Clone, Copy)]
pub struct Package<'a> {
    index: &'a RepoIndex,
    id: PkgId,
    rec: &'a PkgRec,
}

impl<'a> Package<'a> {
    fn s(&self, id: u32) -> &'a str {
        self.index.strings().get(id)
    }

    fn cold(&self, id: u32) -> &'a str {
        self.index.cold.get(id)
    }

    pub fn id(&self) -> PkgId {
        self.id
    }
    pub fn name(&self) -> &'a str {
        self.s(self.rec.name)
    }
    pub fn arch(&self) -> &'a str {
        self.s(self.rec.arch)
    }
    pub fn evr(&self) -> EvrRef<'a> {
        EvrRef {
            epoch: (self.rec.flags & PKG_HAS_EPOCH != 0).then_some(self.rec.epoch),
            version: self.s(self.rec.version),
            release: Some(self.s(self.rec.release)),
        }
    }
    pub fn location(&self) -> &'a str {
        self.cold(self.rec.location)
    }
    pub fn location_base(&self) -> Option<&'a str> {
        Some(self.cold(self.rec.location_base)).filter(|s| !s.is_empty())
    }
    /// `(type, value)`, e.g. `("sha256", "ab12…")`: the package's pkgid.
    pub fn checksum(&self) -> (&'a str, &'a str) {
        (self.cold(self.rec.checksum_type), self.cold(self.rec.checksum))
    }
    pub fn size_package(&self) -> u64 {
        self.rec.size_package
    }
    pub fn size_installed(&self) -> u64 {
        self.rec.size_installed
    }
    pub fn sourcerpm(&self) -> &'a str {
        self.cold(self.rec.sourcerpm)
    }
    pub fn buildtime(&self) -> u64 {
        self.rec.buildtime
    }
    pub fn summary(&self) -> &'a str {
        self.cold(self.rec.summary)
    }

    fn deps_of(&self, kind: DepKind) -> impl Iterator<Item = DepRef<'a>> + 'a {
        let index = self.index;
        let k = kind as usize;
        let range = self.rec.deps[k] as usize..self.rec.deps[k + 1] as usize;
        index.deps().get(range).unwrap_or(&[]).iter().map(move |d| index.dep_ref(d))
    }
    pub fn provides(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Provides)
    }
    pub fn requires(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Requires)
    }
    pub fn conflicts(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Conflicts)
    }
    pub fn obsoletes(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Obsoletes)
    }
    pub fn recommends(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Recommends)
    }
    pub fn suggests(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Suggests)
    }
    pub fn supplements(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Supplements)
    }
    pub fn enhances(&self) -> impl Iterator<Item = DepRef<'a>> + 'a {
        self.deps_of(DepKind::Enhances)
    }
    /// primary.xml's file subset for this package (directories and ghosts included).
    pub fn files(&self) -> impl Iterator<Item = &'a str> + 'a {
        let index = self.index;
        let files: &'a [u32] = index.blob.array(S_FILES).expect("checked at open");
        files.get(self.rec.files.range()).unwrap_or(&[]).iter().map(move |f| index.strings().get(*f))
    }

    /// `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name(), self.evr(), self.arch())
    }
}

impl std::fmt::Debug for Package<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.nevra())
    }
}
