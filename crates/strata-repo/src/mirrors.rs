//! Turning a repo's baseurl / mirrorlist / metalink into base URLs to try, in dnf's order
//! (metalink, then mirrorlist, then baseurl), plus the repomd.xml hashes a metalink vouches for.

use crate::fetch::Fetcher;
use crate::xml::{attrs, Text};
use crate::RepoError;
use quick_xml::events::Event;
use quick_xml::Reader;

pub(crate) struct Mirrors {
    pub baseurls: Vec<String>,
    /// (type, hex) of repomd.xml from a metalink; empty without one.
    pub repomd_hashes: Vec<(String, String)>,
    pub repomd_size: Option<u64>,
}

pub(crate) fn resolve_mirrors(
    f: &Fetcher,
    repo: &str,
    baseurls: &[String],
    mirrorlist: Option<&str>,
    metalink: Option<&str>,
) -> Result<Mirrors, RepoError> {
    let mut out = Mirrors { baseurls: Vec::new(), repomd_hashes: Vec::new(), repomd_size: None };
    let mut first_err = None;
    if let Some(url) = metalink {
        match f.get(repo, url).and_then(|b| {
            parse_metalink(&b).map_err(|detail| RepoError::Corrupt { repo: repo.into(), file: url.into(), detail })
        }) {
            Ok(m) => {
                out.baseurls.extend(m.baseurls);
                out.repomd_hashes = m.repomd_hashes;
                out.repomd_size = m.repomd_size;
            }
            Err(e) => first_err = Some(e),
        }
    }
    if let Some(url) = mirrorlist {
        match f.get(repo, url) {
            Ok(b) => out.baseurls.extend(parse_mirrorlist(&String::from_utf8_lossy(&b))),
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    out.baseurls.extend(baseurls.iter().cloned());
    if out.baseurls.is_empty() {
        return Err(first_err.unwrap_or_else(|| RepoError::NoMetadata {
            repo: repo.into(),
            detail: "no baseurl, mirrorlist or metalink to fetch from".into(),
        }));
    }
    Ok(out)
}

/// One URL per line; `#` starts a comment.
fn parse_mirrorlist(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && l.contains("://"))
        .map(String::from)
        .collect()
}

/// Metalink 3.0 as MirrorManager serves it: the repomd.xml `<file>` with `<hash>`es, a
/// `<size>` and `<url preference="N">` entries pointing at `.../repodata/repomd.xml`.
fn parse_metalink(bytes: &[u8]) -> Result<Mirrors, String> {
    let mut reader = Reader::from_reader(bytes);
    let mut in_repomd = false;
    let mut field: Option<(&'static str, Option<String>, Option<i64>)> = None;
    let mut text = Text::default();
    let mut urls: Vec<(i64, usize, String)> = Vec::new();
    let mut out = Mirrors { baseurls: Vec::new(), repomd_hashes: Vec::new(), repomd_size: None };
    loop {
        match reader.read_event().map_err(|e| format!("XML error: {e}"))? {
            Event::Start(e) => match e.local_name().as_ref() {
                b"file" => {
                    in_repomd = false;
                    for a in attrs(&e) {
                        let (k, v) = a?;
                        if k == b"name" && v == "repomd.xml" {
                            in_repomd = true;
                        }
                    }
                }
                b"hash" if in_repomd => {
                    let mut kind = None;
                    for a in attrs(&e) {
                        let (k, v) = a?;
                        if k == b"type" {
                            kind = Some(v.to_ascii_lowercase());
                        }
                    }
                    field = Some(("hash", kind, None));
                    text.clear();
                }
                b"size" if in_repomd => {
                    field = Some(("size", None, None));
                    text.clear();
                }
                b"url" if in_repomd => {
                    let mut pref = 0;
                    for a in attrs(&e) {
                        let (k, v) = a?;
                        if k == b"preference" {
                            pref = v.parse().unwrap_or(0);
                        }
                    }
                    field = Some(("url", None, Some(pref)));
                    text.clear();
                }
                _ => {}
            },
            Event::Text(t) if field.is_some() => text.push_text(&t)?,
            Event::GeneralRef(r) if field.is_some() => text.push_ref(&r)?,
            Event::End(e) => {
                if e.local_name().as_ref() == b"file" {
                    in_repomd = false;
                }
                let value = text.as_str().trim().to_string();
                match field.take() {
                    Some(("hash", Some(kind), _)) => out.repomd_hashes.push((kind, value.to_ascii_lowercase())),
                    Some(("size", _, _)) => out.repomd_size = value.parse().ok(),
                    Some(("url", _, Some(pref))) => {
                        let base = value.trim_end_matches("repomd.xml").trim_end_matches('/');
                        let base = base.trim_end_matches("repodata").trim_end_matches('/');
                        if base.starts_with("http") || base.starts_with("file") {
                            urls.push((pref, urls.len(), format!("{base}/")));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    urls.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.baseurls = urls.into_iter().map(|u| u.2).collect();
    if out.baseurls.is_empty() {
        return Err("the metalink lists no mirror for repomd.xml".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::tests::serve;

    const METALINK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1700000000</mm0:timestamp>
   <size>4096</size>
   <verification>
    <hash type="md5">00112233445566778899aabbccddeeff</hash>
    <hash type="sha256">ABCDEF</hash>
   </verification>
   <resources maxconnections="1">
    <url protocol="https" type="https" location="DE" preference="90">https://b.example/fedora/41/x86_64/os/repodata/repomd.xml</url>
    <url protocol="rsync" type="rsync" location="DE" preference="100">rsync://c.example/fedora/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US" preference="100">https://a.example/fedora/41/x86_64/os/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>"#;

    #[test]
    fn metalink_orders_by_preference() {
        let m = parse_metalink(METALINK.as_bytes()).unwrap();
        assert_eq!(m.baseurls, ["https://a.example/fedora/41/x86_64/os/", "https://b.example/fedora/41/x86_64/os/"]);
        assert_eq!(m.repomd_size, Some(4096));
        assert!(m.repomd_hashes.contains(&("sha256".into(), "abcdef".into())));
        assert!(parse_metalink(b"<metalink/>").is_err());
    }

    #[test]
    fn mirrorlist_skips_comments() {
        let urls = parse_mirrorlist("# mirrors\nhttps://a/x/\n\n  http://b/y  # near\nnot-a-url\n");
        assert_eq!(urls, ["https://a/x/", "http://b/y"]);
    }

    #[test]
    fn precedence_and_fallback() {
        let mut f = Fetcher::new();
        f.backoff = vec![];
        let ml = serve(vec![(200, b"https://m1/\n".to_vec(), None)]);
        let m = resolve_mirrors(&f, "r", &["/local".into()], Some(&format!("{ml}/list")), None).unwrap();
        assert_eq!(m.baseurls, ["https://m1/", "/local"]);
        // A metalink that cannot be fetched still leaves the baseurl.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bad = format!("http://127.0.0.1:{port}/metalink");
        let m = resolve_mirrors(&f, "r", &["/local".into()], None, Some(&bad)).unwrap();
        assert_eq!(m.baseurls, ["/local"]);
        let e = resolve_mirrors(&f, "r", &[], None, Some(&bad)).err().unwrap().to_string();
        assert!(e.contains(&bad), "{e}");
    }
}
