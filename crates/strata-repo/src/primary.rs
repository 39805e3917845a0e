//! Streaming parser for primary.xml: borrowed quick-xml events straight into the
//! [`IndexBuilder`], so no per-package structures are allocated. A 109 MB primary.xml is the
//! cold-start cost of a 63k-package repository; everything here is on that path.

use crate::index::{DepKind, IndexBuilder, RawDep, RawPackage};
use crate::limits::{self, Budget};
use crate::xml::{attrs, Text};
use quick_xml::events::Event;
use strata_rpm::Op;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    None,
    Name,
    Arch,
    Checksum,
    Summary,
    SourceRpm,
    File,
}

/// Parses primary.xml into an index builder, within the bounds of `budget` and
/// [`crate::limits`]. Errors are messages naming what is wrong.
pub(crate) fn parse<R: std::io::BufRead>(input: R, budget: Budget) -> Result<IndexBuilder, String> {
    let mut reader = limits::reader(input, budget);
    reader.config_mut().check_end_names = false;
    let mut b = IndexBuilder::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut text = Text::default();
    let mut field = Field::None;
    let mut pkg = RawPackage::default();
    let mut in_package = false;
    let mut dep_kind: Option<DepKind> = None;
    let mut packages_declared: Option<usize> = None;
    let mut seen_root = false;
    let mut count = 0usize;
    let mut depth = 0usize;

    loop {
        // Cleared here rather than after the match: a `continue` must not let it grow.
        buf.clear();
        let event = limits::next_event(&mut reader, &mut buf, &mut depth)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.name().as_ref() {
                    b"metadata" => {
                        seen_root = true;
                        for a in attrs(e) {
                            let (k, v) = a?;
                            if k == b"packages" {
                                packages_declared = v.parse().ok();
                                if let Some(n) = packages_declared {
                                    b.reserve(n);
                                }
                            }
                        }
                    }
                    b"package" => {
                        in_package = true;
                        pkg = RawPackage::default();
                    }
                    _ if !in_package => {}
                    b"name" => field = Field::Name,
                    b"arch" => field = Field::Arch,
                    b"summary" => field = Field::Summary,
                    b"rpm:sourcerpm" => field = Field::SourceRpm,
                    b"file" => field = Field::File,
                    b"checksum" => {
                        field = Field::Checksum;
                        for a in attrs(e) {
                            let (k, v) = a?;
                            if k == b"type" {
                                pkg.checksum_type = b.intern_cold(&v);
                            }
                        }
                    }
                    b"version" => {
                        for a in attrs(e) {
                            let (k, v) = a?;
                            match k {
                                b"epoch" => pkg.epoch = Some(parse_num(&v, "epoch")? as u32),
                                b"ver" => pkg.version = b.intern(&v),
                                b"rel" => pkg.release = b.intern(&v),
                                _ => {}
                            }
                        }
                    }
                    b"time" => {
                        for a in attrs(e) {
                            let (k, v) = a?;
                            if k == b"build" {
                                pkg.buildtime = parse_num(&v, "build time")?;
                            }
                        }
                    }
                    b"size" => {
                        for a in attrs(e) {
                            let (k, v) = a?;
                            match k {
                                b"package" => pkg.size_package = parse_num(&v, "package size")?,
                                b"installed" => pkg.size_installed = parse_num(&v, "installed size")?,
                                _ => {}
                            }
                        }
                    }
                    b"location" => {
                        for a in attrs(e) {
                            let (k, v) = a?;
                            match k {
                                b"href" => pkg.location = b.intern_cold(&v),
                                b"xml:base" => pkg.location_base = b.intern_cold(&v),
                                _ => {}
                            }
                        }
                    }
                    b"rpm:provides" => dep_kind = Some(DepKind::Provides),
                    b"rpm:requires" => dep_kind = Some(DepKind::Requires),
                    b"rpm:conflicts" => dep_kind = Some(DepKind::Conflicts),
                    b"rpm:obsoletes" => dep_kind = Some(DepKind::Obsoletes),
                    b"rpm:recommends" => dep_kind = Some(DepKind::Recommends),
                    b"rpm:suggests" => dep_kind = Some(DepKind::Suggests),
                    b"rpm:supplements" => dep_kind = Some(DepKind::Supplements),
                    b"rpm:enhances" => dep_kind = Some(DepKind::Enhances),
                    b"rpm:entry" => {
                        let Some(kind) = dep_kind else { continue };
                        let mut name = None;
                        let (mut op, mut epoch, mut ver, mut rel, mut pre) = (None, None, None, None, false);
                        for a in attrs(e) {
                            let (k, v) = a?;
                            match k {
                                b"name" => name = Some(v),
                                b"flags" => {
                                    op = Some(Op::from_primary_flags(&v).ok_or_else(|| {
                                        format!("unknown dependency flags `{v}`")
                                    })?)
                                }
                                b"epoch" => epoch = Some(parse_num(&v, "epoch")? as u32),
                                b"ver" => ver = Some(v),
                                b"rel" => rel = Some(v),
                                b"pre" => pre = &*v == "1",
                                _ => {}
                            }
                        }
                        let name = name.ok_or("a dependency entry has no name")?;
                        b.add_dep(
                            kind,
                            RawDep {
                                name: &name,
                                op,
                                epoch,
                                version: ver.as_deref(),
                                release: rel.as_deref(),
                                pre,
                            },
                        );
                    }
                    _ => {}
                }
                if field != Field::None {
                    text.clear();
                    if empty {
                        // `<summary/>`: an empty value.
                        finish_field(&mut b, &mut pkg, field, "");
                        field = Field::None;
                    }
                }
            }
            Event::Text(ref t) if field != Field::None => text.push_text(t)?,
            Event::GeneralRef(ref r) if field != Field::None => text.push_ref(r)?,
            Event::CData(ref c) if field != Field::None => text.push_raw(c)?,
            Event::End(ref e) => match e.name().as_ref() {
                b"package" => {
                    if pkg.name == 0 {
                        return Err(format!("package #{} has no <name>", count + 1));
                    }
                    b.finish_package(pkg);
                    in_package = false;
                    count += 1;
                }
                b"rpm:provides" | b"rpm:requires" | b"rpm:conflicts" | b"rpm:obsoletes"
                | b"rpm:recommends" | b"rpm:suggests" | b"rpm:supplements" | b"rpm:enhances" => {
                    dep_kind = None
                }
                _ if field != Field::None => {
                    finish_field(&mut b, &mut pkg, field, text.as_str());
                    field = Field::None;
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if in_package {
        b.discard_pending();
        return Err(format!("ends inside package #{} (truncated?)", count + 1));
    }
    if !seen_root {
        return Err("no <metadata> element: not a primary.xml".into());
    }
    if let Some(n) = packages_declared {
        if n != count {
            return Err(format!("declares {n} packages but holds {count} (truncated?)"));
        }
    }
    Ok(b)
}

fn finish_field(b: &mut IndexBuilder, pkg: &mut RawPackage, field: Field, value: &str) {
    match field {
        Field::Name => pkg.name = b.intern(value),
        Field::Arch => pkg.arch = b.intern(value),
        Field::Checksum => pkg.checksum = b.intern_cold(value),
        Field::Summary => pkg.summary = b.intern_cold(value),
        Field::SourceRpm => pkg.sourcerpm = b.intern_cold(value),
        Field::File => b.add_file(value),
        Field::None => {}
    }
}

fn parse_num(v: &str, what: &str) -> Result<u64, String> {
    v.trim().parse().map_err(|_| format!("{what} `{v}` is not a number"))
}

/// A two-package primary.xml used by this crate's tests.
#[cfg(test)]
pub(crate) fn tests_sample() -> &'static str {
    tests::SAMPLE
}

#[cfg(test)]
mod tests {
    use crate::RepoIndex;

    pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>hello</name>
  <arch>noarch</arch>
  <version epoch="0" ver="1.0" rel="1"/>
  <checksum type="sha256" pkgid="YES">aaaa</checksum>
  <summary>Says &amp; greets &#65;</summary>
  <description>long text</description>
  <time file="1" build="1700000000"/>
  <size package="1000" installed="2000" archive="2100"/>
  <location xml:base="https://mirror.example/x/" href="Packages/hello-1.0-1.noarch.rpm"/>
  <format>
    <rpm:sourcerpm>hello-1.0-1.src.rpm</rpm:sourcerpm>
    <rpm:provides>
      <rpm:entry name="hello" flags="EQ" epoch="0" ver="1.0" rel="1"/>
      <rpm:entry name="greeter"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="(greeting-data or greeting-alt)"/>
      <rpm:entry name="libc.so.6(GLIBC_2.34)(64bit)"/>
      <rpm:entry name="greeting" flags="GE" ver="1.0"/>
    </rpm:requires>
    <rpm:recommends><rpm:entry name="cowsay"/></rpm:recommends>
    <file>/usr/bin/hello</file>
    <file type="dir">/etc/hello</file>
  </format>
</package>
<package type="rpm">
  <name>greeting-data</name>
  <arch>noarch</arch>
  <version epoch="2" ver="1.0" rel="3"/>
  <checksum type="sha256" pkgid="YES">bbbb</checksum>
  <summary/>
  <time file="1" build="1"/>
  <size package="1" installed="2" archive="3"/>
  <location href="Packages/greeting-data-1.0-3.noarch.rpm"/>
  <format>
    <rpm:sourcerpm>greeting-1.0-3.src.rpm</rpm:sourcerpm>
    <rpm:provides><rpm:entry name="greeting" flags="EQ" epoch="2" ver="1.0" rel="3"/></rpm:provides>
    <rpm:conflicts><rpm:entry name="greeting-alt" flags="LT" ver="2"/></rpm:conflicts>
    <rpm:obsoletes><rpm:entry name="greeting-old"/></rpm:obsoletes>
  </format>
</package>
</metadata>
"#;

    #[test]
    fn parses_every_field() {
        let idx = RepoIndex::from_primary_xml(SAMPLE.as_bytes()).unwrap();
        assert_eq!(idx.len(), 2);
        let p = idx.package(0);
        assert_eq!((p.name(), p.arch()), ("hello", "noarch"));
        assert_eq!(p.evr().to_string(), "1.0-1");
        assert_eq!(p.evr().epoch, Some(0));
        assert_eq!(p.checksum(), ("sha256", "aaaa"));
        assert_eq!(p.summary(), "Says & greets A");
        assert_eq!((p.size_package(), p.size_installed(), p.buildtime()), (1000, 2000, 1700000000));
        assert_eq!(p.location(), "Packages/hello-1.0-1.noarch.rpm");
        assert_eq!(p.location_base(), Some("https://mirror.example/x/"));
        assert_eq!(p.sourcerpm(), "hello-1.0-1.src.rpm");
        let reqs: Vec<String> = p.requires().map(|d| d.to_string()).collect();
        assert_eq!(reqs, ["/bin/sh", "(greeting-data or greeting-alt)", "libc.so.6(GLIBC_2.34)(64bit)", "greeting >= 1.0"]);
        assert!(p.requires().next().unwrap().pre);
        let ge = p.requires().nth(3).unwrap();
        assert_eq!((ge.evr.epoch, ge.evr.release), (None, None));
        assert_eq!(p.recommends().map(|d| d.name).collect::<Vec<_>>(), ["cowsay"]);
        assert_eq!(p.files().collect::<Vec<_>>(), ["/usr/bin/hello", "/etc/hello"]);
        let g = idx.package(1);
        assert_eq!(g.evr().to_string(), "2:1.0-3");
        assert_eq!(g.summary(), "");
        assert_eq!(g.conflicts().next().unwrap().to_string(), "greeting-alt < 2");
        assert_eq!(g.obsoletes().count(), 1);
        assert_eq!(g.location_base(), None);
    }

    #[test]
    fn lookups() {
        let idx = RepoIndex::from_primary_xml(SAMPLE.as_bytes()).unwrap();
        assert_eq!(idx.ids_by_name("greeting-data").collect::<Vec<_>>(), [1]);
        assert_eq!(idx.ids_by_name("nope").count(), 0);
        let prov: Vec<(u32, String)> = idx.whatprovides("greeting").map(|(i, d)| (i, d.to_string())).collect();
        assert_eq!(prov, [(1, "greeting = 2:1.0-3".to_string())]);
        assert_eq!(idx.whatprovides("greeter").map(|(i, _)| i).collect::<Vec<_>>(), [0]);
        assert_eq!(idx.file_owners("/usr/bin/hello").collect::<Vec<_>>(), [0]);
        assert_eq!(idx.file_owners("/usr/bin/none").count(), 0);
        let obs: Vec<(u32, String)> = idx.whatobsoletes("greeting-old").map(|(i, d)| (i, d.to_string())).collect();
        assert_eq!(obs, [(1, "greeting-old".to_string())]);
        assert_eq!(idx.whatobsoletes("hello").count(), 0);
        assert_eq!(idx.names().collect::<Vec<_>>(), ["greeting-data", "hello"]);
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let cut = &SAMPLE[..SAMPLE.len() / 2];
        let e = RepoIndex::from_primary_xml(cut.as_bytes()).err().unwrap().to_string();
        assert!(e.contains("truncated") || e.contains("XML"), "{e}");
        let short = SAMPLE.replace("packages=\"2\"", "packages=\"3\"");
        let e = RepoIndex::from_primary_xml(short.as_bytes()).err().unwrap().to_string();
        assert!(e.contains("declares 3"), "{e}");
        assert!(RepoIndex::from_primary_xml(&b"not xml at all"[..]).is_err());
        let bad = SAMPLE.replace("flags=\"GE\"", "flags=\"XX\"");
        assert!(RepoIndex::from_primary_xml(bad.as_bytes()).err().unwrap().to_string().contains("XX"));
    }

    #[test]
    fn hostile_documents_are_refused() {
        use crate::limits::Budget;
        // XXE and entity expansion: declared entities are never resolved.
        let xxe = SAMPLE.replace(
            "<metadata ",
            "<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<metadata ",
        )
        .replace("<summary>Says &amp; greets &#65;</summary>", "<summary>&x;</summary>");
        let e = RepoIndex::from_primary_xml(xxe.as_bytes()).err().unwrap().to_string();
        assert!(e.contains("unknown entity `&x;`"), "{e}");
        let laughs = SAMPLE
            .replace(
                "<metadata ",
                "<!DOCTYPE m [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>\n<metadata ",
            )
            .replace("<name>hello</name>", "<name>&b;</name>");
        let e = RepoIndex::from_primary_xml(laughs.as_bytes()).err().unwrap().to_string();
        assert!(e.contains("unknown entity `&b;`"), "{e}");
        // Whitespace inside one element, far past the token bound: refused, not buffered.
        let mut big = SAMPLE.replace("<summary/>", "<summary>").into_bytes();
        let at = big.windows(9).position(|w| w == b"<summary>").unwrap() + 9;
        let mut pad = vec![b' '; 3 << 20];
        pad.extend_from_slice(b"</summary>");
        big.splice(at..at, pad);
        let e = super::parse(&big[..], Budget::undeclared()).err().unwrap();
        assert!(e.contains("longer than 1048576 bytes") && e.contains("not a setting"), "{e}");
        // Text split into many small events is bounded as a whole.
        let split = SAMPLE.replace("<summary/>", &format!("<summary>{}</summary>", "ab&amp;".repeat(400_000)));
        let e = super::parse(split.as_bytes(), Budget::undeclared()).err().unwrap();
        assert!(e.contains("text is longer than 1048576"), "{e}");
    }

    #[test]
    fn write_and_open_round_trip() {
        let idx = RepoIndex::from_primary_xml(SAMPLE.as_bytes()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("primary.idx");
        idx.write(&path).unwrap();
        let back = RepoIndex::open(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.package(1).nevra(), "greeting-data-2:1.0-3.noarch");
        assert_eq!(back.whatprovides("greeting").count(), 1);
        assert!(back.verify().is_ok());
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(RepoIndex::open(&path).unwrap().verify().is_err());
        std::fs::write(&path, &bytes[..n - 8]).unwrap();
        assert!(RepoIndex::open(&path).is_err());
    }
}
