//! The rpmdb's secondary index tables and the rows one installed header contributes.
//!
//! Mirrors rpm's `tag2index` (`lib/rpmdb.c`, 4.16+): one row per array element, with
//! `idx` = the element's position; `Requirename` skips transient (install-only)
//! requires; `Triggername` skips repeated names; file-trigger tables use the trigger's
//! index (`FILETRIGGERINDEX`) as `idx`; rich dependencies are also indexed by operand;
//! a missing `Group` is indexed as `Unknown`.

use crate::header::{tag, DataType, Header};
use crate::rich::operand_keys;

/// How a table's keys are typed in SQLite (rpm binds string tags as TEXT, others BLOB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Text,
    Blob,
}

/// Byte order of integer keys (`Installtid`): rpm writes them in the byte order of the
/// host that runs it, so it must be the image's architecture, not the build machine's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ByteOrder {
    /// x86_64, aarch64, ppc64le, riscv64, i686, armv7hl.
    #[default]
    Little,
    /// s390x, ppc64.
    Big,
}

/// One index table as rpm creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexTable {
    pub name: &'static str,
    pub tag: u32,
    pub key_type: KeyType,
    /// rpm indexes `key` for string tags …
    pub key_index: bool,
    /// … and `hnum` for array tags (`init_index` in `lib/backend/sqlite.c`).
    pub hnum_index: bool,
}

const fn table(name: &'static str, tag: u32, key_type: KeyType, array: bool) -> IndexTable {
    IndexTable {
        name,
        tag,
        key_type,
        key_index: matches!(key_type, KeyType::Text),
        hnum_index: array,
    }
}

/// Every index table, in the order rpm opens (and so creates) them (`dbiTags`).
pub const TABLES: [IndexTable; 18] = [
    table("Name", tag::NAME, KeyType::Text, false),
    table("Basenames", tag::BASENAMES, KeyType::Text, true),
    table("Group", tag::GROUP, KeyType::Text, false),
    table("Requirename", tag::REQUIRENAME, KeyType::Text, true),
    table("Providename", tag::PROVIDENAME, KeyType::Text, true),
    table("Conflictname", tag::CONFLICTNAME, KeyType::Text, true),
    table("Obsoletename", tag::OBSOLETENAME, KeyType::Text, true),
    table("Triggername", tag::TRIGGERNAME, KeyType::Text, true),
    table("Dirnames", tag::DIRNAMES, KeyType::Text, true),
    table("Installtid", tag::INSTALLTID, KeyType::Blob, false),
    table("Sigmd5", tag::SIGMD5, KeyType::Blob, false),
    table("Sha1header", tag::SHA1HEADER, KeyType::Text, false),
    table("Filetriggername", tag::FILETRIGGERNAME, KeyType::Text, true),
    table(
        "Transfiletriggername",
        tag::TRANSFILETRIGGERNAME,
        KeyType::Text,
        true,
    ),
    table("Recommendname", tag::RECOMMENDNAME, KeyType::Text, true),
    table("Suggestname", tag::SUGGESTNAME, KeyType::Text, true),
    table("Supplementname", tag::SUPPLEMENTNAME, KeyType::Text, true),
    table("Enhancename", tag::ENHANCENAME, KeyType::Text, true),
];

/// One `(key, idx)` row of an index table (the `hnum` is the package's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: Vec<u8>,
    pub idx: u32,
}

// Dependency flag bits (`rpmsenseFlags`) that make a require install-time only.
const SENSE_POSTTRANS: u32 = 1 << 5;
const SENSE_PRETRANS: u32 = 1 << 7;
const SENSE_SCRIPT_PRE: u32 = 1 << 9;
const SENSE_SCRIPT_POST: u32 = 1 << 10;
const SENSE_SCRIPT_PREUN: u32 = 1 << 11;
const SENSE_SCRIPT_POSTUN: u32 = 1 << 12;
const SENSE_PREUNTRANS: u32 = 1 << 20;
const SENSE_POSTUNTRANS: u32 = 1 << 21;
const SENSE_RPMLIB: u32 = 1 << 24;
const SENSE_KEYRING: u32 = 1 << 26;
const SENSE_META: u32 = 1 << 29;
const INSTALL_ONLY: u32 = SENSE_SCRIPT_PRE
    | SENSE_SCRIPT_POST
    | SENSE_RPMLIB
    | SENSE_KEYRING
    | SENSE_PRETRANS
    | SENSE_POSTTRANS;
// The *UNTRANS bits only exist from rpm 4.20 on; a require carrying them is needed at
// erase time, which is how newer rpm, the one inside the image, classifies it.
const ERASE_ONLY: u32 =
    SENSE_SCRIPT_PREUN | SENSE_SCRIPT_POSTUN | SENSE_PREUNTRANS | SENSE_POSTUNTRANS;

/// rpm's `isTransientReq`: needed only while installing, so not worth an index row.
pub fn is_transient_require(flags: u32) -> bool {
    flags & INSTALL_ONLY != 0 && flags & ERASE_ONLY == 0 && flags & SENSE_META == 0
}

/// Tags whose rich values are also indexed by operand.
fn indexes_rich_operands(t: u32) -> bool {
    matches!(
        t,
        tag::REQUIRENAME
            | tag::CONFLICTNAME
            | tag::SUGGESTNAME
            | tag::SUPPLEMENTNAME
            | tag::RECOMMENDNAME
            | tag::ENHANCENAME
    )
}

/// The rows `table` gets for an installed header, in rpm's insertion order.
pub fn rows(table: &IndexTable, h: &Header<'_>, order: ByteOrder) -> Vec<Row> {
    let Some(entry) = h.entry(table.tag) else {
        if table.tag == tag::GROUP {
            // rpm: "preserve legacy behavior".
            return vec![Row {
                key: b"Unknown".to_vec(),
                idx: 0,
            }];
        }
        return Vec::new();
    };
    let keys: Vec<Vec<u8>> = match entry.ty {
        // headerGet on an I18N string yields one (the untranslated) value.
        DataType::I18nString => h
            .entry_strings(entry)
            .into_iter()
            .take(1)
            .map(<[u8]>::to_vec)
            .collect(),
        DataType::String | DataType::StringArray => h
            .entry_strings(entry)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect(),
        DataType::Bin => vec![h.data(entry).to_vec()],
        DataType::Null => Vec::new(),
        DataType::Char | DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let size = entry.len / entry.count.max(1) as usize;
            h.data(entry)
                .chunks_exact(size.max(1))
                .map(|be| match order {
                    ByteOrder::Big => be.to_vec(),
                    ByteOrder::Little => be.iter().rev().copied().collect(),
                })
                .collect()
        }
    };
    let require_flags = if table.tag == tag::REQUIRENAME {
        h.u32s(tag::REQUIREFLAGS)
    } else {
        Vec::new()
    };
    let trigger_index = match table.tag {
        tag::FILETRIGGERNAME => h.u32s(tag::FILETRIGGERINDEX),
        tag::TRANSFILETRIGGERNAME => h.u32s(tag::TRANSFILETRIGGERINDEX),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let idx = match table.tag {
            tag::FILETRIGGERNAME | tag::TRANSFILETRIGGERNAME => {
                trigger_index.get(i).copied().unwrap_or(i as u32)
            }
            _ => i as u32,
        };
        if table.tag == tag::REQUIRENAME
            && require_flags
                .get(i)
                .is_some_and(|&f| is_transient_require(f))
        {
            continue;
        }
        if table.tag == tag::TRIGGERNAME && keys[..i].contains(key) {
            continue;
        }
        out.push(Row {
            key: key.clone(),
            idx,
        });
        if key.first() == Some(&b'(')
            && entry.ty == DataType::StringArray
            && indexes_rich_operands(table.tag)
        {
            out.extend(operand_keys(key).into_iter().map(|key| Row { key, idx }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::{build, e, i32s, s, sa};

    fn find(name: &str) -> &'static IndexTable {
        TABLES.iter().find(|t| t.name == name).unwrap()
    }

    fn text_rows(name: &str, h: &Header<'_>) -> Vec<(String, u32)> {
        rows(find(name), h, ByteOrder::Little)
            .into_iter()
            .map(|r| (String::from_utf8(r.key).unwrap(), r.idx))
            .collect()
    }

    #[test]
    fn requires_skip_transient_and_index_rich_operands() {
        let blob = build(
            tag::HEADERIMMUTABLE,
            &[
                e(tag::NAME, s("beta")),
                e(
                    tag::REQUIREFLAGS,
                    i32s(&[0, 0x100, 0x200, 0x400, 0x1200, 0x100000a, 1 << 29 | 1 << 9]),
                ),
                e(
                    tag::REQUIRENAME,
                    sa(&[
                        "(a or b)",
                        "/bin/sh",
                        "/bin/sh",
                        "post",
                        "preun",
                        "rpmlib(X)",
                        "meta",
                    ]),
                ),
            ],
        );
        let h = Header::parse(&blob).unwrap();
        assert_eq!(
            text_rows("Requirename", &h),
            vec![
                ("(a or b)".into(), 0),
                ("a".into(), 0),
                ("b".into(), 0),
                ("/bin/sh".into(), 1),
                ("preun".into(), 4),
                ("meta".into(), 6),
            ]
        );
        assert_eq!(text_rows("Name", &h), vec![("beta".into(), 0)]);
        // No Group tag: rpm indexes "Unknown"; absent arrays give no rows.
        assert_eq!(text_rows("Group", &h), vec![("Unknown".into(), 0)]);
        assert!(text_rows("Providename", &h).is_empty());
    }

    #[test]
    fn triggers_dedup_and_file_triggers_use_their_index() {
        let blob = build(
            tag::HEADERIMMUTABLE,
            &[
                e(tag::TRIGGERNAME, sa(&["alpha", "alpha", "gamma"])),
                e(tag::FILETRIGGERNAME, sa(&["/usr/lib", "/usr/share"])),
                e(tag::FILETRIGGERINDEX, i32s(&[0, 3])),
                // Provides are never expanded, even if they look rich.
                e(tag::PROVIDENAME, sa(&["(x or y)"])),
            ],
        );
        let h = Header::parse(&blob).unwrap();
        assert_eq!(
            text_rows("Triggername", &h),
            vec![("alpha".into(), 0), ("gamma".into(), 2)]
        );
        assert_eq!(
            text_rows("Filetriggername", &h),
            vec![("/usr/lib".into(), 0), ("/usr/share".into(), 3)]
        );
        assert_eq!(text_rows("Providename", &h), vec![("(x or y)".into(), 0)]);
    }

    #[test]
    fn integer_keys_follow_target_byte_order() {
        let blob = build(
            tag::HEADERIMMUTABLE,
            &[e(tag::INSTALLTID, i32s(&[0x0102_0304]))],
        );
        let h = Header::parse(&blob).unwrap();
        let t = find("Installtid");
        assert_eq!(rows(t, &h, ByteOrder::Little)[0].key, vec![4, 3, 2, 1]);
        assert_eq!(rows(t, &h, ByteOrder::Big)[0].key, vec![1, 2, 3, 4]);
    }

    #[test]
    fn table_flags_match_rpm_schema() {
        let keyed: Vec<&str> = TABLES
            .iter()
            .filter(|t| !t.key_index)
            .map(|t| t.name)
            .collect();
        assert_eq!(keyed, vec!["Installtid", "Sigmd5"]);
        let scalar: Vec<&str> = TABLES
            .iter()
            .filter(|t| !t.hnum_index)
            .map(|t| t.name)
            .collect();
        assert_eq!(
            scalar,
            vec!["Name", "Group", "Installtid", "Sigmd5", "Sha1header"]
        );
    }
}
