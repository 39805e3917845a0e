//! primary.xml (decompressed) → the in-memory index, every accessor of every package, then
//! the cache file round trip (write, map, verify) a warm run takes instead of parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_repo::RepoIndex;

fuzz_target!(|data: &[u8]| {
    let Ok(idx) = RepoIndex::from_primary_xml(data) else { return };
    touch(&idx);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("primary.idx");
    idx.write(&path).expect("writing a parsed index");
    let back = RepoIndex::open(&path).expect("opening an index just written");
    back.verify().expect("an index just written verifies");
    assert_eq!(back.len(), idx.len());
    touch(&back);
});

fn touch(idx: &RepoIndex) {
    for id in 0..idx.len() as u32 {
        let p = idx.package(id);
        let _ = (p.id(), p.name(), p.arch(), p.evr().to_string(), p.location(), p.location_base());
        let _ = (p.checksum(), p.size_package(), p.size_installed(), p.sourcerpm(), p.buildtime());
        let _ = (p.summary(), p.nevra());
        for d in p.provides().chain(p.requires()).chain(p.conflicts()).chain(p.obsoletes()) {
            let _ = d.to_string();
            let _ = idx.whatprovides(d.name).count();
            let _ = idx.whatobsoletes(d.name).count();
        }
        for d in p.recommends().chain(p.suggests()).chain(p.supplements()).chain(p.enhances()) {
            let _ = d.to_string();
        }
        for f in p.files() {
            let _ = idx.file_owners(f).count();
        }
    }
    for n in idx.names() {
        let _ = idx.ids_by_name(n).count();
    }
}
