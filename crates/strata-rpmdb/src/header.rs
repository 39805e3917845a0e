//! RPM header structures: parsing a header blob, reading entries, and locating the
//! signature and main headers inside a `.rpm` file.
//!
//! Pure functions over bytes. Every offset and count read from input is checked, so a
//! malformed header is an [`Error`], never a panic.

use crate::Error;

/// Magic that precedes a header inside a `.rpm` file (not stored in the rpmdb).
pub const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// Magic of the 96-byte lead at the start of a `.rpm` file.
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const LEAD_SIZE: usize = 96;
/// rpm's own limits (lib/header.cc, `hdrblobVerifyLengths` and the `hdrchk*` checks of
/// `hdrblobVerifyInfo`): an input beyond them is refused by rpm too, so refusing it costs no
/// real package and bounds what a hostile one makes us read and hold.
/// Index entries of a main header (`HEADER_TAGS_MAX`).
const MAX_TAGS: u32 = 0xffff;
/// Data store bytes of a main header (`HEADER_DATA_MAX`, 256 MiB: file signatures are big).
const MAX_DATA: u32 = 0x0fff_ffff;
/// A whole header blob, index and store (`headerMaxbytes`).
const MAX_BLOB: usize = 256 << 20;
/// The signature header holds a handful of digests and signatures: rpm allows 32 entries
/// and 64 MiB there.
const MAX_SIG_TAGS: u32 = 32;
const MAX_SIG_DATA: u32 = 64 << 20;
/// Elements of one non-binary entry (`HEADER_ARRAY_MAX`: "a million files in a package").
const MAX_ARRAY: u32 = 0x000f_ffff;
/// Tags below this are refused outside the leading region entry (`hdrchkTag`): it catches
/// negative tags and a second region.
const MIN_TAG: u32 = 100;
/// Region tags rpm recognises as a header's first entry (HEADERIMAGE, SIGNATURES, IMMUTABLE).
const REGION_TAGS: [u32; 3] = [61, 62, 63];
/// Size of one index entry: tag, type, offset, count (all big-endian 32-bit).
pub const ENTRY_SIZE: usize = 16;

/// Header tag numbers this crate needs (values from rpm's `rpmtag.h`).
pub mod tag {
    pub const HEADERSIGNATURES: u32 = 62;
    pub const HEADERIMMUTABLE: u32 = 63;
    pub const SIGSIZE: u32 = 257;
    pub const SIGPGP: u32 = 259;
    pub const SIGMD5: u32 = 261;
    pub const SIGGPG: u32 = 262;
    pub const SIGPGP5: u32 = 263;
    pub const SHA1HEADER: u32 = 269;
    /// First tag of the signature-header range (`HEADER_SIGBASE`).
    pub const SIGBASE: u32 = 256;
    /// First tag of the main-header range (`HEADER_TAGBASE`).
    pub const TAGBASE: u32 = 1000;
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const INSTALLTIME: u32 = 1008;
    pub const GROUP: u32 = 1016;
    pub const ARCH: u32 = 1022;
    pub const FILESTATES: u32 = 1029;
    pub const FILEFLAGS: u32 = 1037;
    pub const ARCHIVESIZE: u32 = 1046;
    pub const PROVIDENAME: u32 = 1047;
    pub const REQUIREFLAGS: u32 = 1048;
    pub const REQUIRENAME: u32 = 1049;
    pub const CONFLICTNAME: u32 = 1054;
    pub const TRIGGERNAME: u32 = 1066;
    pub const OBSOLETENAME: u32 = 1090;
    pub const PREFIXES: u32 = 1098;
    pub const INSTPREFIXES: u32 = 1099;
    pub const SOURCERPM: u32 = 1044;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const INSTALLCOLOR: u32 = 1127;
    pub const INSTALLTID: u32 = 1128;
    pub const RECOMMENDNAME: u32 = 5046;
    pub const SUGGESTNAME: u32 = 5049;
    pub const SUPPLEMENTNAME: u32 = 5052;
    pub const ENHANCENAME: u32 = 5055;
    pub const FILETRIGGERNAME: u32 = 5069;
    pub const FILETRIGGERINDEX: u32 = 5070;
    pub const TRANSFILETRIGGERNAME: u32 = 5079;
    pub const TRANSFILETRIGGERINDEX: u32 = 5080;
    pub const FILESIGNATURES: u32 = 5090;
    pub const FILESIGNATURELENGTH: u32 = 5091;
    pub const PAYLOADDIGEST: u32 = 5092;
    pub const PAYLOADDIGESTALGO: u32 = 5093;

    /// Signature-header tags that rpm renames when merging them into the main header.
    pub mod sig {
        pub const FILESIGNATURES: u32 = 274;
        pub const FILESIGNATURELENGTH: u32 = 275;
        pub const VERITYSIGNATURES: u32 = 276;
        pub const VERITYSIGNATUREALGO: u32 = 277;
        pub const SIZE: u32 = 1000;
        pub const PGP: u32 = 1002;
        pub const MD5: u32 = 1004;
        pub const GPG: u32 = 1005;
        pub const PGP5: u32 = 1006;
        pub const PAYLOADSIZE: u32 = 1007;
    }
}

/// Header data types (`rpmTagType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Null,
    Char,
    Int8,
    Int16,
    Int32,
    Int64,
    String,
    Bin,
    StringArray,
    I18nString,
}

impl DataType {
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => DataType::Null,
            1 => DataType::Char,
            2 => DataType::Int8,
            3 => DataType::Int16,
            4 => DataType::Int32,
            5 => DataType::Int64,
            6 => DataType::String,
            7 => DataType::Bin,
            8 => DataType::StringArray,
            9 => DataType::I18nString,
            _ => return None,
        })
    }

    pub fn raw(self) -> u32 {
        match self {
            DataType::Null => 0,
            DataType::Char => 1,
            DataType::Int8 => 2,
            DataType::Int16 => 3,
            DataType::Int32 => 4,
            DataType::Int64 => 5,
            DataType::String => 6,
            DataType::Bin => 7,
            DataType::StringArray => 8,
            DataType::I18nString => 9,
        }
    }

    /// Alignment of the type's data in the store (rpm's `typeAlign`).
    pub fn align(self) -> usize {
        match self {
            DataType::Int16 => 2,
            DataType::Int32 => 4,
            DataType::Int64 => 8,
            _ => 1,
        }
    }

    /// Size of one element of a fixed-size type; `None` for strings and binary.
    fn fixed_size(self) -> Option<usize> {
        match self {
            DataType::Null => Some(0),
            DataType::Char | DataType::Int8 => Some(1),
            DataType::Int16 => Some(2),
            DataType::Int32 => Some(4),
            DataType::Int64 => Some(8),
            _ => None,
        }
    }
}

/// One index entry, with its data already located and bounds-checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tag: u32,
    pub ty: DataType,
    /// Offset into the data store; negative only for region trailers.
    pub offset: i32,
    pub count: u32,
    /// Length in bytes of the entry's data (0 for region entries' own slot excluded).
    pub len: usize,
}

/// A parsed header: index entries plus the data store, borrowed from the input.
#[derive(Clone, Debug)]
pub struct Header<'a> {
    /// The whole header blob without magic: `il`, `dl`, index, store.
    pub blob: &'a [u8],
    pub entries: Vec<Entry>,
    pub store: &'a [u8],
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Which header of a package: the signature header has rpm's tighter limits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Signature,
    Main,
}

impl Kind {
    /// rpm's `hdrblobVerifyLengths`.
    fn check_lengths(self, il: u32, dl: u32) -> Result<(), Error> {
        let (what, max_il, max_dl) = match self {
            Kind::Signature => ("signature header", MAX_SIG_TAGS, MAX_SIG_DATA),
            Kind::Main => ("header", MAX_TAGS, MAX_DATA),
        };
        if il == 0 || il > max_il {
            return Err(Error::header(format!("{what}: {il} index entries, rpm allows 1 to {max_il}")));
        }
        if dl > max_dl {
            return Err(Error::header(format!("{what}: {dl} bytes of data, over rpm's limit of {max_dl}")));
        }
        Ok(())
    }

    /// Bytes of a header with these counts (magic and intro included), once they passed
    /// [`Kind::check_lengths`].
    fn header_len(self, il: u32, dl: u32) -> Result<usize, Error> {
        self.check_lengths(il, dl)?;
        Ok(16 + il as usize * ENTRY_SIZE + dl as usize)
    }
}

impl<'a> Header<'a> {
    /// Parses a header blob as stored in the rpmdb (no magic). Trailing bytes after the
    /// store are an error: the blob must be exactly one header.
    pub fn parse(blob: &'a [u8]) -> Result<Self, Error> {
        let (header, used) = Self::parse_prefix(blob)?;
        if used != blob.len() {
            return Err(Error::header(format!(
                "{} trailing bytes after header",
                blob.len() - used
            )));
        }
        Ok(header)
    }

    /// Parses a header that starts `bytes` (with or without the 8-byte magic) and returns
    /// it with the number of bytes it occupies (magic included).
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(Self, usize), Error> {
        Self::parse_prefix_as(bytes, Kind::Main)
    }

    fn parse_prefix_as(bytes: &'a [u8], kind: Kind) -> Result<(Self, usize), Error> {
        let skip = if bytes.starts_with(&HEADER_MAGIC[..4]) {
            HEADER_MAGIC.len()
        } else {
            0
        };
        let blob = &bytes[skip.min(bytes.len())..];
        let il = be32(blob, 0).ok_or_else(|| Error::header("truncated header intro"))?;
        let dl = be32(blob, 4).ok_or_else(|| Error::header("truncated header intro"))?;
        kind.check_lengths(il, dl)?;
        let index_end = 8 + il as usize * ENTRY_SIZE;
        let total = index_end + dl as usize;
        if total >= MAX_BLOB {
            return Err(Error::header(format!(
                "header of {total} bytes is over rpm's limit of {MAX_BLOB} bytes"
            )));
        }
        if blob.len() < total {
            return Err(Error::header(format!(
                "header needs {total} bytes, {} available",
                blob.len()
            )));
        }
        let store = &blob[index_end..total];
        let mut entries = Vec::with_capacity(il as usize);
        // End of the previous entry's data: rpm lays data out in index order, so data that
        // starts before it overlaps (`hdrblobVerifyInfo`), which a parser must not accept.
        let mut end = 0usize;
        // The store's region trailer, which no entry's data may overlap.
        let mut trailer: Option<usize> = None;
        for i in 0..il as usize {
            let at = 8 + i * ENTRY_SIZE;
            // Bounds were checked above; `be32` still returns Option, so map it.
            let field = |k: usize| be32(blob, at + 4 * k).ok_or_else(|| Error::header("index"));
            let tag = field(0)?;
            let raw_ty = field(1)?;
            let offset = field(2)? as i32;
            let count = field(3)?;
            let ty = DataType::from_raw(raw_ty)
                .filter(|t| *t != DataType::Null)
                .ok_or_else(|| Error::header(format!("tag {tag}: unknown type {raw_ty}")))?;
            let len = entry_len(store, tag, ty, offset, count)?;
            let region = i == 0 && REGION_TAGS.contains(&tag) && ty == DataType::Bin && count == 16;
            if region {
                trailer = Some(offset as usize);
            } else {
                let bad = |what: String| Error::header(format!("tag {tag}: {what}"));
                if tag < MIN_TAG {
                    return Err(bad(format!("tag number below {MIN_TAG} outside a region entry")));
                }
                if ty != DataType::Bin && count > MAX_ARRAY {
                    return Err(bad(format!("{count} elements, over rpm's limit of {MAX_ARRAY}")));
                }
                let start = offset as usize;
                if start < end {
                    return Err(bad("data overlaps the previous entry's".into()));
                }
                end = start + len;
                if trailer.is_some_and(|t| start < t + 16 && end > t) {
                    return Err(bad("data overlaps the region trailer".into()));
                }
            }
            entries.push(Entry {
                tag,
                ty,
                offset,
                count,
                len,
            });
        }
        Ok((
            Header {
                blob: &blob[..total],
                entries,
                store,
            },
            skip + total,
        ))
    }

    pub fn entry(&self, tag: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    pub fn has(&self, tag: u32) -> bool {
        self.entry(tag).is_some()
    }

    /// The raw data bytes of an entry.
    pub fn data(&self, entry: &Entry) -> &'a [u8] {
        // Offsets were validated by `entry_len` at parse time.
        let start = entry.offset.max(0) as usize;
        self.store.get(start..start + entry.len).unwrap_or(&[])
    }

    /// Strings of a STRING, STRING_ARRAY or I18NSTRING entry (I18N: every locale's
    /// value, the first being the untranslated one). Non-UTF-8 bytes are replaced,
    /// because rpm treats these as opaque C strings and so must we, without failing.
    pub fn strings(&self, tag: u32) -> Vec<String> {
        self.raw_strings(tag)
            .into_iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// Like [`Header::strings`], as the raw bytes (without NUL) stored in the header.
    pub fn raw_strings(&self, tag: u32) -> Vec<&'a [u8]> {
        match self.entry(tag) {
            Some(e) => self.entry_strings(e),
            None => Vec::new(),
        }
    }

    /// The strings of one string-typed entry (empty for other types).
    pub fn entry_strings(&self, e: &Entry) -> Vec<&'a [u8]> {
        match e.ty {
            DataType::String | DataType::StringArray | DataType::I18nString => self
                .data(e)
                .split(|&b| b == 0)
                .take(e.count as usize)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// First string of a string-typed entry.
    pub fn string(&self, tag: u32) -> Option<String> {
        self.strings(tag).into_iter().next()
    }

    /// Values of an INT32 entry.
    pub fn u32s(&self, tag: u32) -> Vec<u32> {
        match self.entry(tag) {
            Some(e) if e.ty == DataType::Int32 => self
                .data(e)
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Values of an INT16 entry, widened.
    pub fn u16s(&self, tag: u32) -> Vec<u16> {
        match self.entry(tag) {
            Some(e) if e.ty == DataType::Int16 => self
                .data(e)
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Values of an INT64 entry.
    pub fn u64s(&self, tag: u32) -> Vec<u64> {
        match self.entry(tag) {
            Some(e) if e.ty == DataType::Int64 => self
                .data(e)
                .chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Region check: the first entry is `region_tag`, its trailer claims every entry and
    /// the whole store. rpm keeps such a region byte for byte when it installs, which is
    /// what lets the signatures over it still verify in the rpmdb.
    pub fn check_full_region(&self, region_tag: u32) -> Result<(), Error> {
        let first = &self.entries[0];
        if first.tag != region_tag || first.ty != DataType::Bin || first.count != 16 {
            return Err(Error::header(format!(
                "first entry is tag {} (type {:?}, count {}), not region tag {region_tag}",
                first.tag, first.ty, first.count
            )));
        }
        let at = first.offset as usize;
        let trailer = self
            .store
            .get(at..at + 16)
            .ok_or_else(|| Error::header("region trailer out of bounds"))?;
        let t_tag = be32(trailer, 0).unwrap_or(0);
        let t_off = be32(trailer, 8).unwrap_or(0) as i32;
        let ril = t_off.checked_neg().map(|n| n as i64 / ENTRY_SIZE as i64);
        if t_tag != region_tag || t_off > 0 || t_off % ENTRY_SIZE as i32 != 0 {
            return Err(Error::header("malformed region trailer"));
        }
        if ril != Some(self.entries.len() as i64) || at + 16 != self.store.len() {
            return Err(Error::header(
                "header has entries outside its immutable region (legacy or already-installed header)",
            ));
        }
        Ok(())
    }
}

/// Validates an entry against the store and returns its data length.
fn entry_len(
    store: &[u8],
    tag: u32,
    ty: DataType,
    offset: i32,
    count: u32,
) -> Result<usize, Error> {
    let bad = |what: &str| Error::header(format!("tag {tag}: {what}"));
    if offset < 0 || offset as usize > store.len() {
        return Err(bad("data offset out of bounds"));
    }
    // rpm's `hdrchkCount`: no type has more elements than the store has bytes.
    if count == 0 || count as usize > store.len() {
        return Err(bad("implausible count"));
    }
    let start = offset as usize;
    if !start.is_multiple_of(ty.align()) {
        return Err(bad("misaligned data"));
    }
    let rest = &store[start..];
    let len = match ty {
        DataType::String if count != 1 => return Err(bad("STRING with count != 1")),
        DataType::String | DataType::StringArray | DataType::I18nString => {
            let mut len = 0usize;
            for _ in 0..count {
                let nul = rest[len..]
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| bad("unterminated string"))?;
                len += nul + 1;
            }
            len
        }
        DataType::Bin => count as usize,
        fixed => fixed.fixed_size().unwrap_or(0) * count as usize,
    };
    if len > rest.len() {
        return Err(bad("data runs past the store"));
    }
    Ok(len)
}

/// The two headers of a `.rpm` file, borrowed from its bytes.
#[derive(Clone, Debug)]
pub struct RpmHeaders<'a> {
    pub signature: Header<'a>,
    pub main: Header<'a>,
    /// Byte offset where the payload starts (after the main header).
    pub payload_offset: usize,
}

/// Locates the signature and main headers of a `.rpm` file: a 96-byte lead, the
/// signature header padded to 8 bytes, then the main header. Only the leading bytes up
/// to the payload are needed; see [`rpm_headers_len`] to read no more than that.
pub fn parse_rpm(bytes: &[u8]) -> Result<RpmHeaders<'_>, Error> {
    if bytes.len() < LEAD_SIZE || bytes[..4] != LEAD_MAGIC {
        return Err(Error::header("not an rpm file (no lead magic)"));
    }
    let sig_start = LEAD_SIZE;
    if !bytes[sig_start..].starts_with(&HEADER_MAGIC[..4]) {
        return Err(Error::header("signature header magic missing"));
    }
    let (signature, sig_len) = Header::parse_prefix_as(&bytes[sig_start..], Kind::Signature)?;
    let main_start = (sig_start + sig_len + 7) & !7;
    let rest = bytes
        .get(main_start..)
        .ok_or_else(|| Error::header("file ends after signature header"))?;
    if !rest.starts_with(&HEADER_MAGIC[..4]) {
        return Err(Error::header("main header magic missing"));
    }
    let (main, main_len) = Header::parse_prefix(rest)?;
    Ok(RpmHeaders {
        signature,
        main,
        payload_offset: main_start + main_len,
    })
}

/// How many bytes of a `.rpm` file must be read to hold both headers, given at least
/// the first `bytes` of it: `Ok(None)` when more bytes are needed to tell.
///
/// The counts are checked against rpm's limits here already, so a caller reading that many
/// bytes never reads (or allocates) more than rpm would for a hostile file.
pub fn rpm_headers_len(bytes: &[u8]) -> Result<Option<usize>, Error> {
    let header_len = |at: usize, kind: Kind| -> Result<Option<usize>, Error> {
        let (Some(il), Some(dl)) = (be32(bytes, at + 8), be32(bytes, at + 12)) else {
            return Ok(None);
        };
        kind.header_len(il, dl).map(Some)
    };
    if bytes.len() >= 4 && bytes[..4] != LEAD_MAGIC {
        return Err(Error::header("not an rpm file (no lead magic)"));
    }
    let Some(sig_len) = header_len(LEAD_SIZE, Kind::Signature)? else {
        return Ok(None);
    };
    let main_start = (LEAD_SIZE + sig_len + 7) & !7;
    Ok(header_len(main_start, Kind::Main)?.map(|len| main_start + len))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob (no magic) from (tag, type, data) with a full immutable
    /// region, laid out the way rpmbuild does: region entry first, data aligned.
    pub fn build(region_tag: u32, entries: &[(u32, DataType, u32, Vec<u8>)]) -> Vec<u8> {
        let mut store = Vec::new();
        let mut index = Vec::new();
        let mut sorted: Vec<_> = entries.to_vec();
        sorted.sort_by_key(|e| e.0);
        for (t, ty, count, data) in &sorted {
            while !store.len().is_multiple_of(ty.align()) {
                store.push(0);
            }
            index.push((*t, ty.raw(), store.len() as i32, *count));
            store.extend_from_slice(data);
        }
        let il = sorted.len() + 1;
        let trailer_at = store.len() as i32;
        store.extend_from_slice(&region_tag.to_be_bytes());
        store.extend_from_slice(&7u32.to_be_bytes());
        store.extend_from_slice(&(-(il as i32 * 16)).to_be_bytes());
        store.extend_from_slice(&16u32.to_be_bytes());
        let mut out = Vec::new();
        out.extend_from_slice(&(il as u32).to_be_bytes());
        out.extend_from_slice(&(store.len() as u32).to_be_bytes());
        for (t, ty, off, c) in std::iter::once((region_tag, 7, trailer_at, 16)).chain(index) {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&ty.to_be_bytes());
            out.extend_from_slice(&off.to_be_bytes());
            out.extend_from_slice(&c.to_be_bytes());
        }
        out.extend_from_slice(&store);
        out
    }

    pub fn s(text: &str) -> (DataType, u32, Vec<u8>) {
        let mut v = text.as_bytes().to_vec();
        v.push(0);
        (DataType::String, 1, v)
    }

    pub fn sa(items: &[&str]) -> (DataType, u32, Vec<u8>) {
        let mut v = Vec::new();
        for i in items {
            v.extend_from_slice(i.as_bytes());
            v.push(0);
        }
        (DataType::StringArray, items.len() as u32, v)
    }

    pub fn i32s(items: &[u32]) -> (DataType, u32, Vec<u8>) {
        let v = items.iter().flat_map(|x| x.to_be_bytes()).collect();
        (DataType::Int32, items.len() as u32, v)
    }

    pub fn e(tag: u32, (ty, c, d): (DataType, u32, Vec<u8>)) -> (u32, DataType, u32, Vec<u8>) {
        (tag, ty, c, d)
    }

    #[test]
    fn parses_built_header_and_reads_values() {
        let blob = build(
            tag::HEADERIMMUTABLE,
            &[
                e(tag::NAME, s("hello")),
                e(tag::REQUIREFLAGS, i32s(&[0, 0x200])),
                e(tag::REQUIRENAME, sa(&["a", "b"])),
            ],
        );
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.string(tag::NAME).as_deref(), Some("hello"));
        assert_eq!(h.strings(tag::REQUIRENAME), vec!["a", "b"]);
        assert_eq!(h.u32s(tag::REQUIREFLAGS), vec![0, 0x200]);
        h.check_full_region(tag::HEADERIMMUTABLE).unwrap();
        // With magic prepended the same header is found and its length includes it.
        let mut with_magic = HEADER_MAGIC.to_vec();
        with_magic.extend_from_slice(&blob);
        let (again, used) = Header::parse_prefix(&with_magic).unwrap();
        assert_eq!(used, with_magic.len());
        assert_eq!(again.entries, h.entries);
    }

    #[test]
    fn rejects_malformed_headers_without_panicking() {
        let good = build(tag::HEADERIMMUTABLE, &[e(tag::NAME, s("x"))]);
        // Every truncation fails cleanly.
        for cut in 0..good.len() {
            assert!(Header::parse(&good[..cut]).is_err(), "cut {cut}");
        }
        // Trailing garbage is not silently accepted.
        let mut long = good.clone();
        long.push(0);
        assert!(Header::parse(&long).is_err());
        // Corrupt every byte of the index in turn: never a panic.
        for i in 8..8 + 2 * ENTRY_SIZE {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = Header::parse(&bad).map(|h| h.check_full_region(tag::HEADERIMMUTABLE));
        }
        // An unterminated string is caught: one STRING entry, data "xy" without NUL.
        let mut bad = Vec::new();
        for word in [1u32, 2, tag::NAME, 6, 0, 1] {
            bad.extend_from_slice(&word.to_be_bytes());
        }
        bad.extend_from_slice(b"xy");
        assert!(Header::parse(&bad).is_err());
        let n = bad.len();
        bad[n - 1] = 0;
        assert!(Header::parse(&bad).is_ok());
    }

    #[test]
    fn region_must_cover_whole_header() {
        let good = build(tag::HEADERIMMUTABLE, &[e(tag::NAME, s("x"))]);
        let h = Header::parse(&good).unwrap();
        assert!(h.check_full_region(tag::HEADERSIGNATURES).is_err());
        let no_region = raw(&[(tag::NAME, 6, 0, 1), (tag::VERSION, 6, 2, 1)], b"x\x001\x00");
        let h = Header::parse(&no_region).unwrap();
        assert!(h.check_full_region(tag::HEADERIMMUTABLE).is_err());
    }

    /// A header blob from raw index entries (tag, type, offset, count) and a store.
    fn raw(index: &[(u32, u32, u32, u32)], store: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(index.len() as u32).to_be_bytes());
        out.extend_from_slice(&(store.len() as u32).to_be_bytes());
        for &(t, ty, off, c) in index {
            for w in [t, ty, off, c] {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        out.extend_from_slice(store);
        out
    }

    /// rpm's hdrblob checks, each on a header that breaks only it.
    #[test]
    fn rpms_own_limits_hold() {
        let err = |blob: &[u8]| Header::parse(blob).unwrap_err().to_string();
        // Overlapping data: VERSION's string starts inside NAME's.
        assert!(err(&raw(&[(tag::NAME, 6, 0, 1), (tag::VERSION, 6, 1, 1)], b"ab\x00")).contains("overlaps"));
        // Data overlapping the region trailer.
        let mut good = build(tag::HEADERIMMUTABLE, &[e(tag::NAME, s("x"))]);
        Header::parse(&good).unwrap();
        let trailer_at = (good.len() - 8 - 2 * ENTRY_SIZE - 16) as u32;
        good[8 + ENTRY_SIZE + 8..8 + ENTRY_SIZE + 12].copy_from_slice(&trailer_at.to_be_bytes());
        let msg = err(&good);
        assert!(msg.contains("overlaps the region trailer"), "{msg}");
        // Tags below 100 only as the leading region entry; type 0 (NULL) is not stored.
        assert!(err(&raw(&[(tag::NAME, 6, 0, 1), (99, 6, 2, 1)], b"x\x00y\x00")).contains("below 100"));
        assert!(err(&raw(&[(tag::NAME, 0, 0, 1)], b"x\x00")).contains("unknown type 0"));
        // More elements than the store has bytes (rpm's hdrchkCount).
        assert!(err(&raw(&[(tag::NAME, 7, 0, 3)], b"ab")).contains("implausible count"));
        // A million-and-one element array.
        let n = MAX_ARRAY + 1;
        assert!(err(&raw(&[(tag::FILESTATES, 2, 0, n)], &vec![0; n as usize])).contains("over rpm's limit of 1048575"));
        Header::parse(&raw(&[(tag::FILESTATES, 7, 0, n)], &vec![0; n as usize])).unwrap();
        // Counts in the intro, before anything is read.
        let mut intro = 0x1_0000u32.to_be_bytes().to_vec();
        intro.extend_from_slice(&0u32.to_be_bytes());
        assert!(err(&intro).contains("65536 index entries, rpm allows 1 to 65535"));
        let mut intro = 1u32.to_be_bytes().to_vec();
        intro.extend_from_slice(&0x1000_0000u32.to_be_bytes());
        assert!(err(&intro).contains("over rpm's limit of 268435455"));
    }

    #[test]
    fn signature_header_has_rpms_tighter_limits() {
        let lead = || {
            let mut f = vec![0u8; LEAD_SIZE];
            f[..4].copy_from_slice(&LEAD_MAGIC);
            f.extend_from_slice(&HEADER_MAGIC);
            f
        };
        // 33 signature entries: refused from the intro alone, by both entry points.
        let mut file = lead();
        file.extend_from_slice(&33u32.to_be_bytes());
        file.extend_from_slice(&16u32.to_be_bytes());
        let msg = rpm_headers_len(&file).unwrap_err().to_string();
        assert!(msg.contains("signature header: 33 index entries, rpm allows 1 to 32"), "{msg}");
        assert!(parse_rpm(&file).unwrap_err().to_string().contains("signature header"));
        // 64 MiB + 1 of signature data: the caller is never told to read it.
        let mut file = lead();
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(&((64u32 << 20) + 1).to_be_bytes());
        let msg = rpm_headers_len(&file).unwrap_err().to_string();
        assert!(msg.contains("over rpm's limit of 67108864"), "{msg}");
        // A main header claiming 4 GiB of data.
        let sig = build(tag::HEADERSIGNATURES, &[e(tag::SHA1HEADER, s("ab"))]);
        let mut file = lead();
        file.extend_from_slice(&sig);
        while !file.len().is_multiple_of(8) {
            file.push(0);
        }
        file.extend_from_slice(&HEADER_MAGIC);
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(rpm_headers_len(&file).unwrap_err().to_string().contains("over rpm's limit of 268435455"));
    }

    #[test]
    fn rpm_file_layout_is_found() {
        let sig = build(tag::HEADERSIGNATURES, &[e(tag::SHA1HEADER, s("ab"))]);
        let main = build(tag::HEADERIMMUTABLE, &[e(tag::NAME, s("pkg"))]);
        let mut file = vec![0u8; LEAD_SIZE];
        file[..4].copy_from_slice(&LEAD_MAGIC);
        file.extend_from_slice(&HEADER_MAGIC);
        file.extend_from_slice(&sig);
        while !file.len().is_multiple_of(8) {
            file.push(0);
        }
        file.extend_from_slice(&HEADER_MAGIC);
        file.extend_from_slice(&main);
        let payload_at = file.len();
        file.extend_from_slice(b"payload");
        let r = parse_rpm(&file).unwrap();
        assert_eq!(r.main.string(tag::NAME).as_deref(), Some("pkg"));
        assert_eq!(r.signature.string(tag::SHA1HEADER).as_deref(), Some("ab"));
        assert_eq!(r.payload_offset, payload_at);
        assert_eq!(rpm_headers_len(&file).unwrap(), Some(payload_at));
        assert_eq!(rpm_headers_len(&file[..LEAD_SIZE + 4]).unwrap(), None);
        assert!(parse_rpm(&file[..payload_at - 1]).is_err());
        assert!(parse_rpm(b"not an rpm at all, definitely not").is_err());
    }
}
