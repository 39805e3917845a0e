//! filelists.xml: every path of every package, indexed path → owners. Built only when a
//! file dependency falls outside primary's file subset, then cached like the primary index.

use crate::blob::{blob_bytes, Blob, BlobError};
use crate::index::{PkgId, RepoIndex};
use crate::strings::{StringPool, StringTable};
use crate::xml::{attrs, Text};
use crate::limits::{self, Budget};
use quick_xml::events::Event;
use std::collections::HashMap;
use std::path::Path;

const KIND: u32 = 2;
const VERSION: u32 = 1;
const S_PAIRS: usize = 3;

pub(crate) struct FileIndex {
    blob: Blob,
}

impl FileIndex {
    /// Parses filelists.xml, mapping each `<package pkgid=...>` to the primary index's id
    /// through the package checksum; packages primary does not know are skipped.
    pub(crate) fn build<R: std::io::BufRead>(input: R, budget: Budget, primary: &RepoIndex) -> Result<FileIndex, String> {
        let by_pkgid: HashMap<&str, PkgId> =
            (0..primary.len() as PkgId).map(|i| (primary.package(i).checksum().1, i)).collect();
        let mut reader = limits::reader(input, budget);
        let mut pool = StringPool::new();
        let mut pairs: Vec<[u32; 2]> = Vec::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut text = Text::default();
        let mut current: Option<PkgId> = None;
        let mut in_file = false;
        let mut in_package = false;
        let mut depth = 0usize;
        loop {
            buf.clear();
            let event = limits::next_event(&mut reader, &mut buf, &mut depth)?;
            match event {
                Event::Start(ref e) => match e.name().as_ref() {
                    b"package" => {
                        in_package = true;
                        current = None;
                        for a in attrs(e) {
                            let (k, v) = a?;
                            if k == b"pkgid" {
                                current = by_pkgid.get(&*v).copied();
                            }
                        }
                    }
                    b"file" => {
                        in_file = true;
                        text.clear();
                    }
                    _ => {}
                },
                Event::Text(ref t) if in_file => text.push_text(t)?,
                Event::GeneralRef(ref r) if in_file => text.push_ref(r)?,
                Event::End(ref e) => match e.name().as_ref() {
                    b"file" => {
                        in_file = false;
                        if let Some(pkg) = current {
                            pairs.push([pool.intern(text.as_str()), pkg]);
                        }
                    }
                    b"package" => in_package = false,
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        if in_package {
            return Err("ends inside a package (truncated?)".into());
        }
        pairs.sort_unstable();
        pairs.dedup();
        let bytes = blob_bytes(4, |w| pool.write(w).and_then(|_| w.push(&pairs)), KIND, VERSION);
        let blob = Blob::from_bytes(bytes, KIND, VERSION).map_err(|e| e.to_string())?;
        Ok(FileIndex { blob })
    }

    pub(crate) fn open(path: &Path) -> Result<FileIndex, BlobError> {
        let blob = Blob::open(path, KIND, VERSION)?;
        StringTable::read(&blob, 0)?;
        blob.array::<[u32; 2]>(S_PAIRS)?;
        Ok(FileIndex { blob })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.blob.whole()
    }

    pub(crate) fn owners(&self, path: &str) -> Vec<PkgId> {
        let Ok(strings) = StringTable::read(&self.blob, 0) else { return vec![] };
        let Some(key) = strings.lookup(path) else { return vec![] };
        let pairs: &[[u32; 2]] = self.blob.array(S_PAIRS).unwrap_or(&[]);
        let start = pairs.partition_point(|p| p[0] < key);
        pairs[start..].iter().take_while(|p| p[0] == key).map(|p| p[1]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_to_primary_ids() {
        let primary = RepoIndex::from_primary_xml(crate::primary::tests_sample().as_bytes()).unwrap();
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="3">
<package pkgid="bbbb" name="greeting-data" arch="noarch"><version epoch="2" ver="1.0" rel="3"/>
  <file>/usr/share/greeting/en.txt</file><file type="dir">/usr/share/greeting</file></package>
<package pkgid="aaaa" name="hello" arch="noarch"><version epoch="0" ver="1.0" rel="1"/>
  <file>/usr/bin/hello</file><file>/usr/share/doc/hello &amp; co</file></package>
<package pkgid="zzzz" name="unknown" arch="noarch"><version epoch="0" ver="1" rel="1"/><file>/x</file></package>
</filelists>"#;
        let fi = FileIndex::build(xml.as_bytes(), Budget::undeclared(), &primary).unwrap();
        assert_eq!(fi.owners("/usr/share/greeting"), [1]);
        assert_eq!(fi.owners("/usr/share/doc/hello & co"), [0]);
        assert!(fi.owners("/x").is_empty());
        assert!(fi.owners("/nope").is_empty());
        assert!(FileIndex::build(&xml.as_bytes()[..200], Budget::undeclared(), &primary).is_err());
    }
}
