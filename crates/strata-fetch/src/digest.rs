//! The checksum types repodata uses, and hashing with one chosen at run time.

use sha2::digest::DynDigest;

/// The cache directory name of a checksum type: lower case, `sha` spelled `sha1`.
pub(crate) fn canonical_kind(kind: &str) -> String {
    match kind.to_ascii_lowercase().as_str() {
        "sha" => "sha1".into(),
        other => other.into(),
    }
}

/// A checksum the cache can name a file by: a supported type and a hex value of its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sum {
    /// Canonical type, also the cache subdirectory.
    pub kind: &'static str,
    /// Lower-case hex, also the file name; validated, so it cannot escape the directory.
    pub hex: String,
}

impl Sum {
    pub(crate) fn parse(kind: &str, value: &str) -> Result<Sum, String> {
        let given = canonical_kind(kind);
        let Some((kind, len)) = KINDS.iter().copied().find(|(k, _)| *k == given) else {
            return Err(format!(
                "unsupported checksum type `{given}` (supported: sha256, sha512, sha384, sha224, sha1)"
            ));
        };
        let hex_len = len * 2;
        let hex = value.to_ascii_lowercase();
        if hex.len() != hex_len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{value}` is not a {kind} checksum ({hex_len} hex digits)"
            ));
        }
        Ok(Sum { kind, hex })
    }
}

/// Accepted types and their digest sizes in bytes; md5 is deliberately absent: it cannot
/// vouch for a package.
pub(crate) const KINDS: [(&str, usize); 5] = [
    ("sha1", 20),
    ("sha224", 28),
    ("sha256", 32),
    ("sha384", 48),
    ("sha512", 64),
];

/// A hasher of the type chosen at run time (sha2's `DynDigest`, no enum of our own).
pub(crate) struct Hasher(Box<dyn DynDigest + Send>);

impl Hasher {
    /// `kind` is a canonical kind that [`Sum::parse`] accepted.
    pub(crate) fn new(kind: &str) -> Hasher {
        Hasher(match kind {
            "sha1" => Box::new(sha1::Sha1::default()),
            "sha224" => Box::new(sha2::Sha224::default()),
            "sha256" => Box::new(sha2::Sha256::default()),
            "sha384" => Box::new(sha2::Sha384::default()),
            "sha512" => Box::new(sha2::Sha512::default()),
            other => unreachable!("checksum type {other} was validated"),
        })
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finish_hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Hex digest of everything `r` yields.
pub(crate) fn hash_reader(kind: &str, mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = Hasher::new(kind);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(h.finish_hex()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let s = Sum::parse("SHA", &"AB".repeat(20)).unwrap();
        assert_eq!((s.kind, s.hex), ("sha1", "ab".repeat(20)));
        assert!(Sum::parse("sha256", &"a".repeat(63))
            .unwrap_err()
            .contains("64 hex digits"));
        assert!(Sum::parse("sha256", &format!("../{}", "a".repeat(61))).is_err());
        assert!(Sum::parse("md5", &"a".repeat(32))
            .unwrap_err()
            .contains("unsupported checksum type `md5`"));
    }

    #[test]
    fn known_digests() {
        let h = |k| hash_reader(k, &b"abc"[..]).unwrap();
        assert_eq!(h("sha1"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            h("sha256"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            h("sha224"),
            "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
        );
        assert!(h("sha512").starts_with("ddaf35a193617aba"));
        assert!(h("sha384").starts_with("cb00753f45a35e8b"));
    }
}
