//! Bounds on what repository metadata may make us hold in memory.
//!
//! Repository metadata is hostile input: whoever controls a mirror controls every byte of it,
//! checksums included (repomd.xml vouches for primary.xml, nothing vouches for repomd.xml
//! unless a metalink does). A parser that follows the input's word, so that an 8 MB gzip
//! member expanding to 8 GiB of whitespace inside one element is buffered whole, hands the
//! attacker the machine. Every bound here is fixed: a repository that trips one is broken or
//! hostile, and there is nothing for a user to raise. The figures and why they were chosen
//! are in docs/decisions.md ("Bounded parsers").

use quick_xml::events::Event;
use quick_xml::Reader;
use std::io::{self, BufRead, Read};

/// repomd.xml, a mirrorlist or a metalink: a few kB in practice (Fedora's metalink, the
/// largest, lists ~100 mirrors in ~40 kB).
pub(crate) const MAX_SMALL_FILE: u64 = 4 << 20;
/// A compressed metadata file whose repomd.xml entry gives no `<size>`.
pub(crate) const MAX_COMPRESSED: u64 = 2 << 30;
/// One XML token: a tag with all its attributes, or one run of text / CDATA / comment.
/// Real tokens are a few hundred bytes (a description, a long `rpm:entry`).
pub(crate) const MAX_TOKEN: u64 = 1 << 20;
/// One field's text after entities are resolved (a file path, a summary, a checksum).
pub(crate) const MAX_TEXT: usize = 1 << 20;
/// Element nesting; primary.xml nests 5 deep (metadata/package/format/rpm:requires/rpm:entry).
pub(crate) const MAX_DEPTH: usize = 32;
/// Decompressed size over compressed size. Real metadata compresses 6–15× (the scale corpus's
/// primary.xml.zst: 13×, createrepo_c's filelists.xml.gz: 13×); gzip reaches ~1000× on
/// repetitive input and xz/zstd far more, which is what a bomb uses.
pub(crate) const MAX_RATIO: u64 = 100;
/// Below this, the ratio does not apply (a handful of packages compresses oddly). Small, since
/// a floor is what a tiny bomb gets: 4 MiB of dependency entries cost ~9 MiB to index.
pub(crate) const RATIO_FLOOR: u64 = 4 << 20;
/// Whatever the ratio allows: ~8× Debian main's 109 MB primary.xml, ~4× a large filelists.
pub(crate) const MAX_DECOMPRESSED: u64 = 4 << 30;

/// The most decompressed bytes one metadata file may produce, and the exact figure when
/// repomd.xml declares one (`<open-size>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    pub max: u64,
    pub exact: Option<u64>,
}

impl Budget {
    /// For plain XML already in memory or on a trusted path (tests, tools): only the
    /// absolute bound applies.
    pub(crate) fn undeclared() -> Budget {
        Budget { max: MAX_DECOMPRESSED, exact: None }
    }

    /// For a file of `compressed` bytes whose repomd.xml entry declares `open_size` (or not).
    /// An open-size beyond what the ratio allows is refused before decompressing anything.
    pub(crate) fn for_file(compressed: u64, open_size: Option<u64>) -> Result<Budget, String> {
        let allowed = compressed.saturating_mul(MAX_RATIO).clamp(RATIO_FLOOR, MAX_DECOMPRESSED);
        match open_size {
            Some(n) if n > allowed => Err(format!(
                "repomd.xml declares an open-size of {n} bytes for a {compressed}-byte file, over the \
                 limit of {allowed} bytes ({MAX_RATIO}× the compressed size, at least {RATIO_FLOOR}, at most \
                 {MAX_DECOMPRESSED}); refusing it as hostile or broken metadata (a fixed limit, not a setting)"
            )),
            Some(n) => Ok(Budget { max: n, exact: Some(n) }),
            None => Ok(Budget { max: allowed, exact: None }),
        }
    }
}

/// The input of an XML parser, counting what the parser consumes: more than the budget, more
/// than [`MAX_TOKEN`] since the parser last returned an event, or (at the end) a size other
/// than the declared open-size is an error. quick-xml buffers one whole token before returning
/// it, so bounding the bytes between two events bounds its buffer.
pub(crate) struct Guarded<R> {
    inner: R,
    budget: Budget,
    consumed: u64,
    token_start: u64,
    /// How far the parser may consume before the bounds are looked at again: at most one
    /// past the end of the current token's allowance or of the budget. Handing out at most
    /// `end - consumed` bytes makes the parser come back (and be refused) before it can buffer
    /// more, however large the inner reader's buffer is.
    end: u64,
    /// The first bound broken, kept so the parser can report it instead of quick-xml's
    /// wrapped I/O error.
    violation: Option<String>,
}

impl<R: BufRead> Guarded<R> {
    pub(crate) fn new(inner: R, budget: Budget) -> Self {
        Guarded { inner, budget, consumed: 0, token_start: 0, end: 0, violation: None }
    }

    #[cold]
    fn refuse(&mut self, why: String) -> io::Error {
        self.end = 0;
        let e = io::Error::new(io::ErrorKind::InvalidData, why.clone());
        self.violation.get_or_insert(why);
        e
    }
}

impl<R: BufRead> Read for Guarded<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> Guarded<R> {
    /// Marks the start of a token (once per event: a single store). The allowance it gives is
    /// applied lazily by [`Guarded::advance`].
    #[inline]
    fn start_token(&mut self) {
        self.token_start = self.consumed;
    }

    /// `end` reached: move it to the current token's allowance, or refuse when a bound is
    /// really broken.
    #[cold]
    #[inline(never)]
    fn advance(&mut self) -> io::Result<()> {
        if self.violation.is_none() {
            let end = self.token_start.saturating_add(MAX_TOKEN).min(self.budget.max).saturating_add(1);
            if self.consumed < end {
                self.end = end;
                return Ok(());
            }
        }
        Err(self.broken())
    }

    /// At the end of the input (the parser's `Eof`; checked there rather than on every
    /// `fill_buf`, which quick-xml calls several times per event): anything but the declared
    /// open-size is an error.
    #[cold]
    fn at_end(&mut self) -> Result<(), String> {
        match self.budget.exact {
            Some(n) if n != self.consumed => {
                let why = format!(
                    "decompresses to {} bytes, but its open-size in repomd.xml says {n}; \
                     refusing it as hostile or broken metadata",
                    self.consumed
                );
                self.refuse(why.clone());
                Err(why)
            }
            _ => Ok(()),
        }
    }

    /// Why the parser may not go on: the first bound broken (only called once one is).
    #[cold]
    #[inline(never)]
    fn broken(&mut self) -> io::Error {
        if let Some(v) = &self.violation {
            return io::Error::new(io::ErrorKind::InvalidData, v.clone());
        }
        let why = if self.consumed > self.budget.max {
            match self.budget.exact {
                Some(n) => format!(
                    "decompresses to more than the {n} bytes its open-size in repomd.xml declares; \
                     refusing it as hostile or broken metadata"
                ),
                None => format!(
                    "decompresses to more than {} bytes, the limit for its compressed size; refusing it \
                     as hostile or broken metadata (a fixed limit, not a setting)",
                    self.budget.max
                ),
            }
        } else {
            format!(
                "one XML token (a tag or a run of text) starting at byte {} is longer than {MAX_TOKEN} bytes; \
                 refusing it as hostile or broken metadata (a fixed limit, not a setting)",
                self.token_start
            )
        };
        self.refuse(why)
    }
}

impl<R: BufRead> BufRead for Guarded<R> {
    // On the parse path of every cold load (called a few times per XML event): one
    // comparison when nothing is wrong, the messages built only once something is.
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // One comparison on the hot path; `end` is moved on (or a bound found broken) only
        // once about a token's allowance has been consumed.
        if self.consumed >= self.end {
            self.advance()?;
        }
        let limit = (self.end - self.consumed).min(usize::MAX as u64) as usize;
        let buf = self.inner.fill_buf()?;
        Ok(&buf[..buf.len().min(limit)])
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
        self.inner.consume(n);
    }
}

/// Reads the next event with the token and depth bounds applied; `depth` is the caller's
/// count of open elements. Errors are messages naming the bound (or quick-xml's complaint).
#[inline(always)] // Once per XML event on every cold load: as a call it cost ~4% of the parse (cachegrind).
pub(crate) fn next_event<'b, R: BufRead>(
    reader: &mut Reader<Guarded<R>>,
    buf: &'b mut Vec<u8>,
    depth: &mut usize,
) -> Result<Event<'b>, String> {
    reader.get_mut().start_token();
    let event = match reader.read_event_into(buf) {
        Ok(e) => e,
        Err(e) => {
            return Err(match reader.get_ref().violation.clone() {
                Some(v) => v,
                None => format!("XML error at byte {}: {e}", reader.error_position()),
            })
        }
    };
    match &event {
        Event::Start(_) => {
            *depth += 1;
            if *depth > MAX_DEPTH {
                return Err(format!(
                    "elements nest deeper than {MAX_DEPTH} levels at byte {}; refusing it as hostile or \
                     broken metadata (a fixed limit, not a setting)",
                    reader.buffer_position()
                ));
            }
        }
        Event::End(_) => *depth = depth.saturating_sub(1),
        Event::Eof => reader.get_mut().at_end()?,
        _ => {}
    }
    Ok(event)
}

/// A quick-xml reader over `input` with the bounds of `budget`.
pub(crate) fn reader<R: BufRead>(input: R, budget: Budget) -> Reader<Guarded<R>> {
    Reader::from_reader(Guarded::new(input, budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(xml: &[u8], budget: Budget) -> Result<usize, String> {
        let mut r = reader(xml, budget);
        let (mut buf, mut depth, mut n) = (Vec::new(), 0, 0);
        loop {
            match next_event(&mut r, &mut buf, &mut depth)? {
                Event::Eof => return Ok(n),
                _ => n += 1,
            }
            buf.clear();
        }
    }

    #[test]
    fn ordinary_xml_passes() {
        let xml = b"<?xml version=\"1.0\"?><a x=\"1\"><b>text &amp; more</b><c/></a>";
        assert_eq!(drain(xml, Budget::undeclared()).unwrap(), 9);
        let exact = Budget { max: xml.len() as u64, exact: Some(xml.len() as u64) };
        assert!(drain(xml, exact).is_ok());
    }

    #[test]
    fn a_long_token_fails_before_it_is_buffered() {
        // 4 MiB of whitespace in one element: refused after MAX_TOKEN, never held whole.
        let mut xml = b"<a>".to_vec();
        xml.resize(xml.len() + (4 << 20), b' ');
        xml.extend_from_slice(b"</a>");
        let e = drain(&xml, Budget::undeclared()).unwrap_err();
        assert!(e.contains("longer than 1048576 bytes"), "{e}");
        // The same for one tag's attributes.
        let mut tag = b"<a x=\"".to_vec();
        tag.resize(tag.len() + (2 << 20), b'y');
        tag.extend_from_slice(b"\"/>");
        assert!(drain(&tag, Budget::undeclared()).unwrap_err().contains("XML token"));
    }

    #[test]
    fn open_size_is_exact() {
        let xml = b"<a><b/></a>";
        let n = xml.len() as u64;
        let short = Budget { max: n - 1, exact: Some(n - 1) };
        assert!(drain(xml, short).unwrap_err().contains("more than the 10 bytes its open-size"));
        let long = Budget { max: n + 5, exact: Some(n + 5) };
        assert!(drain(xml, long).unwrap_err().contains("decompresses to 11 bytes, but its open-size in repomd.xml says 16"));
        let capped = Budget { max: 4, exact: None };
        assert!(drain(xml, capped).unwrap_err().contains("more than 4 bytes"));
    }

    #[test]
    fn budgets_follow_the_ratio() {
        assert_eq!(Budget::for_file(1 << 20, None).unwrap(), Budget { max: 100 << 20, exact: None });
        assert_eq!(Budget::for_file(1 << 10, None).unwrap(), Budget { max: 4 << 20, exact: None });
        assert_eq!(Budget::for_file(1000, None).unwrap().max, RATIO_FLOOR);
        assert_eq!(Budget::for_file(1 << 40, None).unwrap().max, MAX_DECOMPRESSED);
        assert_eq!(Budget::for_file(1000, Some(5000)).unwrap(), Budget { max: 5000, exact: Some(5000) });
        // 8 MB claiming 8 GiB: refused before a byte is decompressed.
        let e = Budget::for_file(8 << 20, Some(8 << 30)).unwrap_err();
        assert!(e.contains("open-size of 8589934592") && e.contains("not a setting"), "{e}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(drain(deep.as_bytes(), Budget::undeclared()).unwrap_err().contains("nest deeper than 32"));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(drain(ok.as_bytes(), Budget::undeclared()).is_ok());
    }
}

/// [`crate::Fetcher::get_limited`]: the fetch side of the bounds (here, not in fetch.rs,
/// which is long enough).
#[cfg(test)]
mod fetch_tests {
    use crate::fetch::tests::{fast, reply, serve, Reply};
    use crate::RepoError;

    #[test]
    fn local_files_over_the_limit_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("repomd.xml");
        std::fs::write(&p, vec![b' '; 1000]).unwrap();
        let f = fast();
        assert_eq!(f.get_limited("r", p.to_str().unwrap(), 1000).unwrap().len(), 1000);
        let e = f.get_limited("r", p.to_str().unwrap(), 999).unwrap_err();
        assert!(matches!(&e, RepoError::TooLarge { file, .. } if file.ends_with("repomd.xml")), "{e:?}");
        assert!(e.to_string().contains("larger than 999 bytes"), "{e}");
    }

    #[test]
    fn http_bodies_over_the_limit_are_refused_without_retrying() {
        // Declared too large: refused from the Content-Length, once.
        let (base, hits) = serve(vec![reply(200, &[b'x'; 100]), reply(200, b"never asked")]);
        let e = fast().get_limited("r", &format!("{base}/repomd.xml"), 99).unwrap_err();
        assert!(matches!(e, RepoError::TooLarge { .. }), "{e:?}");
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A body longer than its (lying, small) Content-Length cannot get past the cap either.
        let lying = Reply { status: 200, body: vec![b'x'; 200_000], declared: Some(10) };
        let (base, _) = serve(vec![lying]);
        let r = fast().get_limited("r", &format!("{base}/repomd.xml"), 50);
        assert!(r.as_ref().map_or(true, |b| b.len() <= 50), "{:?}", r.map(|b| b.len()));
        let (base, _) = serve(vec![reply(200, b"small")]);
        assert_eq!(fast().get_limited("r", &format!("{base}/x"), 5).unwrap(), b"small");
    }
}
