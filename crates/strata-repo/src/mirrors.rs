//! Turning a repo's baseurl / mirrorlist / metalink into base URLs to try, in dnf's order
//! (metalink, then mirrorlist, then baseurl), plus the repomd.xml hashes a metalink vouches for.

use crate::fetch::{split_scheme, Fetcher};
use crate::xml::{attrs, Text};
use crate::RepoError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Where to look for a repo's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mirrors {
    /// Base URLs (the directory holding `repodata/`), best first, without duplicates.
    pub baseurls: Vec<String>,
    /// (type such as `sha256`, lowercase hex) of the current repomd.xml, from a metalink;
    /// empty without one. Hashes of the metalink's `<mm0:alternates>` (older repomd.xml
    /// versions some mirrors still serve) are not included: repomd.xml must be the current one.
    pub repomd_hashes: Vec<(String, String)>,
    /// Size in bytes of the current repomd.xml, from a metalink.
    pub repomd_size: Option<u64>,
}

/// Base URLs to try, in order, for a repo described by baseurls / mirrorlist / metalink.
///
/// Every source contributes candidates (metalink first, then mirrorlist, then baseurl), so a
/// dead mirror service still leaves the baseurl. A source that cannot be fetched or parsed is
/// only an error when no candidate is left; then the first such error is returned. No
/// candidates and no such error → [`RepoError::NoMetadata`] saying which source was empty.
pub(crate) fn resolve_mirrors(
    f: &Fetcher,
    repo: &str,
    baseurls: &[String],
    mirrorlist: Option<&str>,
    metalink: Option<&str>,
) -> Result<Mirrors, RepoError> {
    let mut out = Mirrors::default();
    let mut candidates: Vec<String> = Vec::new();
    let mut errors: Vec<RepoError> = Vec::new();
    // Why a source that was fetched fine still gave nothing, for the NoMetadata message.
    let mut empty: Vec<String> = Vec::new();

    if let Some(url) = metalink {
        match f
            .get_limited(repo, url, crate::limits::MAX_SMALL_FILE)
            .and_then(|bytes| metalink_from(repo, url, &bytes))
        {
            Ok(m) => {
                if m.urls.is_empty() {
                    empty.push(format!(
                        "metalink {url} lists no http(s) mirror of repomd.xml{}",
                        m.server_note()
                    ));
                }
                candidates.extend(m.urls);
                out.repomd_hashes = m.hashes;
                out.repomd_size = m.size;
            }
            Err(e) => errors.push(e),
        }
    }

    if let Some(url) = mirrorlist {
        let listed = f.get_limited(repo, url, crate::limits::MAX_SMALL_FILE).and_then(|bytes| {
            // librepo accepts a metalink behind `mirrorlist=` (MirrorManager serves both), so
            // a repo file that puts Fedora's metalink URL there still works.
            if looks_like_metalink(&bytes) {
                let m = metalink_from(repo, url, &bytes)?;
                if metalink.is_none() {
                    out.repomd_hashes = m.hashes.clone();
                    out.repomd_size = m.size;
                }
                let note = m.server_note();
                Ok((m.urls, note))
            } else {
                let list = parse_mirrorlist(&String::from_utf8_lossy(&bytes));
                let note = list
                    .server_errors
                    .first()
                    .map(|e| format!(" (the server says: {e})"))
                    .unwrap_or_default();
                Ok((list.urls, note))
            }
        });
        match listed {
            Ok((urls, note)) => {
                if urls.is_empty() {
                    empty.push(format!("mirrorlist {url} lists no mirrors{note}"));
                }
                candidates.extend(urls);
            }
            Err(e) => errors.push(e),
        }
    }

    candidates.extend(
        baseurls
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty()),
    );

    // The same mirror from two sources is tried once, at its first (most preferred) place.
    let mut seen = std::collections::HashSet::new();
    out.baseurls = candidates
        .into_iter()
        .filter(|u| seen.insert(u.trim_end_matches('/').to_string()))
        .collect();

    if out.baseurls.is_empty() {
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let detail = if empty.is_empty() {
            "no baseurl, mirrorlist or metalink is set".to_string()
        } else {
            format!("nothing to fetch metadata from: {}", empty.join("; "))
        };
        return Err(RepoError::NoMetadata {
            repo: repo.into(),
            detail,
        });
    }
    for e in &errors {
        tracing::warn!(repo, "{e}; trying the remaining mirrors");
    }
    Ok(out)
}

/// A metalink body parsed, or a Corrupt error naming the URL it came from.
fn metalink_from(repo: &str, url: &str, bytes: &[u8]) -> Result<Metalink, RepoError> {
    parse_metalink(bytes).map_err(|detail| RepoError::Corrupt {
        repo: repo.into(),
        file: url.into(),
        detail: format!("not a usable metalink: {detail}"),
    })
}

/// Whether a body fetched from a `mirrorlist=` URL is XML rather than a plain list.
fn looks_like_metalink(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with("<?xml") || text.starts_with("<metalink")
}

/// A mirrorlist's usable lines, and MirrorManager's error comments (an unknown repo or arch
/// gets a 200 with `# repo = x arch = y error: invalid repo or arch` and no URLs).
#[derive(Debug, Default)]
struct MirrorList {
    urls: Vec<String>,
    server_errors: Vec<String>,
}

/// One URL per line; blank lines and `#` comment lines are skipped, and so is anything after
/// the URL on its line. Lines that are neither a URL nor an absolute path are ignored, as a
/// captive-portal HTML page would otherwise become a list of bogus mirrors.
fn parse_mirrorlist(text: &str) -> MirrorList {
    let mut out = MirrorList::default();
    for line in text.lines().map(str::trim) {
        if let Some(comment) = line.strip_prefix('#') {
            if comment.to_ascii_lowercase().contains("error") {
                out.server_errors.push(comment.trim().to_string());
            }
            continue;
        }
        let Some(word) = line.split_whitespace().next() else {
            continue;
        };
        if split_scheme(word).is_some() || word.starts_with('/') {
            out.urls.push(word.to_string());
        } else {
            tracing::debug!("mirrorlist: ignoring line `{line}`");
        }
    }
    out
}

/// What a metalink says about repomd.xml.
#[derive(Debug, Default)]
struct Metalink {
    /// Base URLs by preference, highest first, ties in document order.
    urls: Vec<String>,
    hashes: Vec<(String, String)>,
    size: Option<u64>,
    /// XML comments mentioning an error: MirrorManager explains an empty answer in one.
    server_errors: Vec<String>,
}

impl Metalink {
    fn server_note(&self) -> String {
        self.server_errors
            .first()
            .map(|e| format!(" (the server says: {e})"))
            .unwrap_or_default()
    }
}

/// The text-bearing element being read inside the repomd.xml `<file>`.
enum Field {
    Size,
    Hash(String),
    Url(i64),
}

/// Metalink 3.0 as MirrorManager serves it:
///
/// ```xml
/// <metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="...">
///  <files><file name="repomd.xml">
///   <mm0:alternates><mm0:alternate>...older size/hashes...</mm0:alternate></mm0:alternates>
///   <size>4623</size>
///   <verification><hash type="sha256">...</hash></verification>
///   <resources><url protocol="https" preference="100">https://m/.../repodata/repomd.xml</url></resources>
///  </file></files>
/// </metalink>
/// ```
///
/// Element names are matched without their namespace prefix. Mirrors with other protocols
/// (rsync, ftp) are skipped: the fetcher cannot use them.
fn parse_metalink(bytes: &[u8]) -> Result<Metalink, String> {
    let mut reader = Reader::from_reader(bytes);
    let mut out = Metalink::default();
    let mut saw_metalink = false;
    let mut saw_repomd = false;
    let mut in_repomd = false;
    // Depth inside <alternates> (0 = outside); its hashes describe older repomd.xml files.
    let mut skip_depth = 0usize;
    let mut field: Option<Field> = None;
    let mut text = Text::default();
    // Open elements: quick-xml reports a cut-off document as a plain Eof, this catches it.
    let mut depth = 0usize;
    // (preference, document position, base URL)
    let mut urls: Vec<(i64, usize, String)> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        if skip_depth > 0 {
            match event {
                Event::Start(_) => skip_depth += 1,
                Event::End(_) => skip_depth -= 1,
                Event::Eof => return Err("document ends inside <alternates>".into()),
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(e) => {
                depth += 1;
                match e.local_name().as_ref() {
                    b"metalink" => saw_metalink = true,
                    b"file" => {
                        in_repomd = attr(&e, b"name")?.as_deref() == Some("repomd.xml");
                        saw_repomd |= in_repomd;
                    }
                    b"alternates" if in_repomd => {
                        // The skipped subtree is balanced, so its own End is not counted.
                        depth -= 1;
                        skip_depth = 1;
                    }
                    b"size" if in_repomd => field = Some(Field::Size),
                    b"hash" if in_repomd => {
                        let kind = attr(&e, b"type")?.ok_or("a <hash> without a type")?;
                        field = Some(Field::Hash(kind.trim().to_ascii_lowercase()));
                    }
                    b"url" if in_repomd => {
                        // Metalink 3.0 preferences run 0..=100; a missing or odd one ranks last.
                        let pref = attr(&e, b"preference")?
                            .and_then(|p| p.trim().parse().ok())
                            .unwrap_or(0);
                        field = Some(Field::Url(pref));
                    }
                    _ => {}
                }
            }
            Event::Text(t) if field.is_some() => text.push_text(&t)?,
            Event::CData(c) if field.is_some() => text.push_raw(&c)?,
            Event::GeneralRef(r) if field.is_some() => text.push_ref(&r)?,
            Event::Comment(c) => {
                let c = String::from_utf8_lossy(&c).trim().to_string();
                if c.to_ascii_lowercase().contains("error") {
                    out.server_errors.push(c);
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if e.local_name().as_ref() == b"file" {
                    in_repomd = false;
                }
                let value = text.as_str().trim();
                match field.take() {
                    Some(Field::Size) => {
                        out.size = Some(
                            value
                                .parse()
                                .map_err(|_| format!("<size> `{value}` is not a number"))?,
                        );
                    }
                    Some(Field::Hash(kind)) => {
                        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(format!(
                                "<hash type=\"{kind}\"> `{value}` is not hexadecimal"
                            ));
                        }
                        out.hashes.push((kind, value.to_ascii_lowercase()));
                    }
                    Some(Field::Url(pref)) => match repo_base(value) {
                        Some(base) => urls.push((pref, urls.len(), base)),
                        None => tracing::debug!("metalink: skipping mirror `{value}`"),
                    },
                    None => {}
                }
                text.clear();
            }
            Event::Eof if depth > 0 => return Err("the document is cut off".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_metalink {
        return Err("no <metalink> element".into());
    }
    if !saw_repomd && out.server_errors.is_empty() {
        return Err("no <file name=\"repomd.xml\"> entry".into());
    }
    // Stable sort: equal preferences keep document order (MirrorManager lists nearer mirrors first).
    urls.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.urls = urls.into_iter().map(|u| u.2).collect();
    Ok(out)
}

/// The unescaped value of attribute `name`.
fn attr(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    for a in attrs(e) {
        let (k, v) = a?;
        if k == name {
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

/// The repo base URL of a metalink `<url>` (which points at `.../repodata/repomd.xml`), with
/// a trailing slash; `None` for protocols the fetcher cannot use or URLs of other files.
fn repo_base(url: &str) -> Option<String> {
    let (scheme, _) = split_scheme(url)?;
    if !["http", "https", "file"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return None;
    }
    let base = url.strip_suffix("repodata/repomd.xml")?;
    base.ends_with('/').then(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::tests::{fast, refused_url, reply, serve};

    /// Shaped like mirrors.fedoraproject.org's answer: alternates (with a different size and
    /// hashes) before the current ones, several preferences, an rsync mirror, entities.
    const METALINK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic" pubdate="Sun, 22 Nov 2026 10:00:00 GMT" generator="mirrormanager" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files>
  <file name="repomd.xml">
   <mm0:timestamp>1763805600</mm0:timestamp>
   <mm0:alternates>
    <mm0:alternate>
     <mm0:timestamp>1763700000</mm0:timestamp>
     <size>9999</size>
     <verification>
      <hash type="sha256">0000000000000000000000000000000000000000000000000000000000000000</hash>
     </verification>
    </mm0:alternate>
   </mm0:alternates>
   <size>4623</size>
   <verification>
    <hash type="md5">00112233445566778899AABBCCDDEEFF</hash>
    <hash type="sha256">ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789</hash>
   </verification>
   <resources maxconnections="1">
    <url protocol="https" type="https" location="DE" preference="90">https://b.example/fedora/41/x86_64/os/repodata/repomd.xml</url>
    <url protocol="rsync" type="rsync" location="DE" preference="100">rsync://c.example/fedora/41/x86_64/os/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="US" preference="100">https://a.example/fedora/41/x86_64/os/repodata/repomd.xml</url>
    <url protocol="http" type="http" location="US" preference="100">http://d.example/a&amp;b/repodata/repomd.xml</url>
    <url protocol="https" type="https" location="FR">https://e.example/os/repodata/repomd.xml</url>
   </resources>
  </file>
 </files>
</metalink>"#;

    #[test]
    fn fedora_metalink() {
        let m = parse_metalink(METALINK.as_bytes()).unwrap();
        assert_eq!(
            m.urls,
            [
                "https://a.example/fedora/41/x86_64/os/",
                "http://d.example/a&b/",
                "https://b.example/fedora/41/x86_64/os/",
                "https://e.example/os/",
            ]
        );
        assert_eq!(m.size, Some(4623));
        assert_eq!(
            m.hashes,
            [
                (
                    "md5".to_string(),
                    "00112233445566778899aabbccddeeff".to_string()
                ),
                (
                    "sha256".to_string(),
                    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".to_string()
                ),
            ]
        );
    }

    #[test]
    fn broken_metalinks() {
        assert!(parse_metalink(b"<html><body>captive portal</body></html>")
            .unwrap_err()
            .contains("<metalink>"));
        assert!(parse_metalink(b"<metalink><files></files></metalink>")
            .unwrap_err()
            .contains("repomd.xml"));
        assert!(parse_metalink(b"<metalink><files><file name=\"repomd.xml\"><size>4").is_err());
        let bad_hash = br#"<metalink><files><file name="repomd.xml"><verification><hash type="sha256">xyz</hash></verification></file></files></metalink>"#;
        assert!(parse_metalink(bad_hash)
            .unwrap_err()
            .contains("not hexadecimal"));
        let bad_size = br#"<metalink><files><file name="repomd.xml"><size>big</size></file></files></metalink>"#;
        assert!(parse_metalink(bad_size).unwrap_err().contains("<size>"));
        // MirrorManager's answer for an unknown repo: valid, empty, with a reason.
        let unknown = br#"<?xml version="1.0"?><metalink version="3.0" xmlns="http://www.metalinker.org/"><files><!-- Error: invalid repo or arch --></files></metalink>"#;
        let m = parse_metalink(unknown).unwrap();
        assert!(m.urls.is_empty());
        assert_eq!(
            m.server_note(),
            " (the server says: Error: invalid repo or arch)"
        );
    }

    #[test]
    fn mirrorlist_skips_comments() {
        let list = parse_mirrorlist(
            "# mirrors for fedora\n\nhttps://a/x/\n   \n  http://b/y  # near\n#http://commented/out\nnot-a-url\n/srv/local\n",
        );
        assert_eq!(list.urls, ["https://a/x/", "http://b/y", "/srv/local"]);
        assert!(list.server_errors.is_empty());
        let list = parse_mirrorlist("# repo = epel-99 arch = x86_64 error: invalid repo or arch\n");
        assert!(list.urls.is_empty());
        assert_eq!(
            list.server_errors,
            ["repo = epel-99 arch = x86_64 error: invalid repo or arch"]
        );
    }

    #[test]
    fn precedence_metalink_mirrorlist_baseurl() {
        let (ml, _) = serve(vec![reply(200, METALINK.as_bytes())]);
        let (list, _) = serve(vec![reply(
            200,
            b"# list\nhttps://m1/\nhttps://a.example/fedora/41/x86_64/os\n",
        )]);
        let m = resolve_mirrors(
            &fast(),
            "fedora",
            &["/local/".into(), "https://m1".into()],
            Some(&format!("{list}/mirrorlist")),
            Some(&format!("{ml}/metalink")),
        )
        .unwrap();
        assert_eq!(
            m.baseurls,
            [
                "https://a.example/fedora/41/x86_64/os/",
                "http://d.example/a&b/",
                "https://b.example/fedora/41/x86_64/os/",
                "https://e.example/os/",
                "https://m1/",
                "/local/",
            ]
        );
        assert_eq!(m.repomd_size, Some(4623));
        assert_eq!(m.repomd_hashes.len(), 2);
    }

    #[test]
    fn metalink_behind_mirrorlist_key() {
        let (ml, _) = serve(vec![reply(200, METALINK.as_bytes())]);
        let m = resolve_mirrors(
            &fast(),
            "r",
            &[],
            Some(&format!("{ml}/metalink?repo=f41")),
            None,
        )
        .unwrap();
        assert_eq!(m.baseurls[0], "https://a.example/fedora/41/x86_64/os/");
        assert_eq!(m.repomd_size, Some(4623));
    }

    #[test]
    fn fallbacks() {
        let f = fast();
        // A metalink service that is down still leaves the baseurl, without its hashes.
        let bad = refused_url("/metalink?repo=x");
        let m = resolve_mirrors(&f, "r", &["/local".into()], None, Some(&bad)).unwrap();
        assert_eq!(
            m,
            Mirrors {
                baseurls: vec!["/local".into()],
                repomd_hashes: vec![],
                repomd_size: None
            }
        );
        // So does a metalink that is not one (a proxy's error page with status 200).
        let (portal, _) = serve(vec![reply(200, b"<html>log in first</html>")]);
        let m = resolve_mirrors(
            &f,
            "r",
            &["/local".into()],
            None,
            Some(&format!("{portal}/ml")),
        )
        .unwrap();
        assert_eq!(m.baseurls, ["/local"]);
        // Nothing left: the fetch error itself, naming the URL.
        let e = resolve_mirrors(&f, "r", &[], None, Some(&bad)).unwrap_err();
        assert!(
            matches!(&e, RepoError::Unreachable { url, .. } if *url == bad),
            "{e:?}"
        );
        let (gone, _) = serve(vec![reply(404, b"")]);
        let e = resolve_mirrors(&f, "r", &[], Some(&format!("{gone}/mirrorlist")), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("404") && e.contains("/mirrorlist"), "{e}");
    }

    #[test]
    fn empty_results_say_why() {
        let f = fast();
        let e = resolve_mirrors(&f, "r", &[], None, None).unwrap_err();
        assert!(
            matches!(&e, RepoError::NoMetadata { detail, .. } if detail.contains("no baseurl, mirrorlist or metalink")),
            "{e:?}"
        );
        let e = resolve_mirrors(&f, "r", &["  ".into()], None, None).unwrap_err();
        assert!(matches!(e, RepoError::NoMetadata { .. }), "{e:?}");
        let (list, _) = serve(vec![reply(
            200,
            b"# repo = x arch = y error: invalid repo or arch\n",
        )]);
        let url = format!("{list}/mirrorlist");
        let e = resolve_mirrors(&f, "epel", &[], Some(&url), None).unwrap_err();
        let RepoError::NoMetadata { repo, detail } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(repo, "epel");
        assert!(
            detail.contains(&url) && detail.contains("invalid repo or arch"),
            "{detail}"
        );
    }
}
