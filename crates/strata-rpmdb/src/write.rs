//! Writing `rpmdb.sqlite` the way rpm's SQLite backend (`lib/backend/sqlite.c`) lays
//! it out, so that rpm inside the image treats it as its own.

use crate::header::Header;
use crate::index::{rows, KeyType, TABLES};
use crate::install::{InstallOptions, InstalledPackage};
use crate::Error;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// Where rpm keeps its database below an image root, relative to the root (rpm's
/// `%_dbpath` on the distributions strata targets; Fedora ≥ 36 symlinks it to
/// `/usr/lib/sysimage/rpm`).
pub const DEFAULT_DBPATH: &str = "var/lib/rpm";
/// File name of the SQLite backend's database inside the dbpath.
pub const DB_FILE: &str = "rpmdb.sqlite";

/// `CREATE TABLE` for the primary table, in rpm's exact text: SQLite stores the text
/// verbatim in `sqlite_master`, and keeping it identical keeps the file identical.
const PACKAGES_DDL: &str =
    "CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)";

/// The SQL rpm runs to create the database, in its order.
pub fn schema_statements() -> Vec<String> {
    let mut out = vec![PACKAGES_DDL.to_string()];
    for t in &TABLES {
        let key_type = match t.key_type {
            KeyType::Text => "TEXT",
            KeyType::Blob => "BLOB",
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS '{0}' (key '{1}' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))",
            t.name, key_type
        ));
        if t.key_index {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS '{0}_key_idx' ON '{0}'(key ASC)",
                t.name
            ));
        }
        if t.hnum_index {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS '{0}_hnum_idx' ON '{0}'(hnum ASC)",
                t.name
            ));
        }
    }
    out
}

fn db_err(context: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Database(format!("{context}: {e}"))
}

/// A key bound as rpm binds it: TEXT from the header's raw bytes (no UTF-8 check, rpm
/// does none), or BLOB.
struct Key<'a>(KeyType, &'a [u8]);

impl rusqlite::ToSql for Key<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            KeyType::Text => ValueRef::Text(self.1),
            KeyType::Blob => ValueRef::Blob(self.1),
        }))
    }
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a new rpmdb at `path` (e.g. `ROOT/var/lib/rpm/rpmdb.sqlite`) recording
/// `packages` as installed, in the given order (which becomes `hnum` 1, 2, …; pass a
/// deterministic install order). An existing file at `path` is replaced atomically.
///
/// Same inputs give a byte-identical file: nothing depends on the clock, the host,
/// hash ordering or the umask ([`DB_FILE_MODE`]). The file is left in WAL mode with an
/// empty `-wal` and `-shm` beside it ([`WAL_SIDE_FILES`]), as rpm's persistent WAL
/// leaves them after a clean close: without both, SQLite cannot open a WAL database for
/// a user who may not write its folder, so `rpm -qa` as a non-root user would fail.
pub fn write_rpmdb(
    path: &Path,
    packages: &[InstalledPackage],
    opts: &InstallOptions,
) -> Result<(), Error> {
    // Compute everything before touching the disk, so bad input leaves no file behind.
    let blobs = packages
        .iter()
        .map(|p| p.installed_blob(opts))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |e: std::io::Error| Error::Io(path.display().to_string(), e);
    create_dirs(dir).map_err(io)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::Input(format!("{}: not a file path", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(".strata-tmp");
    let tmp = dir.join(tmp_name);
    let side_files = ["", "-journal", "-wal", "-shm"];
    for suffix in side_files {
        remove_if_exists(&side_file(&tmp, suffix)).map_err(io)?;
    }
    let result = write_db(&tmp, &blobs, opts).and_then(|()| finish(&tmp, path));
    if result.is_err() {
        for suffix in side_files {
            let _ = std::fs::remove_file(side_file(&tmp, suffix));
        }
    }
    result
}

/// The modes rpm gives its database under the standard umask 022: the file 0644 (rpm
/// creates it with the caller's umask, and only a world-readable one lets a scanner or
/// `rpm -qa` as a non-root user read the image's package list), and `%_dbpath` with its
/// missing parents 0755 (rpm's transaction runs under umask 022). Set explicitly, so that
/// the caller's umask never reaches an image.
pub const DB_FILE_MODE: u32 = 0o644;
/// See [`DB_FILE_MODE`].
pub const DB_DIR_MODE: u32 = 0o755;
/// The side files left (empty, [`DB_FILE_MODE`]) beside the database. rpm enables
/// `SQLITE_FCNTL_PERSIST_WAL` so that they outlive its connection and readers without
/// write access can open the database; its `-shm` holds random WAL salts, so strata
/// leaves it empty (deterministic), and the first reader builds the index in memory (a
/// non-root one) or in the file (root).
pub const WAL_SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// `create_dir_all`, with every directory it creates given [`DB_DIR_MODE`] whatever the
/// umask; existing ones are left as they are.
fn create_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DB_DIR_MODE)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new empty file with exactly `mode`.
fn empty_file(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn write_db(tmp: &Path, blobs: &[Vec<u8>], opts: &InstallOptions) -> Result<(), Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(tmp, flags).map_err(db_err("create database"))?;
    // A fresh scratch file: on failure it is deleted, so no rollback journal is needed;
    // durability comes from the fsync before the rename.
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(db_err("set pragmas"))?;
    let txn = conn.transaction().map_err(db_err("begin"))?;
    for stmt in schema_statements() {
        txn.execute(&stmt, []).map_err(db_err("create schema"))?;
    }
    {
        let mut put_pkg = txn
            .prepare("INSERT INTO 'Packages' VALUES (?, ?)")
            .map_err(db_err("prepare"))?;
        let mut put_idx = Vec::new();
        for t in &TABLES {
            let sql = format!("INSERT INTO '{}' VALUES (?, ?, ?)", t.name);
            put_idx.push(txn.prepare(&sql).map_err(db_err("prepare"))?);
        }
        for (i, blob) in blobs.iter().enumerate() {
            let hnum = i as i64 + 1;
            put_pkg
                .execute(params![hnum, blob])
                .map_err(db_err("insert package"))?;
            let h = Header::parse(blob)?;
            for (t, stmt) in TABLES.iter().zip(put_idx.iter_mut()) {
                for row in rows(t, &h, opts.index_byte_order) {
                    stmt.execute(params![Key(t.key_type, &row.key), hnum, row.idx])
                        .map_err(db_err("insert index row"))?;
                }
            }
        }
    }
    txn.commit().map_err(db_err("commit"))?;
    // rpm closes with `PRAGMA optimize`, which leaves a sqlite_stat1 table; a full
    // ANALYZE gives the same table with statistics that depend only on the content.
    // The bundled SQLite also builds sqlite_stat4, which rpm's system SQLite does not
    // make; dropping it keeps the schema rpm's.
    conn.execute_batch("ANALYZE; DROP TABLE IF EXISTS sqlite_stat4;")
        .map_err(db_err("analyze"))?;
    // rpm runs its database in WAL mode and the mode is stored in the file header.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_err("set WAL mode"))?;
    if mode != "wal" {
        return Err(Error::Database(format!(
            "journal_mode is {mode}, expected wal"
        )));
    }
    conn.close().map_err(|(_, e)| db_err("close")(e))?;
    Ok(())
}

/// Makes the finished scratch file durable and moves it into place.
fn finish(tmp: &Path, path: &Path) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io(path.display().to_string(), e);
    // The last connection's close checkpoints and deletes the WAL; a WAL with content
    // left over would mean the main file is incomplete.
    let wal = side_file(tmp, "-wal");
    if let Ok(meta) = std::fs::metadata(&wal) {
        if meta.len() > 0 {
            return Err(Error::Database(format!(
                "{} was not checkpointed",
                wal.display()
            )));
        }
    }
    remove_if_exists(&wal).map_err(io)?;
    remove_if_exists(&side_file(tmp, "-shm")).map_err(io)?;
    std::fs::File::open(tmp)
        .and_then(|f| {
            // SQLite created the file with the caller's umask (0600 under umask 077).
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(DB_FILE_MODE))?;
            f.sync_all()
        })
        .map_err(io)?;
    std::fs::rename(tmp, path).map_err(io)?;
    // rpm never sees the old file's side files with the new database.
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_exists(&side_file(path, suffix)).map_err(io)?;
    }
    for suffix in WAL_SIDE_FILES {
        empty_file(&side_file(path, suffix), DB_FILE_MODE).map_err(io)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Persist the rename; directories cannot be fsynced everywhere, so best effort.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tag;
    use crate::header::tests::{build, e, i32s, s, sa};

    fn pkg(name: &str) -> InstalledPackage {
        let main = build(
            tag::HEADERIMMUTABLE,
            &[
                e(tag::NAME, s(name)),
                e(tag::VERSION, s("1")),
                e(tag::RELEASE, s("1")),
                e(tag::ARCH, s("noarch")),
                e(tag::DIRINDEXES, i32s(&[0])),
                e(tag::BASENAMES, sa(&[name])),
                e(tag::DIRNAMES, sa(&["/usr/bin/"])),
                e(tag::PROVIDENAME, sa(&[name])),
            ],
        );
        InstalledPackage::from_headers(&main, None).unwrap()
    }

    #[test]
    fn writes_deterministic_file_with_empty_side_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a/var/lib/rpm/rpmdb.sqlite");
        let b = dir.path().join("b/rpmdb.sqlite");
        let pkgs = [pkg("one"), pkg("two")];
        write_rpmdb(&a, &pkgs, &InstallOptions::at(1_700_000_000)).unwrap();
        write_rpmdb(&b, &pkgs, &InstallOptions::at(1_700_000_000)).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        // WAL mode recorded in the header (bytes 18/19 = 2); beside it only rpm's
        // persistent (here empty) WAL side files, no leftovers.
        assert_eq!(&bytes[18..20], &[2, 2]);
        let mut names: Vec<_> = std::fs::read_dir(a.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["rpmdb.sqlite", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal"]);
        for side in &names[1..] {
            assert_eq!(std::fs::metadata(a.with_file_name(side)).unwrap().len(), 0, "{side}");
        }
        // Different install time: different file (the time really is recorded).
        write_rpmdb(&b, &pkgs, &InstallOptions::at(1_700_000_001)).unwrap();
        assert_ne!(bytes, std::fs::read(&b).unwrap());
    }

    /// Under umask 077 the database is still 0644 and the directories it made 0755. The
    /// umask is process-wide, so the check runs in a child: this test binary run again
    /// under `sh -c 'umask 077; exec …'` for this one test.
    #[test]
    fn modes_do_not_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        const CHILD: &str = "STRATA_RPMDB_UMASK_CHILD";
        let name = "write::tests::modes_do_not_follow_the_umask";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new("sh")
                .args(["-c", "umask 077; exec \"$0\" --exact \"$1\" --nocapture"])
                .arg(std::env::current_exe().unwrap())
                .arg(name)
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "the umask 077 child failed:\n{text}");
            assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("var/lib/rpm/rpmdb.sqlite");
        write_rpmdb(&p, &[pkg("one")], &InstallOptions::at(1)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&p), 0o644);
        for suffix in WAL_SIDE_FILES {
            assert_eq!(mode(&side_file(&p, suffix)), 0o644, "{suffix}");
        }
        for d in ["var", "var/lib", "var/lib/rpm"] {
            assert_eq!(mode(&dir.path().join(d)), 0o755, "{d}");
        }
        // A control: this process really has umask 077.
        let f = dir.path().join("control");
        std::fs::write(&f, b"").unwrap();
        assert_eq!(mode(&f), 0o600);
    }

    #[test]
    fn schema_and_rows_are_rpms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rpmdb.sqlite");
        write_rpmdb(&p, &[pkg("one"), pkg("two")], &InstallOptions::at(7)).unwrap();
        let conn = Connection::open(&p).unwrap();
        let seq: i64 = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'Packages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seq, 2);
        let rows: Vec<(String, i64, i64)> = conn
            .prepare("SELECT key, hnum, idx FROM Basenames ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, vec![("one".into(), 1, 0), ("two".into(), 2, 0)]);
        let tid: Vec<u8> = conn
            .query_row("SELECT key FROM Installtid WHERE hnum = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tid, 7u32.to_le_bytes());
        let n_tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // Packages, sqlite_sequence, 18 index tables, sqlite_stat1.
        assert_eq!(n_tables, 21);
    }

    #[test]
    fn replaces_existing_database_and_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rpmdb.sqlite");
        std::fs::write(&p, b"old").unwrap();
        std::fs::write(side_file(&p, "-wal"), b"stale").unwrap();
        write_rpmdb(&p, &[pkg("one")], &InstallOptions::at(1)).unwrap();
        assert!(std::fs::read(&p).unwrap().starts_with(b"SQLite format 3\0"));
        assert_eq!(std::fs::read(side_file(&p, "-wal")).unwrap(), b"", "the stale WAL is gone, an empty one left");
        // A path that is a directory cannot be replaced: error, and no scratch left.
        let d = dir.path().join("isdir");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("keep"), b"").unwrap();
        assert!(write_rpmdb(&d, &[pkg("one")], &InstallOptions::at(1)).is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(left.iter().all(|n| !n.contains("strata-tmp")), "{left:?}");
    }
}
