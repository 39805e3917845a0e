//! repomd.xml: which metadata files a repository has, where, and their checksums.

use crate::xml::{attrs, Text};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha2::Digest;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RepoData {
    pub kind: String,
    pub location: String,
    pub checksum_type: String,
    pub checksum: String,
    pub size: Option<u64>,
    /// `<open-size>`: the decompressed size, which then bounds decompression exactly.
    pub open_size: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Repomd {
    pub revision: Option<String>,
    pub data: Vec<RepoData>,
}

impl Repomd {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Repomd, String> {
        let mut reader = Reader::from_reader(bytes);
        let mut out = Repomd::default();
        let mut current: Option<RepoData> = None;
        let mut text = Text::default();
        let mut field: Option<&'static str> = None;
        let mut saw_root = false;
        loop {
            match reader.read_event().map_err(|e| format!("XML error: {e}"))? {
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    b"repomd" => saw_root = true,
                    b"data" => {
                        let mut d = RepoData::default();
                        for a in attrs(&e) {
                            let (k, v) = a?;
                            if k == b"type" {
                                d.kind = v.into_owned();
                            }
                        }
                        current = Some(d);
                    }
                    b"location" => {
                        if let Some(d) = current.as_mut() {
                            for a in attrs(&e) {
                                let (k, v) = a?;
                                if k == b"href" {
                                    d.location = v.into_owned();
                                }
                            }
                        }
                    }
                    b"checksum" if current.is_some() => {
                        let d = current.as_mut().unwrap();
                        for a in attrs(&e) {
                            let (k, v) = a?;
                            if k == b"type" {
                                d.checksum_type = v.into_owned();
                            }
                        }
                        field = Some("checksum");
                        text.clear();
                    }
                    b"size" if current.is_some() => {
                        field = Some("size");
                        text.clear();
                    }
                    b"open-size" if current.is_some() => {
                        field = Some("open-size");
                        text.clear();
                    }
                    b"revision" => {
                        field = Some("revision");
                        text.clear();
                    }
                    _ => {}
                },
                Event::Text(t) if field.is_some() => text.push_text(&t)?,
                Event::End(e) => match e.name().as_ref() {
                    b"data" => {
                        if let Some(d) = current.take() {
                            out.data.push(d);
                        }
                    }
                    _ => {
                        let value = text.as_str().trim().to_string();
                        match (field.take(), current.as_mut()) {
                            (Some("checksum"), Some(d)) => d.checksum = value.to_ascii_lowercase(),
                            (Some("size"), Some(d)) => d.size = value.parse().ok(),
                            (Some("open-size"), Some(d)) => d.open_size = value.parse().ok(),
                            (Some("revision"), _) => out.revision = Some(value),
                            _ => {}
                        }
                    }
                },
                Event::Eof => break,
                _ => {}
            }
        }
        if !saw_root {
            return Err("no <repomd> element".into());
        }
        Ok(out)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&RepoData> {
        self.data.iter().find(|d| d.kind == kind)
    }
}

/// Hex digest of `bytes` with a repomd checksum type (`sha` is yum's old name for sha1).
pub(crate) fn digest_hex(kind: &str, bytes: &[u8]) -> Result<String, String> {
    Ok(match kind {
        "sha256" => hex::encode(sha2::Sha256::digest(bytes)),
        "sha512" => hex::encode(sha2::Sha512::digest(bytes)),
        "sha384" => hex::encode(sha2::Sha384::digest(bytes)),
        "sha224" => hex::encode(sha2::Sha224::digest(bytes)),
        "sha1" | "sha" => hex::encode(sha1::Sha1::digest(bytes)),
        "md5" => hex::encode(md5::Md5::digest(bytes)),
        other => return Err(format!("unsupported checksum type `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_corpus_repomd() {
        use std::io::Read;
        let repo = strata_corpus::repo("base");
        let bytes = std::fs::read(repo.join("repodata/repomd.xml")).unwrap();
        let md = Repomd::parse(&bytes).unwrap();
        // The expected values come from the corpus itself, read without this parser.
        let text = String::from_utf8_lossy(&bytes);
        let revision = text.split("<revision>").nth(1).and_then(|t| t.split("</revision>").next());
        assert_eq!(md.revision.as_deref(), revision);
        let p = md.get("primary").unwrap();
        assert_eq!(p.checksum_type, "sha256");
        assert!(p.location.ends_with("-primary.xml.gz"));
        let file = repo.join(&p.location);
        let mut open = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap()).read_to_end(&mut open).unwrap();
        assert_eq!(p.size, Some(std::fs::metadata(&file).unwrap().len()));
        assert_eq!(p.open_size, Some(open.len() as u64));
        assert!(md.get("filelists").is_some());
        assert!(md.get("primary_db").is_none());
    }

    #[test]
    fn digests() {
        assert_eq!(digest_hex("sha256", b"").unwrap(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(digest_hex("sha", b"").unwrap(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(digest_hex("md5", b"").unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(digest_hex("crc32", b"").is_err());
        assert!(Repomd::parse(b"<html/>").is_err());
    }
}
