//! filelists.xml (decompressed) → the path → owners index, mapped onto a fixed primary whose
//! packages have the pkgids `aaaa`, `bbbb` and `cccc` (bench/fuzz.sh rewrites the seeds'
//! pkgids to these), then lookups of every path the input names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_repo::{LoadedRepo, RepoIndex};

const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="3">
<package type="rpm"><name>a</name><arch>x86_64</arch><version epoch="0" ver="1" rel="1"/>
<checksum type="sha256" pkgid="YES">aaaa</checksum><location href="a.rpm"/><format><file>/usr/bin/a</file></format></package>
<package type="rpm"><name>b</name><arch>noarch</arch><version epoch="1" ver="2" rel="3"/>
<checksum type="sha256" pkgid="YES">bbbb</checksum><location href="b.rpm"/><format/></package>
<package type="rpm"><name>c</name><arch>noarch</arch><version epoch="0" ver="3" rel="1"/>
<checksum type="sha256" pkgid="YES">cccc</checksum><location href="c.rpm"/><format/></package>
</metadata>"#;

fuzz_target!(|data: &[u8]| {
    let index = RepoIndex::from_primary_xml(PRIMARY.as_bytes()).expect("the fixed primary parses");
    let repo = LoadedRepo::in_memory("fuzz", index, Some(data.to_vec()));
    // Paths the input itself names, so lookups hit as well as miss.
    let text = String::from_utf8_lossy(data);
    let mut paths: Vec<&str> = text
        .split("<file")
        .skip(1)
        .filter_map(|s| s.split_once('>').and_then(|(_, rest)| rest.split('<').next()))
        .take(64)
        .collect();
    paths.extend(["/", "/usr/bin/a", "", "/nope"]);
    for path in paths {
        match repo.file_owners_full(path) {
            Ok(owners) => assert!(owners.iter().all(|&id| id < 3), "owner id out of range: {owners:?}"),
            Err(_) => return,
        }
    }
});
