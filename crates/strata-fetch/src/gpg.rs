//! RPM signatures, checked the way rpm does with `gpgcheck=1`: the OpenPGP signature of the
//! header in the signature header (RSA or DSA tag), or for old packages signed only over
//! header + payload, that one; with the repo's keys, using rpgp.
//!
//! A header signature covers the payload only through the payload digest in the header, so
//! [`payload_mismatch`] checks that digest whenever a package enters the cache: every cached
//! file's payload is then the one its header names, and a signature check on a later cache
//! hit needs to read the header only.

use crate::GpgKey;
use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::packet::{Packet, PacketParser, Signature};
use pgp::types::{KeyDetails, VerifyingKey};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Signature-header tags (rpm's `RPMSIGTAG_*`).
const SIGTAG_DSA: u32 = 267;
const SIGTAG_RSA: u32 = 268;
const SIGTAG_PGP: u32 = 1002;
const SIGTAG_GPG: u32 = 1005;
const TYPE_INT32: u32 = 4;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
/// Main-header tags (`RPMTAG_PAYLOADDIGEST`, `RPMTAG_PAYLOADDIGESTALGO`): the digest of the
/// compressed payload, as hex, and its OpenPGP hash algorithm number.
const TAG_PAYLOADDIGEST: u32 = 5092;
const TAG_PAYLOADDIGESTALGO: u32 = 5093;

const LEAD_LEN: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// rpm's own sanity limits on a header (hdrchkTags, hdrchkData): beyond them a file is
/// malformed, and we must not allocate what it claims.
const MAX_TAGS: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;
const MAX_SIG_TAGS: usize = 32;
const MAX_SIG_DATA: usize = 64 << 20;

/// A repo's public keys.
pub(crate) struct Keyring {
    keys: Vec<SignedPublicKey>,
}

pub(crate) enum SigError {
    Unsigned,
    /// Signed by a key the repo does not list: the issuer's fingerprint or key id.
    UnknownKey(String),
    Bad(String),
}

impl Keyring {
    /// All keys of all `sources`; any unreadable or unparsable source is an error, as dnf
    /// makes it, rather than silently checking with fewer keys.
    pub(crate) fn load(sources: &[GpgKey]) -> Result<Keyring, String> {
        if sources.is_empty() {
            return Err("no gpgkey is configured for it".into());
        }
        let mut keys = Vec::new();
        for source in sources {
            let (bytes, what) = match source {
                GpgKey::File(p) => (
                    std::fs::read(p)
                        .map_err(|e| format!("cannot read gpgkey {}: {e}", p.display()))?,
                    p.display().to_string(),
                ),
                GpgKey::Data(d) => (d.clone(), "(given inline)".to_string()),
            };
            let bad = |e: pgp::errors::Error| {
                format!(
                    "gpgkey {what} is not a usable OpenPGP public key ({})",
                    brief(&e)
                )
            };
            let (parsed, _) = SignedPublicKey::from_reader_many(&bytes[..]).map_err(bad)?;
            let before = keys.len();
            for key in parsed {
                let key = key.map_err(bad)?;
                // A subkey whose binding does not verify could be anybody's.
                key.verify_bindings().map_err(bad)?;
                keys.push(key);
            }
            if keys.len() == before {
                return Err(format!("gpgkey {what} holds no public key"));
            }
        }
        Ok(Keyring { keys })
    }

    /// Verifies `sig` over what `data` yields with whichever key issued it; `data` is called
    /// once per candidate key (usually one).
    fn verify<'d>(
        &self,
        sig: &Signature,
        signed: &str,
        data: &dyn Fn() -> std::io::Result<Box<dyn Read + 'd>>,
    ) -> Result<(), SigError> {
        let ids: Vec<Vec<u8>> = sig
            .issuer_key_id()
            .iter()
            .map(|k| k.as_ref().to_vec())
            .collect();
        let fprs: Vec<&[u8]> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.as_bytes())
            .collect();
        let matches = |k: &dyn KeyDetails| {
            (ids.is_empty() && fprs.is_empty())
                || ids
                    .iter()
                    .any(|id| id.as_slice() == k.legacy_key_id().as_ref())
                || fprs.contains(&k.fingerprint().as_bytes())
        };
        let mut last_err = None;
        let mut attempt = |key: &dyn VerifyingKeyDyn| -> Result<bool, SigError> {
            let reader =
                data().map_err(|e| SigError::Bad(format!("cannot read the package: {e}")))?;
            match key.verify_sig(sig, reader) {
                Ok(()) => Ok(true),
                Err(e) => {
                    last_err = Some(e);
                    Ok(false)
                }
            }
        };
        for key in &self.keys {
            if matches(key) && attempt(key)? {
                return Ok(());
            }
            for sub in &key.public_subkeys {
                if matches(sub) && attempt(sub)? {
                    return Ok(());
                }
            }
        }
        let issuer = match (
            sig.issuer_fingerprint().first(),
            sig.issuer_key_id().first(),
        ) {
            (Some(f), _) => hex::encode_upper(f.as_bytes()),
            (None, Some(id)) => hex::encode_upper(id.as_ref()),
            (None, None) => "(none named)".into(),
        };
        match last_err {
            Some(e) => {
                tracing::debug!("signature check: {e}");
                Err(SigError::Bad(format!(
                    "the signature by key {issuer} does not match the {signed}"
                )))
            }
            None => Err(SigError::UnknownKey(issuer)),
        }
    }
}

/// `Signature::verify` is generic over the key; this lets primary keys and subkeys share a loop.
trait VerifyingKeyDyn {
    fn verify_sig(&self, sig: &Signature, data: Box<dyn Read + '_>) -> pgp::errors::Result<()>;
}

impl<K: VerifyingKey> VerifyingKeyDyn for K {
    fn verify_sig(&self, sig: &Signature, data: Box<dyn Read + '_>) -> pgp::errors::Result<()> {
        sig.verify(self, data)
    }
}

/// The lead and both headers of an RPM, the reader left at the payload.
struct Rpm {
    sigs: Header,
    main: Header,
    payload_at: u64,
}

impl Rpm {
    fn read(r: &mut BufReader<File>) -> Result<Rpm, SigError> {
        let mut lead = [0u8; LEAD_LEN];
        r.read_exact(&mut lead)
            .map_err(|_| malformed("shorter than an RPM lead"))?;
        if lead[..4] != LEAD_MAGIC {
            return Err(malformed("no RPM lead"));
        }
        let sigs = Header::read(r, "signature")?;
        let pad = (8 - sigs.data_len % 8) % 8;
        r.seek_relative(pad as i64).map_err(read_err)?;
        let main = Header::read(r, "main")?;
        let payload_at = (LEAD_LEN + sigs.raw.len() + pad + main.raw.len()) as u64;
        Ok(Rpm {
            sigs,
            main,
            payload_at,
        })
    }
}

fn read_err(e: std::io::Error) -> SigError {
    SigError::Bad(format!("cannot read the package: {e}"))
}

/// Why the payload of the RPM at `path` is not the one its header names, if it is not. A
/// file that is not a well-formed RPM, or names no payload digest or an unknown algorithm,
/// passes: there is nothing to compare, and the signature check refuses a malformed file
/// where one is required.
pub(crate) fn payload_mismatch(path: &Path) -> Option<String> {
    let mut r = BufReader::new(File::open(path).ok()?);
    let rpm = Rpm::read(&mut r).ok()?;
    let expected = rpm.main.string(TAG_PAYLOADDIGEST)?.to_ascii_lowercase();
    let kind = match rpm.main.int32(TAG_PAYLOADDIGESTALGO)? {
        2 => "sha1",
        8 => "sha256",
        9 => "sha384",
        10 => "sha512",
        11 => "sha224",
        other => {
            tracing::debug!(
                "{}: payload digest algorithm {other} is not checked",
                path.display()
            );
            return None;
        }
    };
    match crate::digest::hash_reader(kind, r) {
        Ok(actual) if actual == expected => None,
        Ok(actual) => Some(format!(
            "its payload has {kind} digest {actual}, but its header says {expected}"
        )),
        Err(e) => Some(format!("cannot read its payload: {e}")),
    }
}

/// Checks the signature of the RPM at `path` with `ring`.
pub(crate) fn verify_rpm(path: &Path, ring: &Keyring) -> Result<(), SigError> {
    let mut r = BufReader::new(File::open(path).map_err(read_err)?);
    let Rpm {
        sigs,
        main,
        payload_at,
    } = Rpm::read(&mut r)?;
    drop(r);

    let header_sigs: Vec<&[u8]> = [SIGTAG_RSA, SIGTAG_DSA]
        .iter()
        .filter_map(|&t| sigs.bin(t))
        .collect();
    if !header_sigs.is_empty() {
        // rpm requires every header signature present to verify, not just one.
        for raw in header_sigs {
            ring.verify(&parse_signature(raw)?, "header", &|| {
                Ok(Box::new(&main.raw[..]) as Box<dyn Read>)
            })?;
        }
        return Ok(());
    }
    let legacy: Vec<&[u8]> = [SIGTAG_PGP, SIGTAG_GPG]
        .iter()
        .filter_map(|&t| sigs.bin(t))
        .collect();
    if legacy.is_empty() {
        return Err(SigError::Unsigned);
    }
    for raw in legacy {
        let rest = || -> std::io::Result<Box<dyn Read + '_>> {
            let mut f = File::open(path)?;
            f.seek(SeekFrom::Start(payload_at))?;
            Ok(Box::new((&main.raw[..]).chain(BufReader::new(f))))
        };
        ring.verify(&parse_signature(raw)?, "header and payload", &rest)?;
    }
    Ok(())
}

/// rpgp's message on one short line: some embed whole input buffers.
fn brief(e: &pgp::errors::Error) -> String {
    let text = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn malformed(what: &str) -> SigError {
    SigError::Bad(format!("not a well-formed RPM: {what}"))
}

fn parse_signature(raw: &[u8]) -> Result<Signature, SigError> {
    for packet in PacketParser::new(raw) {
        if let Ok(Packet::Signature(sig)) = packet {
            return Ok(sig);
        }
    }
    Err(malformed("its signature tag holds no OpenPGP signature"))
}

/// One header structure, kept as the exact bytes read (what a header signature signs).
struct Header {
    raw: Vec<u8>,
    count: usize,
    data_len: usize,
}

impl Header {
    fn read(r: &mut impl Read, which: &str) -> Result<Header, SigError> {
        let short = || malformed(&format!("the {which} header is cut short"));
        let mut raw = vec![0u8; 16];
        r.read_exact(&mut raw).map_err(|_| short())?;
        if raw[..8] != HEADER_MAGIC {
            return Err(malformed(&format!("no {which} header magic")));
        }
        let count = be32(&raw[8..12]) as usize;
        let data_len = be32(&raw[12..16]) as usize;
        // rpm's hdrblob limits (lib/header.cc): the signature header is small by design.
        let (max_tags, max_data) = if which == "signature" {
            (MAX_SIG_TAGS, MAX_SIG_DATA)
        } else {
            (MAX_TAGS, MAX_DATA)
        };
        if count > max_tags || data_len > max_data {
            return Err(malformed(&format!(
                "the {which} header claims {count} tags and {data_len} bytes \
                 (rpm allows at most {max_tags} and {max_data})"
            )));
        }
        // Read what is there, not what the header claims: a small file claiming 256 MiB
        // must not make this allocate 256 MiB first.
        let want = (count * 16 + data_len) as u64;
        r.take(want).read_to_end(&mut raw).map_err(|_| short())?;
        if raw.len() as u64 != 16 + want {
            return Err(short());
        }
        Ok(Header {
            raw,
            count,
            data_len,
        })
    }

    /// The data of `tag` from its offset on, and its count, if `tag` is present with type `ty`.
    fn entry(&self, tag: u32, ty: u32) -> Option<(&[u8], usize)> {
        let data = &self.raw[16 + self.count * 16..];
        self.raw[16..16 + self.count * 16]
            .chunks_exact(16)
            .find_map(|e| {
                if be32(&e[0..4]) != tag || be32(&e[4..8]) != ty {
                    return None;
                }
                Some((
                    data.get(be32(&e[8..12]) as usize..)?,
                    be32(&e[12..16]) as usize,
                ))
            })
    }

    /// The value of binary tag `tag`, if present and within the data.
    fn bin(&self, tag: u32) -> Option<&[u8]> {
        let (data, len) = self.entry(tag, TYPE_BIN)?;
        data.get(..len)
    }

    /// The first string of string-array tag `tag`.
    fn string(&self, tag: u32) -> Option<&str> {
        let (data, _) = self.entry(tag, TYPE_STRING_ARRAY)?;
        let end = data.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&data[..end]).ok()
    }

    /// The first value of int32 tag `tag`.
    fn int32(&self, tag: u32) -> Option<u32> {
        let (data, _) = self.entry(tag, TYPE_INT32)?;
        data.get(..4).map(be32)
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A lead and a header intro claiming `count` tags and `data` bytes, and nothing more.
    fn claiming(count: u32, data: u32, signature_ok: bool) -> Vec<u8> {
        let mut b = vec![0u8; LEAD_LEN];
        b[..4].copy_from_slice(&LEAD_MAGIC);
        let intro = |b: &mut Vec<u8>, count: u32, data: u32| {
            b.extend_from_slice(&HEADER_MAGIC);
            b.extend_from_slice(&count.to_be_bytes());
            b.extend_from_slice(&data.to_be_bytes());
        };
        if signature_ok {
            intro(&mut b, 0, 0);
        }
        intro(&mut b, count, data);
        b
    }

    #[test]
    fn hostile_header_counts_are_refused_without_allocating_them() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            // A signature header over rpm's 32 entries / 64 MiB.
            (claiming(33, 0, false), "signature header claims 33 tags"),
            (claiming(1, 65 << 20, false), "signature header claims 1 tags"),
            // A main header claiming 256 MiB in a file of a few bytes: cut short, at once.
            (claiming(1, 256 << 20, true), "main header is cut short"),
        ];
        for (bytes, want) in cases {
            let path = dir.path().join("hostile.rpm");
            std::fs::write(&path, &bytes).unwrap();
            let mut r = BufReader::new(File::open(&path).unwrap());
            let err = match Rpm::read(&mut r) {
                Err(SigError::Bad(e)) => e,
                Err(_) => panic!("{want}: another refusal"),
                Ok(_) => panic!("{want}: accepted"),
            };
            assert!(err.contains(want), "{err}");
        }
    }

    fn corpus_rpms() -> Vec<PathBuf> {
        std::fs::read_dir(strata_corpus::repo("base").join("Packages"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[test]
    fn corpus_payloads_match_their_headers() {
        let rpms = corpus_rpms();
        assert!(rpms.len() > 100);
        for p in rpms {
            let rpm = Rpm::read(&mut BufReader::new(File::open(&p).unwrap()))
                .unwrap_or_else(|_| panic!("{}", p.display()));
            // Parsed far enough to see the digest, so the check below really compared.
            assert!(rpm
                .main
                .string(TAG_PAYLOADDIGEST)
                .is_some_and(|d| d.len() == 64));
            assert_eq!(rpm.main.int32(TAG_PAYLOADDIGESTALGO), Some(8));
            assert_eq!(payload_mismatch(&p), None, "{}", p.display());
            let no_keys = Keyring { keys: Vec::new() };
            assert!(matches!(verify_rpm(&p, &no_keys), Err(SigError::Unsigned)));
        }
    }

    #[test]
    fn malformed_files_are_named_so() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = std::fs::read(&corpus_rpms()[0]).unwrap();
        let sig_len = 16 + 16 * be32(&rpm[104..]) as usize + be32(&rpm[108..]) as usize;
        let main_at = LEAD_LEN + sig_len + (8 - sig_len % 8) % 8;
        let no_keys = Keyring { keys: Vec::new() };
        for (bytes, want) in [
            (&b"plain text"[..], "shorter than an RPM lead"),
            (&[0u8; 200][..], "no RPM lead"),
            (&rpm[..120], "the signature header is cut short"),
            (&rpm[..main_at + 100], "the main header is cut short"),
        ] {
            let p = dir.path().join("x.rpm");
            std::fs::write(&p, bytes).unwrap();
            let Err(SigError::Bad(detail)) = verify_rpm(&p, &no_keys) else {
                panic!("{want}")
            };
            assert!(detail.contains(want), "{detail}");
            // Nothing to compare is not a mismatch; the signature check is what refuses it.
            assert_eq!(payload_mismatch(&p), None);
        }
    }
}
