//! A layer blob (plain tar, gzip or zstd) extracted by strata-rootfs into a fresh temporary
//! directory, as `strata build` unpacks a base image's layers, then the directory removed.
//!
//! The options come from the input's length (so the tar bytes stay the whole input): both
//! whiteout modes; device nodes skipped or refused, never created. Anything appearing in the
//! directory around the target is an escape and fails the run. bench/fuzz.sh runs this target
//! under bwrap with the host read-only and TMPDIR a private tmpfs, so even an escape the check
//! misses writes nothing that lasts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_rootfs::{extract, DeviceNodes, ExtractOptions, Whiteouts};

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::tempdir().expect("temp dir");
    let target = outer.path().join("root");
    std::fs::create_dir(&target).expect("target dir");
    let opts = ExtractOptions {
        whiteouts: if data.len() % 2 == 0 { Whiteouts::Apply } else { Whiteouts::OverlayMarkers },
        devices: if data.len() % 4 < 2 { DeviceNodes::Skip } else { DeviceNodes::Refuse },
        expected_diff_id: None,
    };
    let _ = extract(data, &target, &opts);
    let around: Vec<_> = std::fs::read_dir(outer.path())
        .expect("reading the temp dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert_eq!(around, ["root"], "extraction wrote beside its target");
    // Anything left read-only or odd must still go away (root removes whatever it finds).
    outer.close().expect("removing the extracted tree");
});
