//! A `.rpm` file: lead, signature and main headers (strata-rpmdb's header parser, every
//! entry read back as each type), the installed-header blob and index rows the rpmdb gets,
//! then strata-package's view of the same file (file list, scriptlets, triggers, deps) and
//! its payload streamed through the decompressor the header names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;
use strata_package::{Package, ScriptletKind};
use strata_rpmdb::header::{parse_rpm, rpm_headers_len, tag, Header};
use strata_rpmdb::{index, ByteOrder, InstallOptions, InstalledPackage, Nevra};

fuzz_target!(|data: &[u8]| {
    let _ = rpm_headers_len(data);
    // The rpmdb form: a header blob without lead or magic.
    if let Ok(h) = Header::parse(data) {
        touch(&h);
    }
    let Ok(headers) = parse_rpm(data) else { return };
    touch(&headers.signature);
    touch(&headers.main);
    if let Ok(pkg) = InstalledPackage::from_rpm_bytes(data) {
        let _ = pkg.file_paths();
        if let Ok(blob) = pkg.installed_blob(&InstallOptions::at(1_700_000_000)) {
            let h = Header::parse(&blob).expect("an installed blob strata wrote parses back");
            touch(&h);
            for table in &index::TABLES {
                let _ = index::rows(table, &h, ByteOrder::Little);
            }
        }
    }

    // strata-package reads from a path: the same bytes in a temporary file.
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, data).expect("writing the temp file");
    let Ok(pkg) = Package::open(file.path()) else { return };
    let _ = (pkg.name(), pkg.nevra(), pkg.build_time(), pkg.main_blob().len(), pkg.signature_blob().len());
    for kind in [ScriptletKind::PreTrans, ScriptletKind::Pre, ScriptletKind::Post, ScriptletKind::PostTrans] {
        let _ = pkg.scriptlet(kind).map(|s| s.is_lua());
    }
    let _ = pkg.file_triggers();
    let _ = (pkg.requires(), pkg.provides());
    let Ok(files) = pkg.files() else { return };
    for f in &files {
        let _ = strata_package::parse_caps_text(&f.caps);
    }
    let Ok(mut payload) = pkg.payload() else { return };
    let mut buf = [0u8; 8192];
    for _ in 0..10_000 {
        let Ok(Some((i, _entry))) = payload.next_file() else { return };
        assert!((i as usize) < files.len(), "payload index {i} beyond {} files", files.len());
        let mut content = payload.content();
        loop {
            match content.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});

fn touch(h: &Header<'_>) {
    for e in &h.entries {
        let _ = h.data(e);
        let _ = h.entry_strings(e);
        let _ = (h.strings(e.tag), h.u16s(e.tag), h.u32s(e.tag), h.u64s(e.tag));
    }
    let _ = h.check_full_region(tag::HEADERIMMUTABLE);
    let _ = h.check_full_region(tag::HEADERSIGNATURES);
    let _ = Nevra::from_header(h).map(|n| n.to_string());
}
