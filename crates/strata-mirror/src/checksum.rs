//! CHECKSUM files as Fedora's mirrors carry them, one per image version folder:
//!
//! ```text
//! # web-0.x86_64.tar.xz: 19178628 bytes
//! SHA256 (web-0.x86_64.tar.xz) = 2d6b…
//! ```
//!
//! (`sha256sum -c CHECKSUM` reads the BSD-style lines and skips the comments), optionally
//! clear-signed with an OpenPGP key (`gpg --verify CHECKSUM`) through rpgp, so no gpg agent
//! or keyring is needed on the publishing host.

use crate::Error;
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedSecretKey};
use pgp::types::SecretParams;
use pgp::types::{KeyDetails, Password};
use std::path::Path;

/// The passphrase of a protected `--sign-key`, if it has one.
pub const PASSPHRASE_ENV: &str = "STRATA_SIGN_KEY_PASSPHRASE";

/// One file a CHECKSUM lists.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The unsigned text of a CHECKSUM file, files sorted by name.
pub fn body(files: &[Listed]) -> String {
    let mut files: Vec<&Listed> = files.iter().collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for f in files {
        out.push_str(&format!("# {}: {} bytes\nSHA256 ({}) = {}\n", f.name, f.size, f.name, f.sha256));
    }
    out
}

/// An OpenPGP secret key that clear-signs CHECKSUM files.
pub struct Signer {
    key: SignedSecretKey,
    password: Password,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint())
    }
}

impl Signer {
    /// Reads an armored secret key (`gpg --export-secret-keys --armor`). A protected key's
    /// passphrase comes from `$STRATA_SIGN_KEY_PASSPHRASE`.
    pub fn load(path: &Path) -> Result<Signer, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { context: format!("reading --sign-key {}", path.display()), source })?;
        let (key, _) = SignedSecretKey::from_string(&text).map_err(|e| {
            Error::Invalid(format!(
                "--sign-key {}: not an armored OpenPGP secret key ({e})\n  hint: export one with `gpg --armor --export-secret-keys KEYID > key.asc`",
                path.display()
            ))
        })?;
        let password = match (key.primary_key.secret_params(), std::env::var(PASSPHRASE_ENV)) {
            (SecretParams::Encrypted(_), Ok(p)) => Password::from(p.as_str()),
            (SecretParams::Encrypted(_), Err(_)) => {
                return Err(Error::Invalid(format!(
                    "--sign-key {}: the key is protected by a passphrase\n  hint: give it in ${PASSPHRASE_ENV}, or export the key without one",
                    path.display()
                )))
            }
            (SecretParams::Plain(_), _) => Password::empty(),
        };
        let signer = Signer { key, password };
        // Fail now, on a wrong passphrase or a key that cannot sign, not after the archives.
        signer.sign("check\n").map_err(|e| Error::Invalid(format!("--sign-key {}: {e}", path.display())))?;
        Ok(signer)
    }

    pub fn fingerprint(&self) -> String {
        hex::encode(self.key.primary_key.fingerprint().as_bytes())
    }

    /// `text` clear-signed, armored.
    pub fn sign(&self, text: &str) -> Result<String, Error> {
        let bad = |e: pgp::errors::Error| Error::Invalid(format!("signing with the key {}: {e}", hex::encode(self.key.primary_key.fingerprint().as_bytes())));
        let msg = CleartextSignedMessage::sign(rand::thread_rng(), text, &self.key.primary_key, &self.password).map_err(bad)?;
        msg.to_armored_string(Default::default()).map_err(bad)
    }
}

/// Whether the CHECKSUM file now at `existing` already says `body`, signed by `signer` (or
/// unsigned when there is none): then it is left as it is (a new signature would differ in
/// its time alone).
pub fn is_current(existing: &str, body: &str, signer: Option<&Signer>) -> bool {
    match (existing.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"), signer) {
        (false, None) => existing == body,
        (true, Some(s)) => match CleartextSignedMessage::from_string(existing) {
            Ok((msg, _)) => {
                let by_signer = msg.signatures().iter().any(|sig| sig.issuer_fingerprint().iter().any(|f| hex::encode(f.as_bytes()) == s.fingerprint()));
                by_signer && msg.signed_text().trim_end() == body.trim_end()
            }
            Err(_) => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedora_style_lines_sorted_by_name() {
        let b = body(&[Listed { name: "b.tar.xz".into(), size: 2, sha256: "bb".into() }, Listed { name: "a.tar.xz".into(), size: 1, sha256: "aa".into() }]);
        assert_eq!(b, "# a.tar.xz: 1 bytes\nSHA256 (a.tar.xz) = aa\n# b.tar.xz: 2 bytes\nSHA256 (b.tar.xz) = bb\n");
        assert!(is_current(&b, &b, None));
        assert!(!is_current(&b, "other", None));
    }
}
