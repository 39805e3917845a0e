//! Validation of paths inside a layer. Everything that reaches the tar has passed here, so
//! the writer never emits a name an extractor could resolve outside the root.

use crate::{Error, Result};

/// Prefix of whiteout entries (the OCI/AUFS convention).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Checks a layer path and returns it in canonical form: relative, `/`-separated, no
/// trailing slash. Refused: empty, absolute, NUL, empty / `.` / `..` components.
pub(crate) fn normalize(path: &[u8]) -> Result<Vec<u8>> {
    let bad = |reason| Error::InvalidPath {
        path: String::from_utf8_lossy(path).into_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    if path.contains(&0) {
        return Err(bad("contains a NUL byte"));
    }
    if path[0] == b'/' {
        return Err(bad("absolute paths are not allowed"));
    }
    // One trailing slash is accepted ("usr/") because directory names are often written so.
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    for component in trimmed.split(|&b| b == b'/') {
        match component {
            b"" => return Err(bad("empty path component")),
            b"." => return Err(bad("'.' component")),
            b".." => return Err(bad("'..' component")),
            _ => {}
        }
    }
    Ok(trimmed.to_vec())
}

/// Like [`normalize`], and also refuses names that an extractor would read as whiteouts, so
/// only [`super::LayerBuilder::add_whiteout`] / `add_opaque` can produce them.
pub(crate) fn normalize_plain(path: &[u8]) -> Result<Vec<u8>> {
    let p = normalize(path)?;
    if base_name(&p).starts_with(WHITEOUT_PREFIX.as_bytes()) {
        return Err(Error::InvalidPath {
            path: display(&p),
            reason: "names starting with '.wh.' are reserved for whiteouts",
        });
    }
    Ok(p)
}

/// The last component of a normalised path.
pub(crate) fn base_name(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// The parent of a normalised path, `None` at the top level.
pub(crate) fn parent(p: &[u8]) -> Option<&[u8]> {
    p.iter().rposition(|&b| b == b'/').map(|i| &p[..i])
}

/// A path for messages.
pub(crate) fn display(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        for p in [
            &b""[..],
            b"/etc/passwd",
            b"../etc/passwd",
            b"usr/../../etc",
            b"usr/./bin",
            b"usr//bin",
            b"usr/bin\0x",
            b".",
            b"..",
            b"/",
        ] {
            assert!(normalize(p).is_err(), "{:?} accepted", display(p));
        }
    }

    #[test]
    fn ordinary_paths_are_canonical() {
        assert_eq!(normalize(b"usr/bin/").unwrap(), b"usr/bin");
        assert_eq!(normalize(b"a..b/..c/d..").unwrap(), b"a..b/..c/d..");
        assert_eq!(normalize(b"caf\xc3\xa9").unwrap(), b"caf\xc3\xa9");
    }

    #[test]
    fn whiteout_names_are_reserved() {
        assert!(normalize_plain(b"etc/.wh.passwd").is_err());
        assert!(normalize_plain(b".wh..wh..opq").is_err());
        assert!(normalize_plain(b"etc/.whatever").is_ok());
    }

    #[test]
    fn parent_and_base() {
        assert_eq!(parent(b"a/b/c"), Some(&b"a/b"[..]));
        assert_eq!(parent(b"a"), None);
        assert_eq!(base_name(b"a/b/c"), b"c");
    }
}
