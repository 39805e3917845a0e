//! Reading an rpmdb back: the installed packages' NEVRAs (for checks and `strata
//! inspect`), from any SQLite rpmdb, whether strata or rpm wrote it.

use crate::header::{tag, Header};
use crate::Error;
use rusqlite::{Connection, OpenFlags};
use std::fmt;
use std::path::Path;

/// Name, epoch, version, release and architecture of an installed package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nevra {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// `None` for headers without an arch, such as `gpg-pubkey` entries.
    pub arch: Option<String>,
}

impl fmt::Display for Nevra {
    /// rpm's `%{NEVRA}`: `name-[epoch:]version-release[.arch]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.name)?;
        if let Some(e) = self.epoch {
            write!(f, "{e}:")?;
        }
        write!(f, "{}-{}", self.version, self.release)?;
        if let Some(a) = &self.arch {
            write!(f, ".{a}")?;
        }
        Ok(())
    }
}

impl Nevra {
    /// From an installed (or package) header; NAME, VERSION and RELEASE are required,
    /// as rpm requires them of every rpmdb record.
    pub fn from_header(h: &Header<'_>) -> Result<Self, Error> {
        let need = |t: u32, what: &str| {
            h.string(t)
                .ok_or_else(|| Error::header(format!("header has no {what}")))
        };
        Ok(Nevra {
            name: need(tag::NAME, "name")?,
            epoch: h.u32s(tag::EPOCH).first().copied(),
            version: need(tag::VERSION, "version")?,
            release: need(tag::RELEASE, "release")?,
            arch: h.string(tag::ARCH),
        })
    }
}

/// One record of the `Packages` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledRecord {
    /// rpm's header number (the install instance).
    pub hnum: u32,
    pub nevra: Nevra,
}

/// Percent-encodes a path for an SQLite `file:` URI.
fn file_uri(path: &Path, query: &str) -> String {
    let mut out = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(*b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

/// Opens an rpmdb without changing anything on disk. A database with a non-empty WAL
/// (rpm still has it open, or crashed) must be read through SQLite's WAL machinery;
/// otherwise it is opened as immutable so no `-shm`/`-wal` appears next to it, which
/// matters when the file lies inside an image layer being inspected.
fn open_read_only(path: &Path) -> Result<Connection, Error> {
    if !path.is_file() {
        return Err(Error::Io(
            path.display().to_string(),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no rpmdb file"),
        ));
    }
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    let live_wal = std::fs::metadata(&wal)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    let query = if live_wal {
        "mode=ro"
    } else {
        "mode=ro&immutable=1"
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(file_uri(path, query), flags)
        .map_err(|e| Error::Database(format!("open {}: {e}", path.display())))
}

/// Every header blob in the database, by header number.
pub fn read_blobs(path: &Path) -> Result<Vec<(u32, Vec<u8>)>, Error> {
    let conn = open_read_only(path)?;
    let err = |e: rusqlite::Error| Error::Database(format!("read {}: {e}", path.display()));
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}

/// The installed packages, in header-number (install) order.
pub fn read_installed(path: &Path) -> Result<Vec<InstalledRecord>, Error> {
    read_blobs(path)?
        .into_iter()
        .map(|(hnum, blob)| {
            let h =
                Header::parse(&blob).map_err(|e| Error::header(format!("record {hnum}: {e}")))?;
            Ok(InstalledRecord {
                hnum,
                nevra: Nevra::from_header(&h)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::{build, e, s};
    use crate::install::{InstallOptions, InstalledPackage};
    use crate::write::write_rpmdb;

    #[test]
    fn nevra_display_matches_rpm() {
        let mut n = Nevra {
            name: "alpha".into(),
            epoch: Some(1),
            version: "1.2".into(),
            release: "3".into(),
            arch: Some("noarch".into()),
        };
        assert_eq!(n.to_string(), "alpha-1:1.2-3.noarch");
        n.epoch = None;
        n.arch = None;
        assert_eq!(n.to_string(), "alpha-1.2-3");
    }

    #[test]
    fn reads_back_what_was_written_without_touching_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        // Characters that need escaping in a URI.
        let p = dir.path().join("we?ird #dir%").join("rpmdb.sqlite");
        let pkgs: Vec<_> = ["b", "a"]
            .iter()
            .map(|name| {
                let main = build(
                    tag::HEADERIMMUTABLE,
                    &[
                        e(tag::NAME, s(name)),
                        e(tag::VERSION, s("1")),
                        e(tag::RELEASE, s("2")),
                    ],
                );
                InstalledPackage::from_headers(&main, None).unwrap()
            })
            .collect();
        write_rpmdb(&p, &pkgs, &InstallOptions::at(1)).unwrap();
        let got = read_installed(&p).unwrap();
        let names: Vec<_> = got.iter().map(|r| (r.hnum, r.nevra.to_string())).collect();
        assert_eq!(
            names,
            vec![(1, "b-1-2".to_string()), (2, "a-1-2".to_string())]
        );
        // The database and its two empty WAL side files; the reader added nothing.
        let files: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(files.len(), 3, "reader left side files");
        for suffix in crate::WAL_SIDE_FILES {
            assert_eq!(std::fs::metadata(format!("{}{suffix}", p.display())).unwrap().len(), 0);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_installed(&dir.path().join("missing.sqlite")).is_err());
        let junk = dir.path().join("junk.sqlite");
        std::fs::write(
            &junk,
            b"definitely not sqlite, long enough to look like a header",
        )
        .unwrap();
        assert!(read_installed(&junk).is_err());
        // A valid SQLite file whose blob is not a header.
        let bad = dir.path().join("bad.sqlite");
        let c = Connection::open(&bad).unwrap();
        c.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
             INSERT INTO Packages VALUES (1, x'00000001');",
        )
        .unwrap();
        drop(c);
        assert!(read_installed(&bad).is_err());
    }
}
